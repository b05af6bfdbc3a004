"""Rules of nodes that move, mix, gate or normalise values: pooling, merges, products, embeddings."""

from __future__ import annotations

import tensorflow as tf

from tfxai import validation
from tfxai.errors import ModelError
from tfxai.linear import frozen_scale_function
from tfxai.rules.engine import Rule, Term, TermRule, signed_stabilize, single_input, sum_to_shape, vjp
from tfxai.rules.lrp import Z


class Pass(Rule):
    """Identity: ``R_in = R_out``, for element-wise activations and no-ops."""

    def backward(self, node, state, relevance):
        if len(state.inputs) != 1 or len(relevance) != 1:
            raise ModelError(f"Pass expects one input and one output; node {node.name!r} has other.")
        return [relevance[0]]


class Route(Rule):
    """Route relevance along the local gradient: ``R_in = J^T R_out``.

    For operations that only move, copy or select values this conserves
    relevance: reshapes and permutations rearrange it, ``Concatenate`` splits
    it, cropping/padding slice it, and max pooling gives it to the winner of
    each pool (winner-take-all).
    """

    def backward(self, node, state, relevance):
        function = lambda *xs: node.forward(list(xs), state.params)  # noqa: E731
        return vjp(function, state.inputs, relevance)


class Norm(Z):
    """LRP-0 on a weightless linear operation: average pooling, ``Add``.

    Each input receives relevance in proportion to its contribution to the
    sum; exactly conservative wherever the sum is non-zero.
    """


class SignalTakeAll(Rule):
    """Gated products: all relevance to the signal, none to the gates.

    For ``y = x * g`` where ``g`` is a gate (a sigmoid output, squeeze-and-
    excitation channel weights), ``R_x = R_y`` and ``R_g = 0`` (Arras et al.
    2017): the gate only decides how much of the signal passes. The signal is
    the node's FIRST input; :func:`tfxai.canonizers.mark_gates` orders the
    inputs. Where the signal is broadcast, its relevance is summed over the
    broadcast axes, so the rule is conservative.

    References
    ----------
    Arras, Montavon, Mueller, Samek (2017). Explaining recurrent neural network
    predictions in sentiment analysis. WASSA workshop.
    """

    def backward(self, node, state, relevance):
        signal, *gates = state.inputs
        return [sum_to_shape(relevance[0], signal)] + [tf.zeros_like(g) for g in gates]


class Uniform(Rule):
    """Element-wise products of several signals: each factor gets an equal share.

    ``R_i = R_y / n`` for each of the ``n`` inputs of ``y = x_1 * ... * x_n``
    (the uniform rule of Achtibat et al. 2024), summed over axes where an
    input was broadcast. Conservative. Used for products in which no input is
    recognised as a gate.

    References
    ----------
    Achtibat, Hatefi, Dreyer, Jain, Wiegand, Lapuschkin, Samek (2024).
    AttnLRP: attention-aware layer-wise relevance propagation for
    transformers. ICML.
    """

    def backward(self, node, state, relevance):
        share = relevance[0] / tf.cast(len(state.inputs), relevance[0].dtype)
        return [sum_to_shape(share, x) for x in state.inputs]


class FrozenScale(TermRule):
    """LRP-epsilon through a normalisation layer whose scale is held constant.

    LayerNormalization and GroupNormalization compute
    ``y = (x - mean(x)) / sigma(x) * gamma + beta``. With ``sigma`` treated as
    a constant (Ali et al. 2022), ``y`` is linear in ``x`` and LRP-epsilon
    applies to that linear map:
    ``R_i = x_i sum_k J_ki R_k / (y_k + epsilon sign(y_k))`` with ``J`` the
    Jacobian of the constant-scale layer (mean subtraction, then a fixed
    per-element scale). Conservative up to the relevance ``beta`` absorbs.

    Parameters
    ----------
    epsilon : float
        Stabiliser of the denominator, >= 0. Default 1e-7.

    References
    ----------
    Ali, Schnake, Eberle, Montavon, Mueller, Wolf (2022). XAI for
    transformers: better explanations through conservative propagation. ICML.
    """

    ratio_form = True

    def __init__(self, epsilon: float = 1e-7):
        self.epsilon = validation.number("epsilon", epsilon, minimum=0, owner="FrozenScale")

    def terms(self, node, state):
        return [Term(frozen_scale_function(node.layer), [single_input(state, self)], state.outputs[0])]

    def divide(self, relevance, z):
        return tf.math.divide_no_nan(relevance, signed_stabilize(z, self.epsilon))


def token_relevance(relevance):
    """Relevance of each token: the sum of its embedding vector's relevance (last axis)."""
    return tf.reduce_sum(relevance, axis=-1)


class EmbeddingSum(Rule):
    """Embedding lookups: a token's relevance is the sum over its embedding vector.

    The integer input of shape ``(batch, sequence)`` receives float relevance
    of that shape (Arras et al. 2017). The lookup is a selection, so the rule
    is conservative.
    """

    def backward(self, node, state, relevance):
        return [token_relevance(relevance[0])]


class Stop(Rule):
    """Boolean operations (the mask computations of ``mask_zero`` and ``Masking``): no relevance flows."""

    def backward(self, node, state, relevance):
        return [None] * len(state.inputs)
