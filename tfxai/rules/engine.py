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

import numpy as np
import tensorflow as tf

from tfxai import validation


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
        y = _like(function(*xs), cotangent)
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


def sum_to_shape(relevance, x):
    """Sum ``relevance`` over the axes along which ``x`` was broadcast, to ``x``'s shape."""
    extra = relevance.shape.rank - x.shape.rank
    if extra > 0:
        relevance = tf.reduce_sum(relevance, axis=list(range(extra)))
    axes = [i for i, (dr, dx) in enumerate(zip(relevance.shape, x.shape)) if dx == 1 and dr != 1]
    return tf.reduce_sum(relevance, axis=axes, keepdims=True) if axes else relevance


class Rule:
    """Base class of relevance rules.

    Attributes
    ----------
    requires_weights : bool
        True for rules that modify weights; the analyzer refuses to give them to
        a node without weights.
    """

    requires_weights = False

    def check_node(self, node, input_shapes: list) -> None:
        """Raise if the rule's parameters cannot apply to ``node`` (called when rules are assigned).

        ``input_shapes`` are the static shapes of the node's inputs, batch
        axis included. The default accepts every node.
        """

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


def _like(y, reference):
    """``y`` (a tensor or list of tensors) cast to the float dtype of ``reference``.

    A Keras layer under a mixed-precision policy casts its inputs to its
    compute dtype (float16); the backward walk runs in float32, so outputs
    are cast back to the dtype the walk uses.
    """
    if isinstance(y, (list, tuple)):
        refs = reference if isinstance(reference, (list, tuple)) else [reference] * len(y)
        return [_like(t, r) for t, r in zip(y, refs)]
    if reference is None or not y.dtype.is_floating or not reference.dtype.is_floating:
        return y
    return tf.cast(y, reference.dtype) if y.dtype != reference.dtype else y


def _first_float(xs):
    return next((x for x in xs if x.dtype.is_floating), None)


def node_function(node, params):
    """``f(*inputs) -> first output`` of a node with fixed ``params``, in the dtype of its inputs."""
    return lambda *xs: _like(node.forward(list(xs), params)[0], _first_float(xs))


def with_params(node, kernel, bias):
    """``f(x) -> first output`` of a one-input node with weights ``(kernel, bias)``, in ``x``'s dtype."""
    return lambda x: _like(node.forward([x], (kernel, bias))[0], x)


def single_input(state: NodeState, rule) -> Any:
    """The one input of a node; a ``ValueError`` naming ``rule`` if it has several."""
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
        self.ignore_bias = validation.flag("ignore_bias", ignore_bias, owner=type(self).__name__)

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
        function = node_function(node, params)
        reuse_forward = state.params is None or (
            not self._modifies_weights() and (not self.ignore_bias or state.params[1] is None)
        )
        z = state.outputs[0] if reuse_forward else function(*state.inputs)
        s = self.divide(relevance[0], z)
        grads = vjp(function, state.inputs, s)
        return [x * g for x, g in zip(state.inputs, grads)]
