"""Forward replay and reverse relevance walk over a GraphView (pure TensorFlow).

Both functions run inside the analyzer's ``tf.function``: the Python loops
unroll once at trace time into one graph.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfxai.graph import GraphView, keras_mask
from tfxai.signs import nonnegative_keys
from tfxai.rules.engine import NodeState


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
        params = node.params() if node.params is not None else None
        masks = [keras_mask(x) for x in node_inputs]  # before the call: some layers detach them
        node_outputs = node.forward(node_inputs, params)
        values.update(zip(node.outputs, node_outputs))
        signs = tuple(key in nonnegative for key in node.inputs)
        states[node.name] = NodeState(node_inputs, list(node_outputs), params, masks, signs)
    return values, states


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
    changes = {
        "inputs": [promote(x) for x in state.inputs],
        "outputs": [promote(y) for y in state.outputs],
        "params": None if state.params is None else tuple(promote(p) for p in state.params),
    }
    for field in dataclasses.fields(state):
        value = getattr(state, field.name)
        if isinstance(value, NodeState):
            changes[field.name] = promoted_state(value)
    return dataclasses.replace(state, **changes)


def propagate(view: GraphView, assignment: dict, states: dict, start: dict) -> dict:
    """Walk the nodes backwards, applying each node's rule.

    Relevance arriving at one tensor from several consumers is summed. It is
    computed in float32 where the forward pass ran in float16 or bfloat16
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
    for node in reversed(view.nodes):
        incoming = [relevance.pop(key, None) for key in node.outputs]
        if all(r is None for r in incoming) or node.name not in assignment:
            continue  # a node without a rule is one no rule carries relevance to (see assignment.assign)
        state = promoted_state(states[node.name])
        incoming = [tf.zeros_like(out) if r is None else r for r, out in zip(incoming, state.outputs)]
        outgoing = assignment[node.name].backward(node, state, incoming)
        for key, r in zip(node.inputs, outgoing):
            if r is not None:
                relevance[key] = relevance[key] + r if key in relevance else r
    return relevance


def input_relevance(view: GraphView, assignment: dict, states: dict, start: dict, xs: list) -> list:
    """:func:`propagate` from ``start``, then the relevance of each model input.

    An input no relevance reaches gets zeros of its own shape and dtype.
    """
    relevance = propagate(view, assignment, states, start)
    return [relevance.get(key, tf.zeros_like(x)) for key, x in zip(view.inputs, xs)]
