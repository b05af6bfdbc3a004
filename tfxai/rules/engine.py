"""The rule base class, the tensors rules receive, and the engine of the LRP rules.

A rule is a small, stateless object validated at construction. Its one method,
``backward(node, state, relevance)``, receives the node (see
:class:`tfxai.nodes.Node`), the concrete tensors of the forward pass
(:class:`NodeState`) and the relevance of each node output, and returns the
relevance of each node input.

Most LRP rules share one shape (Bach et al. 2015; Montavon et al. 2019):

    R_j = a'_j * sum_k w'_jk R_k / stab(z'_k),   z'_k = sum_j a'_j w'_jk + b'_k

computed without materialising ``z_jk``: one forward of the layer with modified
inputs ``a'`` and weights ``w' = rho(w)``, an element-wise division, one
vector-Jacobian product (a transposed matmul / convolution) and a product with
``a'``. Rules that split the contributions (alpha-beta, z^B, generalised
gamma) need a sum of such linear maps, ``z' = sum_t f_t(a'_t)``.
:class:`TermRule` implements that once, :class:`LinearRule` is its one-term
form; the rules of :mod:`tfxai.rules.lrp` only declare their terms and
modifiers.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from tfxai import validation
from tfxai.errors import ModelError


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
    nonnegative : tuple of bool
        For each input, whether the graph makes it ``>= 0`` whatever the
        model input (see :mod:`tfxai.signs`); empty where unknown. Rules
        that split by sign skip the negative part of such inputs.
    """

    inputs: list
    outputs: list
    params: Any = None
    masks: Any = None
    nonnegative: tuple = ()

    def input_nonnegative(self, index: int = 0) -> bool:
        """Whether input ``index`` is known to be ``>= 0`` (see :attr:`nonnegative`)."""
        return index < len(self.nonnegative) and self.nonnegative[index]


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
    ratio_form : bool
        True for rules of the form ``R_in = a * f(R_out / z')``: the
        relevance of an input is zero wherever that input is zero, and the
        node's forward output ``z`` enters only through such ratios, so its
        value does not matter where ``R_out`` is zero. The backward walk
        then lets a ReLU's output stand in for the ``z`` it rectifies (see
        :mod:`tfxai.rectified`). A subclass that changes either property
        must set it to False.
    """

    requires_weights = False
    ratio_form = False

    def check_node(self, node, input_shapes: list) -> None:
        """Raise if the rule's parameters cannot apply to ``node`` (called when rules are assigned).

        ``input_shapes`` are the static shapes of the node's inputs, batch
        axis included. The default accepts every node.
        """

    def backward(self, node, state: NodeState, relevance: list) -> list:
        """Relevance of each input of ``node`` from the relevance of its outputs.

        Parameters
        ----------
        node : tfxai.nodes.Node
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


def single_input(state: NodeState, rule) -> Any:
    """The one input of a node; a ``ValueError`` naming ``rule`` if it has several."""
    if len(state.inputs) != 1:
        raise ModelError(f"{type(rule).__name__} expects a node with one input; got {len(state.inputs)}.")
    return state.inputs[0]


@dataclasses.dataclass(frozen=True)
class Term:
    """One linear map of a :class:`TermRule`, and the inputs it is evaluated at.

    Attributes
    ----------
    function : callable
        ``function(*inputs) -> z_t``, linear (or affine) in its inputs.
    inputs : list of tf.Tensor
        The modified inputs ``a'``, one per node input.
    output : tf.Tensor or None
        ``function(*inputs)`` where it is known already (the forward pass's
        ``z``). The denominator then uses it, so that inside a
        ``tf.function`` the term's own forward is pruned wherever its
        gradient does not need it (a matmul or a convolution).
    """

    function: Callable
    inputs: list
    output: Any = None


def weighted_term(node, x, kernel, bias=None, output=None) -> Term:
    """The :class:`Term` of a one-input node's linear map of ``x`` with weights ``(kernel, bias)``."""
    return Term(node_function(node, (kernel, bias)), [x], output)


class TermRule(Rule):
    """The engine of the LRP rules: a sum of linear terms and a stabilised division.

    A rule declares its terms ``t``, each a linear map ``z_t = f_t(a'_t)`` of
    modified inputs (:meth:`terms`), and the cotangent ``s_t`` each term
    receives from the relevance ``R`` of the node's output
    (:meth:`cotangents`; by default ``s = divide(R, sum_t z_t)`` for every
    term). The engine returns, for each node input,

        R_in = sum_t a'_t * J_t^T s_t

    from one forward per term (reusing :attr:`Term.output` where given) and
    ONE gradient call for all terms. :class:`LinearRule` is one term with
    modified weights; alpha-beta has two terms per sign, z^B three.
    """

    def terms(self, node, state: NodeState) -> list:
        """The :class:`Term` objects of ``node`` in this forward pass."""
        raise NotImplementedError

    def divide(self, relevance, z):
        """``relevance / stab(z')``; where the denominator is 0, no relevance flows."""
        return tf.math.divide_no_nan(relevance, z)

    def cotangents(self, relevance, outputs: list) -> list:
        """The ``s_t`` of each term from the output relevance and the terms' outputs ``z_t``."""
        return [self.divide(relevance, functools.reduce(operator.add, outputs))] * len(outputs)

    def backward(self, node, state, relevance):
        terms = self.terms(node, state)
        inputs = [[tf.identity(x) for x in term.inputs] for term in terms]
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = [term.function(*xs) for term, xs in zip(terms, inputs)]
        known = [z if term.output is None else term.output for term, z in zip(terms, outputs)]
        grads = tape.gradient(
            outputs,
            inputs,
            output_gradients=self.cotangents(relevance[0], known),
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        products = [[x * g for x, g in zip(term.inputs, gs)] for term, gs in zip(terms, grads)]
        return [functools.reduce(operator.add, column) for column in zip(*products)]


class LinearRule(TermRule):
    """Generic LRP rule ``R_j = a'_j sum_k w'_jk R_k / stab(z'_k)``: one term.

    Subclasses declare their modifiers by overriding :meth:`modify_weights`
    and :meth:`divide`. Nodes without weights (average pooling, ``Add``)
    use their own forward function as the linear map. Without modified
    weights, ``z`` is the forward pass's.

    Parameters
    ----------
    ignore_bias : bool
        Drop the bias from ``z'`` (iNNvestigate's ``...IgnoreBias`` variants).
    """

    ratio_form = True

    def __init__(self, ignore_bias: bool = False):
        self.ignore_bias = validation.flag("ignore_bias", ignore_bias, owner=type(self).__name__)

    def modify_weights(self, kernel, bias):
        """``rho``: return the modified ``(kernel, bias)``."""
        return kernel, bias

    def _modifies_weights(self) -> bool:
        return type(self).modify_weights is not LinearRule.modify_weights

    def terms(self, node, state):
        if state.params is None:
            return [Term(node_function(node, None), state.inputs, state.outputs[0])]
        kernel, bias = state.params
        params = self.modify_weights(kernel, None if self.ignore_bias else bias)
        unchanged = not self._modifies_weights() and (not self.ignore_bias or bias is None)
        return [Term(node_function(node, params), state.inputs, state.outputs[0] if unchanged else None)]
