"""Relevance rules: how relevance at a node's outputs flows to its inputs.

A rule is a small, stateless object validated at construction. Its one method,
``backward(node, state, relevance)``, receives the node (see
:class:`tfxai.graph.Node`), the concrete tensors of the forward pass
(:class:`NodeState`) and the relevance of each node output, and returns the
relevance of each node input.

Most LRP rules share one shape (Bach et al. 2015; Montavon et al. 2019):

    R_j = a'_j * sum_k w'_jk R_k / stab(z'_k),   z'_k = sum_j a'_j w'_jk + b'_k

computed without materialising ``z_jk``: one forward of the layer with modified
inputs ``a'`` and weights ``w' = rho(w)``, an element-wise division, one
vector-Jacobian product (a transposed matmul / convolution) and a product with
``a'``. :class:`LinearRule` implements that once; ``Epsilon``, ``Gamma``... only
declare their modifiers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class NodeState:
    """Concrete tensors of one node in one forward pass.

    Attributes
    ----------
    inputs : list of tf.Tensor
        The node's inputs.
    outputs : list of tf.Tensor
        The node's outputs (for linear nodes: the pre-activation ``z``).
    params : tuple or None
        ``(kernel, bias or None)`` for linear nodes, else ``None``.
    """

    inputs: list
    outputs: list
    params: Any = None


def vjp(function, xs: Sequence, cotangent):
    """Vector-Jacobian product of ``function(*xs)`` with ``cotangent``.

    Each position of ``xs`` gets its own gradient, even when the same tensor
    appears twice (``x + x``).
    """
    xs = [tf.identity(x) for x in xs]
    with tf.GradientTape() as tape:
        for x in xs:
            tape.watch(x)
        y = function(*xs)
    return tape.gradient(
        y, xs, output_gradients=cotangent, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )


def signed_stabilize(z, epsilon: float):
    """``z + epsilon * sign(z)`` with ``sign(0) = +1``."""
    if not epsilon:
        return z
    return z + epsilon * tf.where(z >= 0, tf.ones_like(z), -tf.ones_like(z))


def positive(x):
    """Element-wise ``max(x, 0)``."""
    return tf.nn.relu(x)


def negative(x):
    """Element-wise ``min(x, 0)``."""
    return tf.minimum(x, 0.0)


class Rule:
    """Base class of relevance rules.

    Attributes
    ----------
    requires_weights : bool
        True for rules that modify weights; the analyzer refuses to give them to
        a node without weights.
    """

    requires_weights = False

    def backward(self, node, state: NodeState, relevance: list) -> list:
        """Relevance of each input of ``node`` from the relevance of its outputs.

        Parameters
        ----------
        node : tfxai.graph.Node
            The node; ``node.forward(inputs, params)`` recomputes it.
        state : NodeState
            Its concrete inputs, outputs and weights in this forward pass.
        relevance : list of tf.Tensor
            Relevance of each output (same shapes as ``state.outputs``).

        Returns
        -------
        list of tf.Tensor
            Relevance of each input (same shapes as ``state.inputs``).
        """
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self), tuple(sorted(map(repr, vars(self).items())))))


def _node_function(node, params):
    """``f(*inputs) -> first output`` of a node with fixed ``params``."""
    return lambda *xs: node.forward(list(xs), params)[0]


def _with_params(node, kernel, bias):
    return lambda x: node.forward([x], (kernel, bias))[0]


def _single_input(state: NodeState, rule) -> Any:
    if len(state.inputs) != 1:
        raise ValueError(f"{type(rule).__name__} expects a node with one input; got {len(state.inputs)}.")
    return state.inputs[0]


class LinearRule(Rule):
    """Generic LRP rule ``R_j = a'_j sum_k w'_jk R_k / stab(z'_k)``.

    Subclasses declare their modifiers by overriding :meth:`modify_weights`
    and :meth:`stabilize`. Nodes without weights (average pooling, ``Add``)
    use their own forward function as the linear map.

    Parameters
    ----------
    ignore_bias : bool
        Drop the bias from ``z'`` (iNNvestigate's ``...IgnoreBias`` variants).
    """

    def __init__(self, ignore_bias: bool = False):
        self.ignore_bias = bool(ignore_bias)

    def modify_weights(self, kernel, bias):
        """``rho``: return the modified ``(kernel, bias)``."""
        return kernel, bias

    def stabilize(self, z):
        """Denominator from ``z'``; zeros are treated as "no relevance"."""
        return z

    def _modifies_weights(self) -> bool:
        return type(self).modify_weights is not LinearRule.modify_weights

    def backward(self, node, state, relevance):
        params = state.params
        if params is not None:
            kernel, bias = params
            params = self.modify_weights(kernel, None if self.ignore_bias else bias)
        function = _node_function(node, params)
        reuse_forward = state.params is None or (
            not self._modifies_weights() and (not self.ignore_bias or state.params[1] is None)
        )
        z = state.outputs[0] if reuse_forward else function(*state.inputs)
        s = tf.math.divide_no_nan(relevance[0], self.stabilize(z))
        grads = vjp(function, state.inputs, s)
        return [x * g for x, g in zip(state.inputs, grads)]


class Z(LinearRule):
    """LRP-0 (Bach et al. 2015): ``R_j = sum_k a_j w_jk / z_k R_k``.

    Where ``z_k == 0`` exactly, ``R_k`` is not propagated. On ReLU networks
    LRP-0 equals input times gradient.
    """


class Norm(Z):
    """LRP-0 on a weightless linear operation: average pooling, ``Add``.

    Each input receives relevance in proportion to its contribution to the
    sum; exactly conservative wherever the sum is non-zero.
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
        if epsilon < 0:
            raise ValueError(f"Epsilon expects epsilon >= 0. Received: epsilon={epsilon}")
        super().__init__(ignore_bias)
        self.epsilon = float(epsilon)

    def stabilize(self, z):
        return signed_stabilize(z, self.epsilon)


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
        if gamma < 0:
            raise ValueError(f"Gamma expects gamma >= 0. Received: gamma={gamma}")
        super().__init__(ignore_bias)
        self.gamma = float(gamma)

    def modify_weights(self, kernel, bias):
        kernel = kernel + self.gamma * positive(kernel)
        return kernel, None if bias is None else bias + self.gamma * positive(bias)


class AlphaBeta(Rule):
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

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, ignore_bias: bool = False):
        if abs(alpha - beta - 1.0) > 1e-9 or beta < 0:
            raise ValueError(
                "AlphaBeta expects alpha - beta == 1 and beta >= 0. "
                f"Received: alpha={alpha}, beta={beta}"
            )
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.ignore_bias = bool(ignore_bias)

    def _part(self, node, a_pos, a_neg, k_same, k_other, bias, relevance):
        """Relevance of the ``(a w)`` terms whose sign equals that of ``k_same``."""
        f_same = _with_params(node, k_same, bias)
        f_other = _with_params(node, k_other, None)
        s = tf.math.divide_no_nan(relevance, f_same(a_pos) + f_other(a_neg))
        return a_pos * vjp(f_same, [a_pos], s)[0] + a_neg * vjp(f_other, [a_neg], s)[0]

    def backward(self, node, state, relevance):
        a = _single_input(state, self)
        kernel, bias = state.params
        bias = None if self.ignore_bias else bias
        a_pos, a_neg = positive(a), negative(a)
        k_pos, k_neg = positive(kernel), negative(kernel)
        r_pos = self._part(node, a_pos, a_neg, k_pos, k_neg, _maybe(positive, bias), relevance[0])
        if not self.beta:
            return [self.alpha * r_pos]
        r_neg = self._part(node, a_pos, a_neg, k_neg, k_pos, _maybe(negative, bias), relevance[0])
        return [self.alpha * r_pos - self.beta * r_neg]


def _maybe(function, tensor):
    return None if tensor is None else function(tensor)


class ZPlus(AlphaBeta):
    """Z+ rule (deep Taylor for ReLU layers): alpha=1, beta=0, bias ignored.

    Parameters
    ----------
    ignore_bias : bool
        Default True as in iNNvestigate; False adds the positive bias to ``z^+``.
    """

    def __init__(self, ignore_bias: bool = True):
        super().__init__(alpha=1.0, beta=0.0, ignore_bias=ignore_bias)


class ZBox(Rule):
    """z^B / bounded rule for inputs in ``[low, high]`` (Montavon et al. 2017).

    ``z_jk = a_j w_jk - l_j w_jk^+ - h_j w_jk^-``; the bias is ignored.

    Parameters
    ----------
    low, high : float or array-like
        Bounds of the input, scalars or per channel (broadcast against the
        input, e.g. shape ``(C,)`` for channels-last images); ``low <= high``.
    """

    requires_weights = True

    def __init__(self, low=-1.0, high=1.0):
        low_array, high_array = tf.constant(low, tf.float32), tf.constant(high, tf.float32)
        if bool(tf.reduce_any(low_array > high_array)):
            raise ValueError(f"ZBox expects low <= high. Received: low={low}, high={high}")
        self.low = low
        self.high = high

    def backward(self, node, state, relevance):
        a = _single_input(state, self)
        kernel, _ = state.params
        low = tf.cast(tf.broadcast_to(self.low, tf.shape(a)), a.dtype)
        high = tf.cast(tf.broadcast_to(self.high, tf.shape(a)), a.dtype)
        f = _with_params(node, kernel, None)
        f_pos = _with_params(node, positive(kernel), None)
        f_neg = _with_params(node, negative(kernel), None)
        z = f(a) - f_pos(low) - f_neg(high)
        s = tf.math.divide_no_nan(relevance[0], z)
        result = a * vjp(f, [a], s)[0] - low * vjp(f_pos, [low], s)[0] - high * vjp(f_neg, [high], s)[0]
        return [result]


class WSquare(Rule):
    """W-square rule (Montavon et al. 2017): ``R_j = sum_k w_jk^2 / sum_i w_ik^2 R_k``.

    Independent of the input values; the bias is ignored. On a node without
    weights it is the :class:`Flat` rule.
    """

    def transform(self, kernel):
        """The weights the rule distributes by."""
        return tf.square(kernel)

    def backward(self, node, state, relevance):
        a = _single_input(state, self)
        params = None if state.params is None else (self.transform(state.params[0]), None)
        f = _node_function(node, params)
        ones = tf.ones_like(a)
        s = tf.math.divide_no_nan(relevance[0], f(ones))
        return [vjp(f, [ones], s)[0]]


class Flat(WSquare):
    """Flat rule (Lapuschkin et al. 2019): W-square with all weights 1.

    Spreads relevance uniformly over each output's receptive field.
    """

    def transform(self, kernel):
        return tf.ones_like(kernel)


class Pass(Rule):
    """Identity: ``R_in = R_out``, for element-wise activations and no-ops."""

    def backward(self, node, state, relevance):
        if len(state.inputs) != 1 or len(relevance) != 1:
            raise ValueError(f"Pass expects one input and one output; node {node.name!r} has other.")
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
