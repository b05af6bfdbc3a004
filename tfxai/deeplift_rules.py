"""DeepLIFT rules for the reverse engine: multipliers between an input and a reference.

DeepLIFT (Shrikumar, Greenside, Kundaje 2017) explains ``f(x) - f(x_ref)``
by *multipliers* ``m``, propagated backwards with the chain rule like
gradients; the attribution of an input is ``(x - x_ref) * m``. Every rule here
reads one node's tensors for the input and for the reference from a
:class:`PairState`:

* linear nodes (Dense, convolutions, pooling averages, sums, reshapes...)
  pass ``W^T m``: their gradient (:class:`~tfxai.rules.Route`);
* element-wise nonlinearities use the rescale rule (:class:`Rescale`),
  ``m_in = m_out * (y - y_ref) / (x - x_ref)``, the gradient where
  ``x ~ x_ref``;
* max pooling and ``Maximum``/``Minimum`` use :class:`SecantMax`, which keeps
  summation-to-delta exact for them;
* with reveal-cancel, a linear node followed by a nonlinearity gets
  :class:`RevealCancel`, which treats positive and negative contributions
  separately.

Summation-to-delta holds at every node, so the attributions of the inputs sum
to ``f(x) - f(x_ref)`` of the explained neurons.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tfxai import registry, rules
from tfxai.canonizers import activation_name
from tfxai.errors import ParameterError, UnsupportedLayerError
from tfxai.graph import raw_op_classes
from tfxai.rules import NodeState, Rule, negative, positive, vjp
from tfxai.rules.engine import node_function

L = keras.layers

TOLERANCE = 1e-6
"""``|x - x_ref|`` below which a multiplier falls back to the gradient."""

MAX_TYPES = (
    L.MaxPooling1D,
    L.MaxPooling2D,
    L.MaxPooling3D,
    L.GlobalMaxPooling1D,
    L.GlobalMaxPooling2D,
    L.GlobalMaxPooling3D,
    L.Maximum,
    L.Minimum,
) + raw_op_classes("Maximum", "Minimum")
"""Piecewise-linear selections that get :class:`SecantMax`."""

LINEAR_TYPES = (
    registry.LINEAR
    + registry.AFFINE
    + registry.IDENTITIES
    + tuple(t for t in registry.ROUTES if not issubclass(t, MAX_TYPES))
    + registry.POOLING
    + registry.RESAMPLING
    + registry.MERGES
)
"""Layer types that are affine maps: their multiplier is their gradient."""


@dataclasses.dataclass(frozen=True)
class PairState(NodeState):
    """A node's tensors for the input (the inherited fields) and for the reference.

    Attributes
    ----------
    reference : NodeState
        The same node's tensors in the forward pass of the reference.
    """

    reference: NodeState = None


def pair_states(states: dict, reference_states: dict) -> dict:
    """Node name -> :class:`PairState` from the two forward passes."""
    return {
        name: PairState(s.inputs, s.outputs, s.params, s.masks, reference=reference_states[name])
        for name, s in states.items()
    }


def _secant(relevance, dy, dx, tolerance, fallback):
    """``relevance * dy / dx``, or ``fallback`` where ``|dx| <= tolerance``."""
    far = tf.abs(dx) > tolerance
    safe = tf.where(far, dx, tf.ones_like(dx))
    return tf.where(far, relevance * dy / safe, fallback)


class Rescale(Rule):
    """DeepLIFT's rescale rule for an element-wise nonlinearity ``y = g(x)``.

    ``m_in = m_out * (g(x) - g(x_ref)) / (x - x_ref)``; where
    ``|x - x_ref| <= tolerance`` the gradient ``m_out * g'(x)`` is used.

    Parameters
    ----------
    tolerance : float
        Default :data:`TOLERANCE`.
    """

    def __init__(self, tolerance: float = TOLERANCE):
        if not tolerance >= 0:
            raise ParameterError(f"tolerance must be >= 0. Received: tolerance={tolerance!r}")
        self.tolerance = float(tolerance)

    def backward(self, node, state, relevance):
        x, ref = state.inputs[0], state.reference.inputs[0]
        gradient = vjp(lambda v: node.forward([v], state.params)[0], [x], relevance[0])[0]
        dy = state.outputs[0] - state.reference.outputs[0]
        return [_secant(relevance[0], dy, x - ref, self.tolerance, gradient)]


class SecantMax(Rescale):
    """Multipliers of a max-type selection (max pooling, ``Maximum``) that sum to its delta.

    With ``J`` and ``J_ref`` the node's Jacobians at the input and at the
    reference and ``d = (J + J_ref)/2 (x - x_ref)`` (per output), the signal
    ``s = m_out (y - y_ref) / d`` goes back as ``(J + J_ref)^T s / 2``: the
    winners of both passes share it, and ``sum(m_in (x - x_ref)) =
    sum(m_out (y - y_ref))`` holds exactly. Where ``|d| <= tolerance`` the
    gradient at the input is used.
    """

    def backward(self, node, state, relevance):
        function = node_function(node, state.params)  # in the inputs' dtype (float32 under mixed precision)
        xs, refs = state.inputs, state.reference.inputs
        deltas = [x - r for x, r in zip(xs, refs)]
        d = 0.5 * (_jvp(function, xs, deltas) + _jvp(function, refs, deltas))
        dy = state.outputs[0] - state.reference.outputs[0]
        far = tf.abs(d) > self.tolerance
        s = tf.where(far, relevance[0] * dy / tf.where(far, d, tf.ones_like(d)), tf.zeros_like(d))
        near = tf.where(far, tf.zeros_like(d), relevance[0])
        at_x, at_ref = vjp(function, xs, s), vjp(function, refs, s)
        fallback = vjp(function, xs, near)
        return [0.5 * (a + b) + c for a, b, c in zip(at_x, at_ref, fallback)]


def _jvp(function, primals, tangents):
    with tf.autodiff.ForwardAccumulator(primals, tangents) as accumulator:
        y = function(*primals)
    return accumulator.jvp(y, unconnected_gradients=tf.UnconnectedGradients.ZERO)


class RevealCancel(Rule):
    """DeepLIFT's reveal-cancel rule for a linear node followed by a nonlinearity ``g``.

    The delta ``dz = W (a - a_ref)`` of the linear node is split into its
    positive and negative contributions, ``dz+ = W+ da+ + W- da-`` and
    ``dz- = W+ da- + W- da+``; their effects on the nonlinearity are
    ``dy+ = (g(z_ref + dz+) - g(z_ref))/2 + (g(z_ref + dz) - g(z_ref + dz-))/2``
    and ``dy-`` symmetrically, so that ``dy+ + dy- = dy``. Positive
    contributions get the multiplier ``m+ = m_out dy+ / dz+`` and negative
    ones ``m- = m_out dy- / dz-`` (the gradient of ``g`` where ``|dz+-|`` is
    below ``tolerance``). An input with ``da = 0`` contributes nothing; its
    multiplier, which still reaches the layers below, is the mean of the two
    (as in the authors' ``deeplift`` package). The rule is given to the linear
    node; the nonlinearity itself passes the multiplier through.

    Parameters
    ----------
    activation : tfxai.nodes.Node
        The nonlinearity that reads the linear node's output.
    tolerance : float
        Default :data:`TOLERANCE`.
    """

    requires_weights = True

    def __init__(self, activation, tolerance: float = TOLERANCE):
        self.activation = activation
        self.tolerance = float(tolerance)

    def _g(self, z):
        """The nonlinearity at ``z``, in ``z``'s dtype (under mixed precision the layer computes in float16)."""
        return node_function(self.activation, None)(z)

    def backward(self, node, state, relevance):
        a, a_ref = state.inputs[0], state.reference.inputs[0]
        da = a - a_ref
        kernel, _ = state.params
        f_pos = lambda v: node.forward([v], (positive(kernel), None))[0]
        f_neg = lambda v: node.forward([v], (negative(kernel), None))[0]
        dz_pos = f_pos(positive(da)) + f_neg(negative(da))
        dz_neg = f_pos(negative(da)) + f_neg(positive(da))
        z_ref = state.reference.outputs[0]
        g_ref, g_all = self._g(z_ref), self._g(z_ref + dz_pos + dz_neg)
        dy_pos = 0.5 * (self._g(z_ref + dz_pos) - g_ref + g_all - self._g(z_ref + dz_neg))
        dy_neg = 0.5 * (self._g(z_ref + dz_neg) - g_ref + g_all - self._g(z_ref + dz_pos))
        m = relevance[0]
        gradient = vjp(self._g, [state.outputs[0]], m)[0]
        m_pos = _secant(m, dy_pos, dz_pos, self.tolerance, gradient)
        m_neg = _secant(m, dy_neg, dz_neg, self.tolerance, gradient)
        back_pos = lambda s: vjp(f_pos, [a], s)[0]
        back_neg = lambda s: vjp(f_neg, [a], s)[0]
        rising = back_pos(m_pos) + back_neg(m_neg)
        falling = back_pos(m_neg) + back_neg(m_pos)
        return [tf.where(da > 0, rising, tf.where(da < 0, falling, 0.5 * (rising + falling)))]


def is_elementwise(node) -> bool:
    """Whether a node applies an element-wise nonlinearity (softmax excluded)."""
    if node.activation is not None:
        return node.activation != "softmax"
    if issubclass(node.op_type, L.Softmax):
        return False
    if isinstance(node.layer, L.Activation):
        return activation_name(node.layer.activation) != "softmax"
    return issubclass(node.op_type, registry.ACTIVATIONS)


def assign(view, explained, reveal_cancel: bool = False, tolerance: float = TOLERANCE) -> dict:
    """Node name -> DeepLIFT rule for every node the tensor ``explained`` depends on.

    Raises
    ------
    UnsupportedLayerError
        Listing every node DeepLIFT has no rule for (products, normalisations
        over features, attention, recurrent layers, embeddings...).
    """
    chosen, missing = {}, []
    rescale, secant, route = Rescale(tolerance), SecantMax(tolerance), rules.Route()
    needed = ancestors(view, explained)
    for node in view.nodes:
        if node.name not in needed:
            continue
        if is_elementwise(node) and len(node.inputs) == 1:
            chosen[node.name] = rescale
        elif issubclass(node.op_type, MAX_TYPES):
            chosen[node.name] = secant
        elif node.params is not None or issubclass(node.op_type, LINEAR_TYPES):
            chosen[node.name] = route
        else:
            missing.append((node.name, node.op_type.__name__))
    if missing:
        listed = ", ".join(f"{name} ({kind})" for name, kind in missing)
        raise UnsupportedLayerError(
            f"DeepLIFT has no rule for these nodes of model {view.name!r}: {listed}. It supports affine "
            "layers (Dense, convolutions, pooling, sums, reshapes), element-wise activations and max "
            "pooling; use integrated_gradients or gradient_shap for other models.",
            missing,
        )
    if reveal_cancel:
        _pair_reveal_cancel(view, chosen, tolerance)
    return chosen


def _pair_reveal_cancel(view, chosen, tolerance):
    """Give each weighted node whose only reader is a nonlinearity :class:`RevealCancel`."""
    consumers = view.consumers()
    for node in view.nodes:
        readers = consumers.get(node.outputs[0], []) if len(node.outputs) == 1 else []
        if node.params is None or len(node.inputs) != 1 or len(readers) != 1:
            continue
        following = readers[0]
        rule = chosen.get(following.name)
        if node.name in chosen and type(rule) is Rescale:
            chosen[node.name] = RevealCancel(following, tolerance)
            chosen[following.name] = rules.Pass()


def ancestors(view, key) -> set:
    """Names of the nodes whose outputs the tensor ``key`` depends on."""
    producers = view.producers()
    needed, seen, names = [key], set(), set()
    while needed:
        current = needed.pop()
        node = producers.get(current)
        if current in seen or node is None:
            continue
        seen.add(current)
        names.add(node.name)
        needed.extend(node.inputs)
    return names
