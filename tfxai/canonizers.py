"""Canonizers: rewrite a GraphView into an equivalent one rules can work on.

Each canonizer takes a :class:`~tfxai.graph.GraphView` and returns a NEW view
that computes the same function; the user's Keras model is never touched.

* :func:`linearize` gives every Dense/Conv node substitutable weights and splits
  a fused activation (``Dense(activation="relu")``) into its own node, so rules
  see the pre-activation ``z``.
* :func:`fold_batch_norms` merges an inference BatchNormalization into the
  linear node before it (``BN(W x + b) = W' x + b'``); a BatchNormalization
  with no such neighbour becomes an element-wise affine linear node.
* :func:`strip_softmax` makes explanations start from the logits when a model
  output is a softmax.
"""

from __future__ import annotations

import keras

from tfxai import linear
from tfxai.graph import GraphView, Node


def canonize(view: GraphView) -> GraphView:
    """Apply every canonizer, in order.

    Parameters
    ----------
    view : GraphView
        The view from :func:`tfxai.graph.build_view`.

    Returns
    -------
    GraphView
        An equivalent view whose weighted layers are linear nodes.
    """
    for canonizer in (linearize, fold_batch_norms, strip_softmax):
        view = canonizer(view)
    return view


def activation_name(function) -> str | None:
    """Name of a Keras activation function (``"relu"``), ``None`` for linear."""
    if function is None:
        return None
    name = getattr(function, "__name__", type(function).__name__)
    return None if name == "linear" else name


def linear_node(node: Node, lmap: linear.LinearMap, **changes) -> Node:
    """A node computing ``lmap.forward`` on its single input with its weights."""

    def forward(values, params):
        return [lmap.forward(values[0], *params)]

    return node.replace(forward=forward, params=lmap.weights, **changes)


def activation_node(name, layer, z_key, out_key, function) -> Node:
    """A node applying the element-wise ``function`` to ``z_key``."""
    return Node(
        name=name,
        layer=layer,
        op_type=keras.layers.Activation,
        inputs=(z_key,),
        outputs=(out_key,),
        forward=lambda values, params=None: [function(values[0])],
        activation=activation_name(function),
    )


def linearize(view: GraphView) -> GraphView:
    """Turn weighted layers into linear nodes; split fused activations."""
    nodes = []
    shapes = dict(view.shapes)
    for node in view.nodes:
        lmap = linear.linear_map(node.layer) if node.params is None else None
        if lmap is None or node.op_type is not type(node.layer):
            nodes.append(node)
            continue
        act = activation_name(node.layer.activation)
        if act is None:
            nodes.append(linear_node(node, lmap))
            continue
        z_key = (node.name, "z")
        shapes[z_key] = shapes[node.outputs[0]]
        nodes.append(linear_node(node, lmap, outputs=(z_key,)))
        nodes.append(
            activation_node(
                node.name + "/activation", node.layer, z_key, node.outputs[0], node.layer.activation
            )
        )
    return view.replace(nodes=tuple(nodes), shapes=shapes)


def fold_batch_norms(view: GraphView) -> GraphView:
    """Fold BatchNormalization into the preceding linear node, else make it affine."""
    producers = view.producers()
    consumers = view.consumers()
    folded = {}  # id(linear node) -> folded node
    dropped = set()  # id() of the folded BatchNormalization nodes
    for node in view.nodes:
        if isinstance(node.layer, keras.layers.BatchNormalization) and node.params is None:
            source = producers.get(node.inputs[0])
            if _can_fold(view, source, node, consumers):
                folded[id(source)] = _fold(source, node)
                dropped.add(id(node))
    nodes = []
    for node in view.nodes:
        if id(node) in dropped:
            continue
        node = folded.get(id(node), node)
        if isinstance(node.layer, keras.layers.BatchNormalization) and node.params is None:
            node = linear_node(node, linear.batch_norm_map(node.layer))
        nodes.append(node)
    return view.replace(nodes=tuple(nodes))


def _fold(source: Node, norm_node: Node) -> Node:
    """``BN(W x + b) = (W s) x + (b s + t)``, with BN scale ``s`` and shift ``t``."""

    def params():
        kernel, bias = source.params()
        scale, shift = linear.batch_norm_scale_shift(norm_node.layer)
        return kernel * scale, shift if bias is None else bias * scale + shift

    return source.replace(params=params, outputs=norm_node.outputs, name=f"{source.name}+{norm_node.name}")


def _can_fold(view, source, norm_node, consumers) -> bool:
    if source is None or source.params is None or source.activation is not None:
        return False
    if type(source.layer) not in linear.LINEAR_MAPS or source.op_type is not type(source.layer):
        return False
    z_key = norm_node.inputs[0]
    if len(consumers.get(z_key, ())) != 1 or z_key in view.outputs:
        return False
    rank = len(view.shapes[z_key])
    norm_axis = norm_node.layer.axis
    norm_axis = norm_axis if isinstance(norm_axis, int) else norm_axis[0]
    return norm_axis % rank == linear.output_channel_axis(source.layer) % rank


def strip_softmax(view: GraphView) -> GraphView:
    """Explain the logits where a model output is a softmax activation."""
    producers = view.producers()
    explained = []
    for key in view.explained:
        node = producers.get(key)
        is_softmax = node is not None and (
            node.activation == "softmax"
            or isinstance(node.layer, keras.layers.Softmax)
            or (
                isinstance(node.layer, keras.layers.Activation)
                and activation_name(node.layer.activation) == "softmax"
            )
        )
        explained.append(node.inputs[0] if is_softmax else key)
    return view.replace(explained=tuple(explained))
