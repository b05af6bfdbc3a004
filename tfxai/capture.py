"""Looking inside layers made of Keras layers and ``keras.ops``: the checks and messages of capture.

A layer with no relevance rule of its own (a KerasHub transformer block, a
user's subclassed layer) is explained through the Keras layers and
operations its ``call`` is made of. :func:`tfxai.graph.build_view` captures
them by calling ``layer.call`` on fresh ``keras.Input`` tensors: every
sublayer call and every ``keras.ops`` call then records a Keras node, and
the recorded graph is walked like a nested model, to any depth. The node
lists this adds to the user's sublayers are removed again when the walk
ends.

Two ways to capture, tried in order:

1. at the shapes of the layer's inputs in the model (dynamic axes kept);
   the captured nodes are inlined into the model's graph;
2. if the ``call`` computes with its input's shape (causal masks, positions,
   reshapes to the batch size), at fixed shapes: batch size 1 and
   ``sequence_length`` for the other dynamic axes. The layer stays one node;
   its rule (:class:`tfxai.rules.transformer.SampleWise`) propagates
   relevance through the captured graph one sample at a time.

What cannot be captured: raw ``tf.*`` operations on the inputs, Python
control flow on tensor values, inputs carrying Keras masks (``mask_zero``;
pass the mask as a tensor argument instead), outputs that do not depend on
the inputs. Such a layer stays one node; the error listing unsupported
layers (:class:`~tfxai.errors.UnsupportedLayerError`, and ``tfxai.check``)
names it with the reason. It needs a rule:
``tfxai.register_rule(LayerClass, rule)``, which always wins over capture.

This module holds no Keras private attribute access (that is
:mod:`tfxai.graph`'s); it checks shapes and words the reasons.
"""

from __future__ import annotations

import keras

from tfxai.errors import ModelError


def masked_inputs_failure(in_kts) -> str | None:
    """The reason not to capture a layer whose input carries a Keras mask (a capture would lose it)."""
    if any(getattr(kt, "_keras_mask", None) is not None for kt in in_kts):
        return (
            "it receives a Keras mask (from Embedding(mask_zero=True) or Masking), which a capture would "
            "lose; pass the mask as a tensor argument (e.g. padding_mask=...)"
        )
    return None


def describe(error) -> str:
    """Why capturing failed, from the error Keras' symbolic call raised."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return (
        f"its call is not made of Keras layers and keras.ops only ({type(error).__name__}: {first_line[:200]}); "
        "raw tf.* operations, Python control flow on tensor values and caches cannot be captured"
    )


def needs_length(reason: str) -> str:
    """The reason for a layer that may compute with its input's shape while that shape is dynamic."""
    return (
        reason + "; if it computes with its input's shape (causal masks, positions), give a fixed length "
        "to capture it at: create_analyzer(..., sequence_length=16)"
    )


def static_shapes(in_kts, sequence_length):
    """Fixed shapes to capture at: batch 1, ``sequence_length`` for other dynamic axes (None if unknown)."""
    shapes = []
    for kt in in_kts:
        shape = [1] + [sequence_length if d is None else d for d in kt.shape[1:]]
        if any(d is None for d in shape):
            return None
        shapes.append(tuple(shape))
    return shapes


def check_outputs(outputs, expected: int) -> None:
    """Raise ModelError unless the captured call returned ``expected`` symbolic tensors.

    The walk catches it and keeps the message as the layer's
    :attr:`~tfxai.nodes.Node.capture_failure`.
    """
    if len(outputs) != expected:
        raise ModelError(f"its call returned {len(outputs)} tensors where the model uses {expected}")
    if not all(isinstance(t, keras.KerasTensor) for t in outputs):
        raise ModelError("an output of its call does not depend on its inputs")
