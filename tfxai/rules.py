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

import keras
import numpy as np
import tensorflow as tf

from tfxai import attention, recurrent
from tfxai.linear import frozen_scale_function


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
    masks : list or None
        The Keras mask attached to each input when the node ran (``None``
        entries for unmasked inputs).
    """

    inputs: list
    outputs: list
    params: Any = None
    masks: Any = None


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
    return z + tf.where(z >= 0, tf.constant(epsilon, z.dtype), tf.constant(-epsilon, z.dtype))


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

    def _key(self):
        return tuple(sorted((name, _param_key(value)) for name, value in vars(self).items()))

    def __eq__(self, other):
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self):
        return hash((type(self), self._key()))


def _param_key(value):
    """A hashable, comparable form of a rule parameter (arrays by shape and values)."""
    if isinstance(value, (np.ndarray, list, tuple)):
        array = np.asarray(value)
        return ("array", array.shape, tuple(array.ravel().tolist()))
    return value


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
    and :meth:`divide`. Nodes without weights (average pooling, ``Add``)
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

    def divide(self, relevance, z):
        """``relevance / stab(z')``; where the denominator is 0, no relevance flows."""
        return tf.math.divide_no_nan(relevance, z)

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
        s = self.divide(relevance[0], z)
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
        # via float64, so that bounds such as 0.1 keep a float64 model's precision
        low = tf.broadcast_to(tf.cast(tf.constant(self.low, tf.float64), a.dtype), tf.shape(a))
        high = tf.broadcast_to(tf.cast(tf.constant(self.high, tf.float64), a.dtype), tf.shape(a))
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


class GuidedReLU(Rule):
    """Guided backpropagation through a ReLU (Springenberg et al. 2015).

    Only the positive part of the incoming signal passes, and only where the
    forward input was positive: ``R_in = (z > 0) * max(R_out, 0)``. For other
    ReLU forms (``max_value``, ``threshold``, ``negative_slope``) the positive
    part is sent through the node's own local gradient.

    References
    ----------
    Springenberg, Dosovitskiy, Brox, Riedmiller (2015). Striving for
    simplicity: the all convolutional net. ICLR workshop.
    """

    def backward(self, node, state, relevance):
        _single_input(state, self)
        return vjp(_node_function(node, state.params), state.inputs, positive(relevance[0]))


class DeconvReLU(Rule):
    """The deconvnet's backward ReLU (Zeiler and Fergus 2014): ``R_in = max(R_out, 0)``.

    The forward input is ignored: the signal is rectified on its way back.

    References
    ----------
    Zeiler, Fergus (2014). Visualizing and understanding convolutional
    networks. ECCV.
    """

    def backward(self, node, state, relevance):
        _single_input(state, self)
        return [positive(relevance[0])]


def sum_to_shape(relevance, x):
    """Sum ``relevance`` over the axes along which ``x`` was broadcast, to ``x``'s shape."""
    extra = relevance.shape.rank - x.shape.rank
    if extra > 0:
        relevance = tf.reduce_sum(relevance, axis=list(range(extra)))
    axes = [i for i, (dr, dx) in enumerate(zip(relevance.shape, x.shape)) if dx == 1 and dr != 1]
    return tf.reduce_sum(relevance, axis=axes, keepdims=True) if axes else relevance


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


class FrozenScale(Rule):
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

    def __init__(self, epsilon: float = 1e-7):
        if epsilon < 0:
            raise ValueError(f"FrozenScale expects epsilon >= 0. Received: epsilon={epsilon}")
        self.epsilon = float(epsilon)

    def backward(self, node, state, relevance):
        a = _single_input(state, self)
        z = signed_stabilize(state.outputs[0], self.epsilon)
        s = tf.math.divide_no_nan(relevance[0], z)
        return [a * vjp(frozen_scale_function(node.layer), [a], s)[0]]


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


def _linear_rule(rule, owner):
    rule = Epsilon(1e-3) if rule is None else rule
    if not isinstance(rule, LinearRule):
        raise TypeError(
            f"{owner} takes a linear rule (Z, Epsilon, Gamma...) for its linear maps. Received: {rule!r}"
        )
    return rule


class Recurrent(Rule):
    """LRP through SimpleRNN, GRU, LSTM and Bidirectional layers (Arras et al. 2017, 2019).

    The recurrence is re-run and relevance propagated backwards in time (see
    :mod:`tfxai.recurrent`): linear maps with ``linear``, gates
    signal-take-all (a gate gets no relevance), sums of gated terms split in
    proportion, element-wise activations pass-through. Masked time steps pass
    the state's relevance through and give their input none.

    Parameters
    ----------
    linear : LinearRule, optional
        Rule of the linear maps (its weight modifier and stabiliser also split
        the gated sums). Default ``Epsilon(1e-3)``, Arras et al.'s choice.

    References
    ----------
    Arras, Montavon, Mueller, Samek (2017). Explaining recurrent neural network
    predictions in sentiment analysis. WASSA workshop.
    Arras et al. (2019). Explaining and interpreting LSTMs. In: Explainable AI,
    LNCS 11700.
    """

    def __init__(self, linear=None):
        self.linear = _linear_rule(linear, "Recurrent")

    def backward(self, node, state, relevance):
        x, *others = state.inputs
        masks = [m for m in others if m.dtype == tf.bool]
        if len(masks) != len(others):
            raise ValueError(
                f"Recurrent node {node.name!r} receives initial states; tfxai explains recurrent layers "
                "that start from zero states only."
            )
        mask = masks[0] if masks else (state.masks[0] if state.masks else None)
        layer = node.layer
        if isinstance(layer, keras.layers.Bidirectional):
            recurrent.check_layer(layer.forward_layer)
            result = recurrent.bidirectional_relevance(layer, self.linear, x, mask, relevance)
        else:
            recurrent.check_layer(layer)
            result = recurrent.relevance(layer, self.linear, x, mask, relevance)
        return [result] + [None] * len(others)


class ConservativeAttention(Rule):
    """Multi-head attention with the attention weights held constant (Ali et al. 2022).

    Relevance flows through the output projection, the mixing by the (fixed)
    attention weights and the value projection with ``linear``; the query
    and key get none. Conservative up to the relevance biases absorb. See
    :mod:`tfxai.attention`.

    Parameters
    ----------
    linear : LinearRule, optional
        Its stabiliser divides at each linear step (``Z`` or ``Epsilon``).
        Default ``Epsilon(1e-3)``.

    References
    ----------
    Ali, Schnake, Eberle, Montavon, Mueller, Wolf (2022). XAI for
    transformers: better explanations through conservative propagation. ICML.
    """

    def __init__(self, linear=None):
        self.linear = _linear_rule(linear, type(self).__name__)

    def relevance(self, layer, att, relevance):
        """``(R_query, R_value, R_key)`` of one attention call."""
        return attention.conservative_relevance(layer, att, relevance[0], self.linear.divide)

    def backward(self, node, state, relevance):
        q_at, v_at, k_at = attention.roles(node)
        masks = state.masks or [None] * len(state.inputs)
        pick = lambda items, i: None if i is None else items[i]  # noqa: E731
        att = attention.compute(
            node.layer,
            state.inputs[q_at],
            state.inputs[v_at],
            pick(state.inputs, k_at),
            (masks[q_at], masks[v_at], pick(masks, k_at)),
            bool(node.call_kwargs.get("use_causal_mask", False)),
            bool(node.call_kwargs.get("return_attention_scores", False)),
            pick(state.inputs, node.call_kwargs.get("attention_mask")),
        )
        r_query, r_value, r_key = self.relevance(node.layer, att, relevance)
        result = [None] * len(state.inputs)
        for position, r in ((q_at, r_query), (v_at, r_value)):
            result[position] = r if result[position] is None else result[position] + r
        if k_at is None:
            result[v_at] = result[v_at] + r_key
        else:
            result[k_at] = r_key
        return result


class AttnLRP(ConservativeAttention):
    """AttnLRP (Achtibat et al. 2024) through multi-head attention.

    As :class:`ConservativeAttention`, plus relevance through the attention
    weights: ``A v`` and ``q k^T`` split relevance equally between their
    factors (uniform rule), the softmax gets ``R_s = s (R_A - A sum R_A)``.
    Not conservative (the softmax rule absorbs relevance).

    Parameters
    ----------
    linear : LinearRule, optional
        As for :class:`ConservativeAttention`.

    References
    ----------
    Achtibat, Hatefi, Dreyer, Jain, Wiegand, Lapuschkin, Samek (2024).
    AttnLRP: attention-aware layer-wise relevance propagation for
    transformers. ICML.
    """

    def relevance(self, layer, att, relevance):
        extra = relevance[1] if len(relevance) > 1 else None
        return attention.attnlrp_relevance(layer, att, relevance[0], self.linear.divide, extra)


class GeneralizedGamma(Rule):
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

    def __init__(self, gamma: float = 0.25, ignore_bias: bool = False):
        if gamma < 0:
            raise ValueError(f"GeneralizedGamma expects gamma >= 0. Received: gamma={gamma}")
        self.gamma = float(gamma)
        self.ignore_bias = bool(ignore_bias)

    def backward(self, node, state, relevance):
        a = _single_input(state, self)
        kernel, bias = state.params
        bias = None if self.ignore_bias else bias
        a_pos, a_neg = positive(a), negative(a)
        f = _with_params(node, kernel, bias)
        f_pos = _with_params(node, positive(kernel), None)
        f_neg = _with_params(node, negative(kernel), None)
        z = f(a) if self.ignore_bias else state.outputs[0]
        b = tf.zeros_like(z) if bias is None else f(tf.zeros_like(a))  # the bias, broadcast to z
        up = z >= 0
        z_pos = f_pos(a_pos) + f_neg(a_neg) + positive(b)
        z_neg = f_neg(a_pos) + f_pos(a_neg) + negative(b)
        s = tf.math.divide_no_nan(relevance[0], z + self.gamma * tf.where(up, z_pos, z_neg))
        s_up, s_down = tf.where(up, s, tf.zeros_like(s)), tf.where(up, tf.zeros_like(s), s)
        result = a * vjp(f, [a], s)[0]
        result += self.gamma * (a_pos * vjp(f_pos, [a_pos], s_up)[0] + a_neg * vjp(f_neg, [a_neg], s_up)[0])
        result += self.gamma * (a_pos * vjp(f_neg, [a_pos], s_down)[0] + a_neg * vjp(f_pos, [a_neg], s_down)[0])
        return [result]
