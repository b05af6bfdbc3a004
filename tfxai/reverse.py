"""Forward replay and reverse relevance walk over a GraphView (pure TensorFlow).

Both functions run inside the analyzer's ``tf.function``: the Python loops
unroll once at trace time into one graph.
"""

from __future__ import annotations

import dataclasses
import functools
import operator

import tensorflow as tf

from tfxai import rectified
from tfxai.graph import GraphView, keras_mask
from tfxai.rules.engine import NodeState
from tfxai.signs import nonnegative_keys


def forward(view: GraphView, inputs: list, overrides: dict | None = None):
    """Run the view on concrete inputs, keeping what rules need.

    Parameters
    ----------
    view : GraphView
        The (canonized) model.
    inputs : list of tf.Tensor
        One tensor per model input.
    overrides : dict, optional
        Tensor key -> value used instead of computing it (a node all of whose
        outputs are given is skipped): Integrated Gradients moves embedding
        outputs along its path so.

    Returns
    -------
    values : dict
        Tensor key -> tensor, for every tensor of the view.
    states : dict
        Node name -> :class:`~tfxai.rules.NodeState`.
    """
    values = dict(zip(view.inputs, inputs))
    states = {}
    overrides = overrides or {}
    nonnegative = nonnegative_keys(view, unknown=overrides)
    for node in view.nodes:
        if node.outputs and all(key in overrides for key in node.outputs):
            values.update((key, overrides[key]) for key in node.outputs)
            continue
        node_inputs = [values[key] for key in node.inputs]
        if node.params is not None:  # a linear node: cast its input as Keras' autocast would
            node_inputs = [_to_compute_dtype(x, node.layer) for x in node_inputs]
        params = _weights_when_needed(node, node_inputs)
        masks = [keras_mask(x) for x in node_inputs]  # before the call: some layers detach them
        node_outputs = node.forward(node_inputs, params)
        values.update(zip(node.outputs, node_outputs))
        signs = tuple(key in nonnegative for key in node.inputs)
        states[node.name] = NodeState(node_inputs, list(node_outputs), params, masks, signs)
    return values, states


def _weights_when_needed(node, node_inputs):
    """``node.params()`` computed once the node's inputs exist (inside a ``tf.function``).

    A BatchNorm folded into a kernel is computed from the variables alone,
    so TensorFlow would compute every layer's folded kernel when the call
    starts and hold them all until each layer ran (ResNet50: 100 MB, more
    than a batch-1 gradient holds in all).
    """
    if node.params is None:
        return None
    ready = [x for x in node_inputs if isinstance(x, tf.Tensor)]
    if not ready or tf.executing_eagerly():
        return node.params()
    with tf.control_dependencies(ready):
        return node.params()


def _to_compute_dtype(x, layer):
    dtype = tf.as_dtype(getattr(layer, "compute_dtype", None) or x.dtype)
    return tf.cast(x, dtype) if x.dtype.is_floating and dtype.is_floating and x.dtype != dtype else x


HALF_PRECISION = (tf.float16, tf.bfloat16)
"""Dtypes the backward walk promotes to float32."""


def promote(x):
    """``x`` in float32 if it is float16 / bfloat16 (else unchanged; ``None`` stays ``None``).

    Under mixed precision the forward replay runs in the model's compute
    dtype (float16 has 11 significant bits and overflows above 65504), but
    relevance is propagated in float32: a denominator ``z_k`` of a few 1e-5
    (or a stabiliser ``epsilon`` of 1e-7, below float16's smallest normal
    number 6e-5) would otherwise turn ``R_k / z_k`` into an overflow or a
    loss of every significant bit.
    """
    return tf.cast(x, tf.float32) if x is not None and x.dtype in HALF_PRECISION else x


def promoted_state(state: NodeState) -> NodeState:
    """A node's forward state with every half-precision tensor in float32 (subclass fields recursively)."""
    return _map_state(state, promote)


def gated_state(state: NodeState, relevance: list, params=None) -> NodeState:
    """``state`` with every tensor made to wait for ``relevance`` (inside a ``tf.function``).

    What a rule computes from the forward pass alone (a modified-weight
    convolution ``z^+``, a stabilised denominator, the positive part of a
    kernel) would otherwise be scheduled as soon as the forward pass produced
    its inputs, and held until the backward walk reaches the node: one more
    tensor the size of each layer's output, for every layer at once. Gated,
    it is computed when the node's relevance arrives and freed when the node
    is done, as a gradient's intermediates are. ``tf.identity`` forwards the
    buffer: nothing is copied.

    ``params``, the node's ``params`` callable, is called again behind the
    gate: weights derived from the layer's (a BatchNorm folded into a
    kernel) are then recomputed, an element-wise product, rather than held
    from the forward pass until the walk reaches the node.
    """
    ready = [r for r in relevance if r is not None]
    if not ready or tf.executing_eagerly():
        return state

    def gate(x):
        return tf.identity(x) if isinstance(x, tf.Tensor) else x

    with tf.control_dependencies(ready):
        state = _map_state(state, gate)
        if params is not None and state.params is not None:
            state = dataclasses.replace(state, params=tuple(promote(p) for p in params()))
    return state


def _map_state(state: NodeState, function) -> NodeState:
    """``state`` with ``function`` applied to its inputs, outputs and params (subclass fields recursively)."""
    changes = {
        "inputs": [function(x) for x in state.inputs],
        "outputs": [function(y) for y in state.outputs],
        "params": None if state.params is None else tuple(function(p) for p in state.params),
    }
    for field in dataclasses.fields(state):
        value = getattr(state, field.name)
        if isinstance(value, NodeState):
            changes[field.name] = _map_state(value, function)
    return dataclasses.replace(state, **changes)


def propagate(view: GraphView, assignment: dict, states: dict, start: dict) -> dict:
    """Walk the nodes backwards, applying each node's rule.

    Relevance arriving at one tensor from several consumers is summed. A
    node's rule runs once its relevance has arrived (:func:`gated_state`);
    where a ReLU alone reads a node's output, the ReLU's output stands in for
    it (:func:`tfxai.rectified.stand_ins`; same values, less memory held).
    Relevance is computed in float32 where the forward pass ran in float16 or bfloat16
    (see :func:`promote`).

    Parameters
    ----------
    view : GraphView
        The (canonized) model.
    assignment : dict
        Node name -> Rule, for the nodes relevance can reach.
    states : dict
        Node name -> NodeState, from :func:`forward`.
    start : dict
        Tensor key -> initial relevance (usually the selected output).

    Returns
    -------
    dict
        Tensor key -> relevance for every tensor relevance reached that no node
        produces (the model inputs).
    """
    relevance = {key: promote(r) for key, r in start.items()}
    memory = _MemorySaver(view, assignment, states, frozenset(start))
    for node in reversed(view.nodes):
        incoming = [relevance.pop(key, None) for key in node.outputs]
        if all(r is None for r in incoming) or node.name not in assignment:
            continue  # a node without a rule is one no rule carries relevance to (see assignment.assign)
        state = memory.state(node, incoming)
        incoming = [tf.zeros_like(out) if r is None else r for r, out in zip(incoming, state.outputs)]
        outgoing = assignment[node.name].backward(node, state, incoming)
        for key, r in zip(node.inputs, outgoing):
            if r is not None:
                relevance[key] = relevance[key] + r if key in relevance else r
    return relevance


class _MemorySaver:
    """The state each node's rule receives, built so that the walk holds what a gradient holds.

    - every tensor waits for the node's relevance (:func:`gated_state`);
    - where a plain ReLU alone reads a node's output ``z``, its output stands
      in for ``z`` (:func:`tfxai.rectified.stand_ins`: same values);
    - one input of a residual sum is recomputed from the sum's stand-in and
      the other inputs (:func:`tfxai.rectified.recomputed_inputs`), and the
      producer of that input gets the same tensor as its output.
    """

    def __init__(self, view, assignment, states, start_keys):
        self.states = states
        self.rectifiers = rectified.stand_ins(view, assignment, start_keys)
        self.sums = rectified.recomputed_inputs(view, assignment, start_keys, self.rectifiers)
        self.derived = {}  # producer name -> its recomputed output

    def state(self, node, incoming) -> NodeState:
        state = self.states[node.name]
        if node.name in self.rectifiers:
            state = dataclasses.replace(state, outputs=list(self.states[self.rectifiers[node.name]].outputs))
        if node.name in self.derived:
            state = dataclasses.replace(state, outputs=[self.derived.pop(node.name)])
        half = any(y.dtype in HALF_PRECISION for y in state.outputs)
        state = gated_state(promoted_state(state), incoming, node.params)
        if node.name in self.sums and not half:
            index, producer = self.sums[node.name]
            others = [x for i, x in enumerate(state.inputs) if i != index]
            recomputed = state.outputs[0] - functools.reduce(operator.add, others)
            inputs = list(state.inputs)
            inputs[index] = recomputed
            state = dataclasses.replace(state, inputs=inputs)
            self.derived[producer] = recomputed
        return state


def input_relevance(view: GraphView, assignment: dict, states: dict, start: dict, xs: list) -> list:
    """:func:`propagate` from ``start``, then the relevance of each model input.

    An input no relevance reaches gets zeros of its own shape and dtype.
    """
    relevance = propagate(view, assignment, states, start)
    return [relevance.get(key, tf.zeros_like(x)) for key, x in zip(view.inputs, xs)]
