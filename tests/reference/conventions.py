"""tfxai rules that reproduce a reference library's convention where tfxai's differs.

The reference tests use them to show that a documented convention is the whole
difference between tfxai and iNNvestigate or zennit: with the rule swapped in,
the heatmaps agree number for number. docs/migrating_from_innvestigate.md
explains each difference.
"""

from __future__ import annotations

import tensorflow as tf

from tfxai import rules
from tfxai.rules import negative, positive, vjp


def _linear(node, kernel, bias):
    return lambda x: node.forward([x], (kernel, bias))[0]


def _split_part(node, a, k_pos_inputs, k_neg_inputs, bias, relevance):
    """Relevance of one alpha-beta-style part: ``z = f(a+; k_pos_inputs, bias) + f(a-; k_neg_inputs)``.

    Returns ``a+ * J+^T s + a- * J-^T s`` with ``s = relevance / z`` (0 where ``z == 0``).
    """
    a_pos, a_neg = positive(a), negative(a)
    f_pos, f_neg = _linear(node, k_pos_inputs, bias), _linear(node, k_neg_inputs, None)
    s = tf.math.divide_no_nan(relevance, f_pos(a_pos) + f_neg(a_neg))
    return a_pos * vjp(f_pos, [a_pos], s)[0] + a_neg * vjp(f_neg, [a_neg], s)[0]


class FullBiasAlphaBeta(rules.AlphaBeta):
    """iNNvestigate's alpha-beta rule: the FULL bias joins both denominators.

    ``z+ = sum (a w)+ + b`` and ``z- = sum (a w)- + b``, where tfxai (and
    zennit) use ``b+`` and ``b-``. Not conservative when biases are negative.
    """

    def backward(self, node, state, relevance):
        (a,) = state.inputs
        kernel, bias = state.params
        bias = None if self.ignore_bias else bias
        k_pos, k_neg = positive(kernel), negative(kernel)
        result = self.alpha * _split_part(node, a, k_pos, k_neg, bias, relevance[0])
        if self.beta:
            result -= self.beta * _split_part(node, a, k_neg, k_pos, bias, relevance[0])
        return [result]


class GeneralizedGamma(rules.Rule):
    """zennit's Gamma rule (Andeol et al. 2021), which treats inputs and outputs of both signs.

    Where the layer output ``z > 0``: positive inputs use ``w + gamma w+``
    (bias ``b + gamma b+``), negative inputs ``w + gamma w-``; where ``z < 0``
    the roles swap (bias ``b + gamma b-``). tfxai's :class:`~tfxai.rules.Gamma`
    uses ``w + gamma w+`` for everything; the two agree where inputs are
    non-negative and outputs positive.
    """

    requires_weights = True

    def __init__(self, gamma: float = 0.25):
        self.gamma = float(gamma)

    def backward(self, node, state, relevance):
        (a,) = state.inputs
        kernel, bias = state.params
        z = state.outputs[0]
        up, down = kernel + self.gamma * positive(kernel), kernel + self.gamma * negative(kernel)
        b_up = None if bias is None else bias + self.gamma * positive(bias)
        b_down = None if bias is None else bias + self.gamma * negative(bias)
        r_up = tf.where(z > 0, relevance[0], tf.zeros_like(z))
        r_down = tf.where(z < 0, relevance[0], tf.zeros_like(z))
        return [_split_part(node, a, up, down, b_up, r_up) + _split_part(node, a, down, up, b_down, r_down)]


class SquaredBiasWSquare(rules.Rule):
    """zennit's W-square rule: the squared bias joins the denominator, ``sum_i w_ik^2 + b_k^2``.

    tfxai and iNNvestigate ignore the bias in W-square.
    """

    requires_weights = True

    def backward(self, node, state, relevance):
        (a,) = state.inputs
        kernel, bias = state.params
        f = _linear(node, tf.square(kernel), None if bias is None else tf.square(bias))
        ones = tf.ones_like(a)
        s = tf.math.divide_no_nan(relevance[0], f(ones))
        return [vjp(f, [ones], s)[0]]
