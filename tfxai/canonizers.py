"""Canonizers: rewrite a GraphView into an equivalent one rules can work on.

Each canonizer takes a :class:`~tfxai.nodes.GraphView` and returns a NEW view
that computes the same function; the user's Keras model is never touched.
:data:`CANONIZERS` lists them in the order :func:`canonize` applies them:

* :func:`unwrap_time_distributed` treats ``TimeDistributed(Dense)`` as the
  Dense it wraps.
* :func:`linearize` gives every weighted layer (Dense, Conv, DepthwiseConv,
  SeparableConv, ConvTranspose) substitutable weights and splits a fused
  activation (``Dense(activation="relu")``) into its own node, so rules see the
  pre-activation ``z``. A separable convolution is one linear node whose
  kernel composes its depthwise and pointwise kernels, so relevance flows
  through both convolutions at once.
* :func:`~tfxai.folding.fold_affine` merges a per-channel affine layer
  (inference BatchNormalization, ConvNeXt's LayerScale) into the linear node
  before it (``s * (W x + b) + t = (W s) x + (b s + t)``) or, where that is
  not possible and it is exact, into the one after it (through average
  pooling and Flatten); one with no such neighbour becomes an element-wise
  affine linear node (see :mod:`tfxai.folding`).
* :func:`mark_constant_affine` retypes raw operations of one tensor and
  constants (``x / 255``, ``x - mean``, ``x * 0.5``) as :class:`ConstantAffine`.
* :func:`mark_gates` finds the gate of element-wise products (squeeze-and-
  excitation, EfficientNet / MobileNetV3 gating) and retypes them as
  :class:`GatedProduct`, signal first.
* :func:`tfxai.rules.transformer.mark_attention_mix` retypes products of
  attention weights and values (``einsum``/``matmul`` of a softmax output).
* :func:`strip_softmax` makes explanations start from the logits when a model
  output is a softmax.
"""

from __future__ import annotations

import keras

from tfxai import linear
from tfxai.folding import AFFINE_LAYERS, NO_OPS, fold_affine, linear_node  # noqa: F401 (re-exported)
from tfxai.graph import GraphView, Node, raw_op_classes
from tfxai.rules import transformer
from tfxai.signs import is_rectifier  # noqa: F401 (re-exported)


def canonize(view: GraphView, canonizers=None) -> GraphView:
    """Apply every canonizer, in order.

    Parameters
    ----------
    view : GraphView
        The view from :func:`tfxai.graph.build_view`.
    canonizers : sequence of callable, optional
        Default :data:`CANONIZERS`; :data:`KEEP_INTERMEDIATES` for analyzers
        that read intermediate tensors of the model.

    Returns
    -------
    GraphView
        An equivalent view whose weighted layers are linear nodes.
    """
    canonizers = CANONIZERS if canonizers is None else canonizers
    view = view.replace(nodes=tuple(_canonize_inner(node, canonizers) for node in view.nodes))
    for canonizer in canonizers:
        view = canonizer(view)
    return view


def _canonize_inner(node: Node, canonizers) -> Node:
    """A node captured per sample gets its inner graph canonized too (its outputs are not explained: no softmax strip)."""
    if node.inner is None:
        return node
    inner = node.inner.replace(nodes=tuple(_canonize_inner(n, canonizers) for n in node.inner.nodes))
    for canonizer in canonizers:
        if canonizer is not strip_softmax:
            inner = canonizer(inner)
    return node.replace(inner=inner)


def activation_name(function) -> str | None:
    """Name of a Keras activation function (``"relu"``), ``None`` for linear."""
    if function is None:
        return None
    name = getattr(function, "__name__", type(function).__name__)
    return None if name == "linear" else name


SPLIT_ACTIVATION = "split_activation"
""":attr:`~tfxai.nodes.Node.rewrite` of the activation node :func:`linearize` splits off a layer."""

RETYPING_REWRITES = (SPLIT_ACTIVATION, "mark_constant_affine", "mark_gates")
"""Rewrites after which a node no longer computes its layer's own output (it has another type)."""


def activation_node(source: Node, z_key, function) -> Node:
    """The fused activation of ``source``, as its own node applying ``function`` to ``z_key``."""
    return Node(
        name=source.name + "/activation",
        layer=source.layer,
        op_type=keras.layers.Activation,
        inputs=(z_key,),
        outputs=source.outputs,
        forward=lambda values, params=None: [function(values[0])],
        activation=activation_name(function),
        origin=source.origin,
        rewrite=SPLIT_ACTIVATION,
    )


def linearize(view: GraphView) -> GraphView:
    """Turn weighted layers into linear nodes; split fused activations.

    Dense, Conv (grouped too), DepthwiseConv, SeparableConv and ConvTranspose
    layers become one linear node with substitutable weights (``params()``);
    a separable convolution is one convolution whose kernel composes its
    depthwise and pointwise kernels (see :func:`tfxai.linear.separable_map`).
    A fused activation becomes the node ``<name>/activation``.
    """
    nodes = []
    shapes = dict(view.shapes)
    for node in view.nodes:
        weighted = node.params is None and issubclass(node.op_type, tuple(linear.LINEAR_MAPS))
        lmap = linear.linear_map(node.layer) if weighted else None
        if lmap is None:
            nodes.append(node)
            continue
        act = activation_name(node.layer.activation)
        if act is None:
            nodes.append(linear_node(node, lmap, "linearize"))
            continue
        z_key = (node.name, "z")
        shapes[z_key] = shapes[node.outputs[0]]
        nodes.append(linear_node(node, lmap, "linearize", outputs=(z_key,)))
        nodes.append(activation_node(node, z_key, node.layer.activation))
    return view.replace(nodes=tuple(nodes), shapes=shapes)


class ConstantAffine:
    """Node type of a raw element-wise operation of ONE tensor and constants.

    ``x / 255``, ``x - mean``, ``x * 0.5``, ``keras.ops.subtract(x, mean)``:
    input preprocessing and fixed rescalings, which the registry passes
    relevance through unchanged (like ``Rescaling`` and ``Normalization``).
    """


CONSTANT_AFFINE_OPS = raw_op_classes("Add", "Subtract", "Multiply", "Divide", "TrueDivide")
"""Raw operations that are element-wise affine when only one argument is a tensor."""


def mark_constant_affine(view: GraphView) -> GraphView:
    """Retype raw ``+ - * /`` of one tensor and constants as :class:`ConstantAffine`.

    Only when the output has the shape of the tensor input; an operation
    whose constant broadcasts the tensor to a larger shape keeps its type.
    """
    nodes = []
    for node in view.nodes:
        if (
            node.is_original
            and issubclass(node.op_type, CONSTANT_AFFINE_OPS)
            and len(node.inputs) == 1
            and view.shapes[node.inputs[0]] == view.shapes[node.outputs[0]]
        ):
            node = node.rewritten("mark_constant_affine", op_type=ConstantAffine)
        nodes.append(node)
    return view.replace(nodes=tuple(nodes))


class GatedProduct:
    """Node type of an element-wise product whose FIRST input is the signal, the others gates.

    Made by :func:`mark_gates`; the registry gives it
    :class:`~tfxai.rules.SignalTakeAll`.
    """


PRODUCTS = (keras.layers.Multiply,) + raw_op_classes("Multiply")
"""Element-wise products of several tensors."""

GATE_ACTIVATIONS = ("sigmoid", "hard_sigmoid")
"""Activations whose output, multiplied onto another tensor, makes it a gate."""

_GATE_OPS = raw_op_classes("Sigmoid", "HardSigmoid")
_RESHAPES = (keras.layers.Reshape,) + raw_op_classes("Reshape", "ExpandDims", "Squeeze")
_RELU6_OPS = raw_op_classes("Relu6")
def mark_gates(view: GraphView) -> GraphView:
    """Find the gate of each element-wise product; retype it :class:`GatedProduct`, signal first.

    The decision, per ``Multiply`` layer or raw ``*`` of several tensors:

    1. an input is a gate when it comes from a sigmoid or hard-sigmoid
       activation (any form: ``Activation``, a fused ``activation=``, a raw
       ``keras.ops`` call; also ``relu6(x + 3) / 6``, MobileNetV3's written-
       out hard sigmoid), possibly through reshapes and constant rescalings;
    2. if that marks none or all of them, an input is a gate when it has fewer
       elements than the product (broadcast, as the ``(1, 1, C)`` channel
       weights of squeeze-and-excitation blocks);
    3. with exactly one input left as the signal, the node becomes a
       :class:`GatedProduct`; otherwise it stays a plain product, whose
       registered rule splits relevance equally between its factors.
    """
    producers = view.producers()
    nodes = []
    for node in view.nodes:
        if node.is_original and issubclass(node.op_type, PRODUCTS) and len(node.inputs) > 1:
            signals = _signal_inputs(view, node, producers)
            if len(signals) == 1:
                node = _signal_first(node, signals[0])
        nodes.append(node)
    return view.replace(nodes=tuple(nodes))


def _signal_inputs(view, node, producers) -> list:
    """Indices of the inputs of a product that are not gates (see :func:`mark_gates`)."""
    n = len(node.inputs)
    gates = [i for i, key in enumerate(node.inputs) if _comes_from_gate_activation(key, producers)]
    if 0 < len(gates) < n:
        return [i for i in range(n) if i not in gates]
    out_shape = view.shapes[node.outputs[0]]
    broadcast = [i for i, key in enumerate(node.inputs) if _is_broadcast(view.shapes[key], out_shape)]
    if 0 < len(broadcast) < n:
        return [i for i in range(n) if i not in broadcast]
    return list(range(n))


def _is_broadcast(shape, out_shape) -> bool:
    """Whether a tensor of ``shape`` is broadcast to ``out_shape``: fewer elements, or size 1 on an axis the output has larger."""
    if _size(shape) < _size(out_shape):
        return True
    pairs = zip(reversed(shape[1:]), reversed(out_shape[1:]))
    return len(shape) < len(out_shape) or any(d == 1 and o != 1 for d, o in pairs)


def _size(shape) -> float:
    size = 1.0
    for d in shape[1:]:
        size *= float("inf") if d is None else d
    return size


def _comes_from_gate_activation(key, producers) -> bool:
    rescaled = False
    node = producers.get(key)
    while node is not None and len(node.inputs) == 1:
        if _activation(node) in GATE_ACTIVATIONS or issubclass(node.op_type, _GATE_OPS):
            return True
        if rescaled and _is_clipped_relu(node):
            return True
        if issubclass(node.op_type, ConstantAffine):
            rescaled = True
        elif not issubclass(node.op_type, _RESHAPES):
            return False
        node = producers.get(node.inputs[0])
    return False


def _activation(node) -> str | None:
    if node.activation is not None:
        return node.activation
    if node.is_original and isinstance(node.layer, keras.layers.Activation):
        return activation_name(node.layer.activation)
    return None


def _is_clipped_relu(node) -> bool:
    if node.is_original and isinstance(node.layer, keras.layers.ReLU):
        return node.layer.max_value is not None
    return issubclass(node.op_type, _RELU6_OPS) or _activation(node) == "relu6"


def _signal_first(node: Node, signal: int) -> Node:
    order = [signal] + [i for i in range(len(node.inputs)) if i != signal]
    original_forward = node.forward

    def forward(values, params=None):
        restored = [None] * len(values)
        for position, index in enumerate(order):
            restored[index] = values[position]
        return original_forward(restored, params)

    inputs = tuple(node.inputs[i] for i in order)
    return node.rewritten("mark_gates", op_type=GatedProduct, inputs=inputs, forward=forward)


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


def unwrap_time_distributed(view: GraphView) -> GraphView:
    """Treat ``TimeDistributed(Dense)`` as the Dense it wraps.

    A Dense layer already acts on the last axis of an input of any rank, so
    applying it to every time step is the Dense itself: the node gets the
    Dense as its layer and type, and :func:`linearize` makes it a linear node.
    Only unmasked calls (one input); other wrapped layers keep their type.
    """
    nodes = []
    for node in view.nodes:
        layer = node.layer
        if (
            node.is_original
            and isinstance(layer, keras.layers.TimeDistributed)
            and isinstance(layer.layer, keras.layers.Dense)
            and len(node.inputs) == 1
        ):
            node = node.rewritten("unwrap_time_distributed", layer=layer.layer, op_type=type(layer.layer))
        nodes.append(node)
    return view.replace(nodes=tuple(nodes))


CANONIZERS = (
    unwrap_time_distributed,
    linearize,
    fold_affine,
    mark_constant_affine,
    mark_gates,
    transformer.mark_attention_mix,
    strip_softmax,
)
"""Every canonizer, in the order :func:`canonize` applies them."""


def fold_affine_backward(view: GraphView) -> GraphView:
    """:func:`~tfxai.folding.fold_affine` without forward folds: every tensor of the model stays in the view."""
    return fold_affine(view, forward=False)


KEEP_INTERMEDIATES = tuple(fold_affine_backward if c is fold_affine else c for c in CANONIZERS)
"""The canonizers for analyzers that read intermediate tensors (Grad-CAM): no forward folds."""
