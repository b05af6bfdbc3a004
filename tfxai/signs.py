"""Which tensors of a view are non-negative by construction.

On ReLU networks every activation after the first layer is ``>= 0``. Rules
that split contributions by sign (alpha-beta, z+, the generalised gamma) then
have no negative part to compute: :func:`nonnegative_keys` finds those
tensors from the graph alone (a rectifier's output, and what pooling,
reshaping, padding, merging or routing makes of such outputs), so that
:func:`tfxai.reverse.forward` can record it in each
:class:`~tfxai.rules.NodeState` and the rules take their shorter path. Values
are never inspected: a tensor not proven non-negative here gets the general
path.
"""

from __future__ import annotations

import keras

from tfxai.graph import GraphView, raw_op_classes
from tfxai.layer_groups import AVERAGE_POOLING, NO_OPS, ROUTING_LAYERS, UPSAMPLING

L = keras.layers

SIGN_KEEPING = (
    ROUTING_LAYERS
    + AVERAGE_POOLING
    + UPSAMPLING
    + NO_OPS
    + (L.Add, L.Average)
    + raw_op_classes("Reshape", "Transpose", "Concatenate", "Squeeze", "ExpandDims")
)
"""Operations whose output is ``>= 0`` wherever all their inputs are (at inference).

Raw element-wise operations (``x + c``, ``maximum(x, c)``) are left out: they
may take constants of either sign."""


_RELU_OPS = raw_op_classes("Relu", "Relu6")
RECTIFIER_ACTIVATIONS = ("relu", "relu6")


def is_rectifier(node) -> bool:
    """Whether ``node`` is a ReLU: zero for every negative input (``max_value`` allowed)."""
    if node.is_original and isinstance(node.layer, L.ReLU):
        return not node.layer.negative_slope and node.layer.threshold >= 0
    return issubclass(node.op_type, _RELU_OPS) or activation_name(node) in RECTIFIER_ACTIVATIONS


def activation_name(node):
    """The element-wise activation ``node`` applies: split off a layer, or an ``Activation`` layer."""
    if node.activation is not None or not (node.is_original and isinstance(node.layer, L.Activation)):
        return node.activation
    return getattr(node.layer.activation, "__name__", None)


def nonnegative_keys(view: GraphView, unknown=()) -> frozenset:
    """Keys of the tensors of ``view`` that are ``>= 0`` for every input.

    Parameters
    ----------
    view : GraphView
        A canonized view.
    unknown : collection of TensorKey
        Tensors whose values come from elsewhere (the ``overrides`` of
        :func:`tfxai.reverse.forward`): never counted as non-negative.

    Returns
    -------
    frozenset of TensorKey
    """
    found = set()
    for node in view.nodes:
        if is_rectifier(node):
            keeps = True
        else:
            keeps = (
                issubclass(node.op_type, SIGN_KEEPING)
                and bool(node.inputs)
                and all(key in found for key in node.inputs)
            )
        if keeps:
            found.update(key for key in node.outputs if key not in unknown)
    return frozenset(found)
