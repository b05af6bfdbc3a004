"""LRP rules of weighted (linear) layers: declarations on the engine of :mod:`tfxai.rules.engine`."""

from __future__ import annotations

import functools
import operator

import tensorflow as tf

from tfxai import validation
from tfxai.errors import ParameterError
from tfxai.rules.engine import (
    LinearRule,
    Term,
    TermRule,
    negative,
    node_function,
    positive,
    signed_stabilize,
    single_input,
    weighted_term,
)


class Z(LinearRule):
    """LRP-0 (Bach et al. 2015): ``R_j = sum_k a_j w_jk / z_k R_k``.

    Where ``z_k == 0`` exactly, ``R_k`` is not propagated. On ReLU networks
    LRP-0 equals input times gradient.
    """


class Epsilon(LinearRule):
    """LRP-epsilon (Bach et al. 2015): denominator ``z + epsilon * sign(z)``.

    Parameters
    ----------
    epsilon : float
        Stabiliser, >= 0; larger values absorb weak or contradictory relevance.
        Default 1e-7, as iNNvestigate.
    ignore_bias : bool
        Drop the bias from ``z``.
    """

    def __init__(self, epsilon: float = 1e-7, ignore_bias: bool = False):
        self.epsilon = validation.number("epsilon", epsilon, minimum=0, owner="Epsilon")
        super().__init__(ignore_bias)

    def divide(self, relevance, z):
        if not self.epsilon:
            return tf.math.divide_no_nan(relevance, z)
        return relevance / signed_stabilize(z, self.epsilon)


class Gamma(LinearRule):
    """LRP-gamma (Montavon et al. 2019): ``rho(w) = w + gamma * max(0, w)``.

    The bias is modified likewise. ``gamma = 0`` is LRP-0.

    Parameters
    ----------
    gamma : float
        Weight of the positive part, >= 0. Default 0.25.
    ignore_bias : bool
        Drop the bias from ``z``.
    """

    requires_weights = True

    def __init__(self, gamma: float = 0.25, ignore_bias: bool = False):
        self.gamma = validation.number("gamma", gamma, minimum=0, owner="Gamma")
        super().__init__(ignore_bias)

    def modify_weights(self, kernel, bias):
        kernel = kernel + self.gamma * positive(kernel)
        return kernel, None if bias is None else bias + self.gamma * positive(bias)


class AlphaBeta(TermRule):
    """LRP-alpha-beta (Bach et al. 2015) with ``alpha - beta = 1``.

    ``R_j = sum_k (alpha (a_j w_jk)^+ / z_k^+ - beta (a_j w_jk)^- / z_k^-) R_k``.
    Inputs of both signs are split, so ``(a w)^+ = a^+ w^+ + a^- w^-``; the
    positive bias part joins ``z^+`` and the negative part ``z^-``.

    Parameters
    ----------
    alpha, beta : float
        Weights of the positive and negative contributions; ``alpha - beta``
        must be 1 and ``beta >= 0``.
    ignore_bias : bool
        Drop the bias from both denominators.
    """

    requires_weights = True
    ratio_form = True

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, ignore_bias: bool = False):
        alpha = validation.number("alpha", alpha, owner="AlphaBeta")
        beta = validation.number("beta", beta, minimum=0, owner="AlphaBeta")
        if abs(alpha - beta - 1.0) > 1e-9:
            raise ParameterError(
                "AlphaBeta expects alpha - beta == 1 and beta >= 0. "
                f"Received: alpha={alpha}, beta={beta}"
            )
        self.alpha = alpha
        self.beta = beta
        self.ignore_bias = validation.flag("ignore_bias", ignore_bias, owner=type(self).__name__)

    def terms(self, node, state):
        a, kernel, bias = _weighted_input(state, self)
        if self.beta and state.input_nonnegative():
            return _nonnegative_sign_terms(node, state, a, kernel, bias)
        signs = (positive, negative) if self.beta else (positive,)
        return _sign_terms(node, a, kernel, bias, signs, state.input_nonnegative())

    def cotangents(self, relevance, outputs):
        if self.beta and len(outputs) == 2:  # the terms of _nonnegative_sign_terms
            return _nonnegative_cotangents(self._signed_cotangents, relevance, outputs)
        return self._signed_cotangents(relevance, outputs)

    def _signed_cotangents(self, relevance, outputs):
        z_pos, *z_neg = _sign_sums(outputs, 2 if self.beta else 1)
        s_pos = [self.alpha * self.divide(relevance, z_pos)]
        s_neg = [-self.beta * self.divide(relevance, z) for z in z_neg]
        per_sign = len(outputs) // (1 + len(z_neg))
        return [s for s in s_pos + s_neg for _ in range(per_sign)]


def _weighted_input(state, rule):
    """``(a, kernel, bias)`` of a one-input weighted node; the bias is None where ``rule.ignore_bias``."""
    a = single_input(state, rule)
    kernel, bias = state.params
    return a, kernel, None if rule.ignore_bias else bias


def _maybe(function, tensor):
    return None if tensor is None else function(tensor)


def _sign_terms(node, a, kernel, bias, signs=(positive, negative), nonnegative=False) -> list:
    """Two terms per sign in ``signs``, whose outputs sum to ``z^+`` (or ``z^-``).

    ``z^+ = sum_j (a_j w_jk)^+ + b^+ = a^+ w^+ + a^- w^- + b^+`` and
    ``z^- = a^+ w^- + a^- w^+ + b^-``. Where ``a`` is known to be ``>= 0``
    (``nonnegative``: the output of a ReLU), ``a^- = 0`` contributes nothing
    and each sign has one term, ``z^+ = a w^+ + b^+`` and ``z^- = a w^- + b^-``:
    half the convolutions, the same values.
    """
    if nonnegative:
        return [weighted_term(node, a, sign(kernel), _maybe(sign, bias)) for sign in signs]
    a_pos, a_neg = positive(a), negative(a)
    k_pos, k_neg = positive(kernel), negative(kernel)
    kernels = {positive: (k_pos, k_neg), negative: (k_neg, k_pos)}
    terms = []
    for sign in signs:
        k_same, k_other = kernels[sign]
        terms += [weighted_term(node, a_pos, k_same, _maybe(sign, bias)), weighted_term(node, a_neg, k_other)]
    return terms


def _nonnegative_sign_terms(node, state, a, kernel, bias) -> list:
    """For ``a >= 0``: the terms ``z^+ = a w^+ + b^+`` and ``z = a w + b``, from which ``z^- = z - z^+``.

    ``z`` is the forward pass's pre-activation, so besides it only ``z^+``
    costs a convolution (a matmul). The rule's cotangents ``c^+, c^-`` of
    ``z^+`` and ``z^-`` go back through ``w^+`` and ``w`` instead of
    ``w^+`` and ``w^-`` (``w^-^T c^- = w^T c^- - w^+^T c^-``, see
    :func:`_nonnegative_cotangents`): two transposed convolutions, and
    ``w^-`` is never formed (VGG16's first Dense kernel alone is 411 MB).
    ``z^-`` is clipped at 0, the sign it has exactly. The subtraction rounds
    relative to ``|z^+|``: GeneralizedGamma only uses ``z^-`` where
    ``z < 0``, i.e. ``|z^-| > |z^+|``, so it loses nothing there; for
    alpha-beta it is where ``|z^-|`` is far below ``|z^+|`` that ``z^-``
    carries a larger relative error (on VGG16 and ResNet50 the maps moved by
    less than 1e-6 of their summed magnitude). Where the forward ``z`` is not
    ``a w + b`` at the precision of the relevance (the bias is ignored, or
    the layer computed in float16), ``z`` gets its own convolution.
    """
    k_pos, b_pos = positive(kernel), _maybe(positive, bias)
    z_pos = node_function(node, (k_pos, b_pos))(a)
    return [
        weighted_term(node, a, k_pos, b_pos, z_pos),
        weighted_term(node, a, kernel, bias, _forward_z(node, state, bias)),
    ]


def _nonnegative_cotangents(signed_cotangents, relevance, outputs) -> list:
    """The cotangents of the terms ``(w^+, w)`` of :func:`_nonnegative_sign_terms`.

    ``signed_cotangents(relevance, [z^+, z^-])`` returns those of ``z^+`` and
    ``z^-``, ``[c^+, c^-]``; since ``w^+^T c^+ + w^-^T c^- = w^+^T (c^+ -
    c^-) + w^T c^-``, the terms get ``[c^+ - c^-, c^-]``.
    """
    z_pos, z = outputs
    c_pos, c_neg = signed_cotangents(relevance, [z_pos, negative(z - z_pos)])
    return [c_pos - c_neg, c_neg]


def _forward_z(node, state, bias):
    """The forward pass's ``z`` where it is ``a w + b`` at the relevance's precision, else None."""
    z = state.outputs[0]
    compute_dtype = tf.as_dtype(getattr(node.layer, "compute_dtype", None) or z.dtype)
    bias_ignored = bias is None and state.params[1] is not None
    return None if bias_ignored or compute_dtype != z.dtype else z


def _sign_sums(outputs, signs: int) -> list:
    """``[z^+]`` or ``[z^+, z^-]``: the outputs of :func:`_sign_terms` summed per sign."""
    per_sign = len(outputs) // signs
    starts = range(0, len(outputs), per_sign)
    return [functools.reduce(operator.add, outputs[i : i + per_sign]) for i in starts]


class ZPlus(AlphaBeta):
    """Z+ rule (deep Taylor for ReLU layers): alpha=1, beta=0, bias ignored.

    Parameters
    ----------
    ignore_bias : bool
        Default True as in iNNvestigate; False adds the positive bias to ``z^+``.
    """

    def __init__(self, ignore_bias: bool = True):
        super().__init__(alpha=1.0, beta=0.0, ignore_bias=ignore_bias)


class ZBox(TermRule):
    """z^B / bounded rule for inputs in ``[low, high]`` (Montavon et al. 2017).

    ``z_jk = a_j w_jk - l_j w_jk^+ - h_j w_jk^-``; the bias is ignored. The
    three terms are ``(a, w)``, ``(-l, w^+)`` and ``(-h, w^-)``.

    Parameters
    ----------
    low, high : float or array-like
        Bounds of the input, scalars or per channel (broadcast against the
        input, e.g. shape ``(C,)`` for channels-last images); ``low <= high``.
    """

    requires_weights = True

    def __init__(self, low=-1.0, high=1.0):
        validation.bounds(low, high, owner="ZBox")
        self.low = low
        self.high = high

    def check_node(self, node, input_shapes):
        """The bounds must broadcast against one input sample of ``node`` (e.g. ``(C,)`` for images)."""
        validation.bounds_fit_input(self.low, self.high, node.name, input_shapes[0], owner="ZBox")

    def terms(self, node, state):
        a = single_input(state, self)
        kernel, _ = state.params
        low, high = _bound(self.low, a), _bound(self.high, a)
        return [
            weighted_term(node, a, kernel),
            weighted_term(node, -low, positive(kernel)),
            weighted_term(node, -high, negative(kernel)),
        ]


def _bound(value, a):
    """A ZBox bound broadcast to ``a``, via float64 so that 0.1 keeps a float64 model's precision."""
    return tf.broadcast_to(tf.cast(tf.constant(value, tf.float64), a.dtype), tf.shape(a))


class WSquare(TermRule):
    """W-square rule (Montavon et al. 2017): ``R_j = sum_k w_jk^2 / sum_i w_ik^2 R_k``.

    Independent of the input values; the bias is ignored. On a node without
    weights it is the :class:`Flat` rule.
    """

    def transform(self, kernel):
        """The weights the rule distributes by."""
        return tf.square(kernel)

    def terms(self, node, state):
        a = single_input(state, self)
        params = None if state.params is None else (self.transform(state.params[0]), None)
        return [Term(node_function(node, params), [tf.ones_like(a)])]


class Flat(WSquare):
    """Flat rule (Lapuschkin et al. 2019): W-square with all weights 1.

    Spreads relevance uniformly over each output's receptive field.
    """

    def transform(self, kernel):
        return tf.ones_like(kernel)


class GeneralizedGamma(TermRule):
    """LRP-gamma for inputs and outputs of both signs (zennit's Gamma; Andeol et al. 2021).

    Contributions ``z_jk = a_j w_jk`` are split by sign (``z_jk^+ = a_j^+ w_jk^+
    + a_j^- w_jk^-``, as in :class:`AlphaBeta`), and those sharing the sign of
    the output are favoured:

    ``R_j = sum_k (z_jk + gamma z_jk^s) / (z_k + gamma (sum_j z_jk^s + b_k^s)) R_k``

    with ``s = +`` where ``z_k >= 0`` and ``s = -`` where ``z_k < 0``. The
    denominator has the sign of ``z_k`` and at least its size, so no
    near-cancelled denominator amplifies relevance. For non-negative inputs
    and ``z_k >= 0`` this is :class:`Gamma` (Montavon et al. 2019), which is
    meant for layers followed by a ReLU. Where a layer's output keeps its
    negative values (a residual branch, a linear bottleneck, a swish or GELU
    activation), relevance reaches outputs with ``z_k < 0``, where
    :class:`Gamma`'s denominator ``z_k + gamma z_k^+`` can cancel; layer after
    layer that multiplies relevance up to float32 overflow (EfficientNet,
    MobileNetV2/V3 in keras.applications).

    Parameters
    ----------
    gamma : float
        Weight of the same-sign contributions, >= 0. Default 0.25; 0 is LRP-0.
    ignore_bias : bool
        Drop the bias from ``z``.

    References
    ----------
    Montavon, Binder, Lapuschkin, Samek, Mueller (2019). Layer-wise relevance
    propagation: an overview. In Explainable AI, LNCS 11700.
    Andeol, Kawakami, Wada, Kanamori, Mueller, Montavon (2021). Learning
    domain invariant representations by joint Wasserstein distance
    minimization. arXiv:2106.04923.
    """

    requires_weights = True
    ratio_form = True

    def __init__(self, gamma: float = 0.25, ignore_bias: bool = False):
        self.gamma = validation.number("gamma", gamma, minimum=0, owner="GeneralizedGamma")
        self.ignore_bias = validation.flag("ignore_bias", ignore_bias, owner="GeneralizedGamma")

    def terms(self, node, state):
        a, kernel, bias = _weighted_input(state, self)
        if state.input_nonnegative():
            return _nonnegative_sign_terms(node, state, a, kernel, bias)
        z = None if self.ignore_bias else state.outputs[0]
        return [weighted_term(node, a, kernel, bias, z)] + _sign_terms(node, a, kernel, bias)

    def cotangents(self, relevance, outputs):
        if len(outputs) == 2:  # the terms of _nonnegative_sign_terms
            return _nonnegative_cotangents(self._signed_cotangents, relevance, outputs)
        z, *signed = outputs
        plus, minus = _sign_sums(signed, 2)
        up = z >= 0
        s = self.divide(relevance, z + self.gamma * tf.where(up, plus, minus))
        zero = tf.zeros_like(s)
        s_up, s_down = self.gamma * tf.where(up, s, zero), self.gamma * tf.where(up, zero, s)
        per_sign = len(signed) // 2
        return [s] + [s_up] * per_sign + [s_down] * per_sign

    def _signed_cotangents(self, relevance, outputs):
        """For non-negative inputs: ``J = J^+ + J^-`` folds the term ``z`` into the two signed terms."""
        plus, minus = outputs
        z = plus + minus
        up = z >= 0
        s = self.divide(relevance, z + self.gamma * tf.where(up, plus, minus))
        favoured = (1.0 + self.gamma) * s
        return [tf.where(up, favoured, s), tf.where(up, s, favoured)]
