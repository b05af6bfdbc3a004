"""Gradient analyzers: saliency (Simonyan et al. 2014) and input times gradient (Shrikumar et al. 2016).

Token ids read by an ``Embedding`` are explained through the embedded vectors
(:func:`embedding_lookups`): one score per token.
The noise family lives in :mod:`tfxai.analyzers.noise`, Integrated Gradients in
:mod:`tfxai.analyzers.integrated`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxai import rules
from tfxai.analyzers import batched
from tfxai.analyzers.base import Analyzer
from tfxai.errors import ModelError


class Gradient(Analyzer):
    """Saliency: the gradient of the explained neuron(s) with respect to the input.

    Differentiates the canonized model (logits, not softmax). With
    ``neuron_selection="all"`` it is the gradient of the sum of the outputs.

    An integer input read by ``Embedding`` layers (token ids) gets one value
    per token instead, shape ``(batch, sequence)``: :meth:`token_score` of
    each embedding output ``e`` and the gradient ``g`` with respect to it.
    For the gradient this is the Euclidean norm of ``g`` over the embedding
    axis (Li et al. 2016): the plain sum of ``g`` is the derivative along
    the all-ones direction, which a LayerNorm after the embedding cancels.

    References
    ----------
    Simonyan, Vedaldi, Zisserman (2014). Deep inside convolutional networks.
    ICLR workshop.
    Li, Chen, Hovy, Jurafsky (2016). Visualizing and understanding neural
    models in NLP. NAACL.
    """

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        check_token_inputs(self.view)

    def watched(self, xs):
        lookups = embedding_lookups(self.view)
        return list(xs) + [node.layer.embeddings.value for nodes in lookups.values() for node in nodes]

    def gradients(self, xs, forward):
        """Gradient of the explained neurons of ``forward`` for each input (per token for token ids)."""
        lookups = embedding_lookups(self.view)
        embedded = {i: [forward.values[node.outputs[0]] for node in nodes] for i, nodes in lookups.items()}
        grads, embedded_grads = forward.tape.gradient(
            forward.output,
            (xs, embedded),
            output_gradients=forward.mask,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        grads = [
            g if batched.is_float(x) else tf.zeros(tf.shape(x), forward.output.dtype)
            for x, g in zip(xs, grads)
        ]
        for i, outputs in embedded.items():
            grads[i] = tf.add_n([self.token_score(e, g) for e, g in zip(outputs, embedded_grads[i])])
        return grads

    def relevance(self, xs, forward):
        return self.gradients(xs, forward)

    def token_score(self, embedded, grad):
        """A token's value from its embedding and the gradient there: ``||grad||_2`` over the embedding axis."""
        return tf.norm(grad, axis=-1)


class InputTimesGradient(Gradient):
    """Input times gradient (Shrikumar et al. 2016): ``x * d y / d x``.

    On ReLU networks without biases it sums to the explained output and equals
    LRP-0. For token ids read by ``Embedding`` layers, ``x`` is the embedding
    vector: a token gets ``sum(e * d y / d e)`` over its embedding ``e``.
    """

    def relevance(self, xs, forward):
        grads = self.gradients(xs, forward)
        return [x * g if batched.is_float(x) else g for x, g in zip(xs, grads)]

    def token_score(self, embedded, grad):
        """Embedding times its gradient, summed over the embedding axis."""
        return rules.token_relevance(embedded * grad)


def embedding_lookups(view) -> dict:
    """Input index -> the ``Embedding`` nodes that read that (integer) model input directly."""
    lookups: dict = {}
    for node in view.nodes:
        if issubclass(node.op_type, keras.layers.Embedding) and node.inputs[0] in view.inputs:
            index = view.inputs.index(node.inputs[0])
            if view.input_dtypes[index].startswith(("int", "uint")):
                lookups.setdefault(index, []).append(node)
    return lookups


def check_token_inputs(view) -> None:
    """Raise where no input can be differentiated: only integer inputs, and no ``Embedding`` reads one.

    Gradients with respect to integer inputs do not exist; returning zeros
    for them would be a silent wrong answer.
    """
    if any(not d.startswith(("int", "uint", "bool")) for d in view.input_dtypes) or embedding_lookups(view):
        return
    raise ModelError(
        f"Model {view.name!r} takes only integer inputs ({', '.join(view.input_names)}) and no Embedding layer "
        "reads them where tfxai can see it, so gradient methods have nothing to differentiate. Use an LRP "
        "analyzer, or make the embedding visible (a layer tfxai captures, or keras.layers.Embedding)."
    )
