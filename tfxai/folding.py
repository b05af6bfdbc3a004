"""Folding per-channel affine layers (inference BatchNorm, LayerScale) into linear nodes.

An inference ``BatchNormalization`` computes ``y = s * x + t`` per channel
(``s = gamma / sqrt(var + eps)``, ``t = beta - mean * s``); ConvNeXt's
``LayerScale`` is ``y = s * x``. :func:`fold_affine` removes such a layer by
merging it into a linear node, where that is exact:

* **backward**, into the linear node before it (zennit's
  ``SequentialMergeBatchNorm``): ``s * (W x + b) + t = (W s) x + (b s + t)``;
* **forward**, into the linear node after it, where no backward fold applies
  (a BatchNorm after an activation): ``W (s * x + t) + b = (W s) x + (W t + b)``.
  Between the two may lie average pooling (global or not) and ``Flatten``
  (into a Dense layer), which commute with a per-channel affine map. Into a
  convolution only with ``"valid"`` padding (or a kernel of size 1): zero
  padding would see ``0`` where the unfolded layer sees ``t``, so ``W t`` would
  not be one bias per filter. Not into transposed or grouped convolutions, and
  not through max pooling (``max(s x) != s max(x)`` for ``s < 0``).

Inference-time no-ops (Dropout, GaussianNoise, ...) between the layers never
block a fold; they are dropped with it. Any other affine layer becomes an
element-wise affine linear node, which the registry passes relevance through
by default (as zennit does with a BatchNorm it cannot merge).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxai import linear
from tfxai.graph import GraphView, Node, application_layer_classes
from tfxai.layer_groups import AVERAGE_POOLING, NO_OPS

L = keras.layers

AFFINE_LAYERS = (L.BatchNormalization,) + application_layer_classes(("convnext", "LayerScale"))
"""Per-channel affine layers :func:`fold_affine` folds (inference BatchNorm, ConvNeXt's LayerScale)."""

_GLOBAL_POOLING = (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D)
_FORWARD_TARGETS = (L.Dense, L.Conv1D, L.Conv2D, L.Conv3D) + linear.DEPTHWISE + (
    L.SeparableConv1D,
    L.SeparableConv2D,
)

FOLD = "fold_affine"
""":attr:`~tfxai.nodes.Node.rewrite` of the nodes :func:`fold_affine` changes."""


def linear_node(node: Node, lmap: linear.LinearMap, canonizer: str, **changes) -> Node:
    """A node computing ``lmap.forward`` on its single input with its weights.

    The weights are cast to the input's dtype: the forward replay feeds the
    node in its layer's compute dtype (float16 under ``mixed_float16``, as
    Keras does), the backward walk in float32 (see :mod:`tfxai.reverse`).
    """

    def forward(values, params):
        x = values[0]
        kernel, bias = (None if p is None else tf.cast(p, x.dtype) for p in params)
        return [lmap.forward(x, kernel, bias)]

    return node.rewritten(canonizer, forward=forward, params=lmap.weights, **changes)


def is_affine(node: Node) -> bool:
    """Whether ``node`` is a per-channel affine layer not yet turned into a linear node."""
    return issubclass(node.op_type, AFFINE_LAYERS) and node.params is None


def is_no_op(node: Node) -> bool:
    """Whether ``node`` is the identity at inference (Dropout, GaussianNoise...)."""
    return node.is_original and issubclass(node.op_type, NO_OPS) and len(node.inputs) == 1


def affine_axis(layer, rank: int) -> int:
    """The (non-negative) channel axis of an affine layer for an input of ``rank`` axes."""
    axis = getattr(layer, "axis", -1) if isinstance(layer, L.BatchNormalization) else -1
    axis = axis if isinstance(axis, int) else axis[0]
    return axis % rank


def fold_affine(view: GraphView, forward: bool = True) -> GraphView:
    """Fold BatchNorm / LayerScale into a neighbouring linear node; else make it an element-wise node.

    Parameters
    ----------
    view : GraphView
        A view whose weighted layers are already linear nodes.
    forward : bool
        Also fold into the linear node that FOLLOWS (see the module
        docstring). Grad-CAM turns it off: it reads intermediate tensors,
        which a forward fold changes.

    Returns
    -------
    GraphView
        Backward folds are named ``<linear>+<affine>``, forward folds
        ``<affine>+<linear>``; both carry ``origin`` of every node they
        replace and ``rewrite="fold_affine"``. Nodes between a forward-folded
        affine layer and its linear node (pooling, Flatten) get the same
        ``rewrite``: they now compute on the unnormalised tensor.
    """
    folder = _Folder(view)
    affine = [node for node in view.nodes if is_affine(node)]
    for node in affine:
        folder.fold_backward(node)
    for node in affine if forward else ():
        if id(node) not in folder.dropped:
            folder.fold_forward(node)
    return folder.result()


class _Folder:
    """Collects the folds of one view, then rebuilds its node list."""

    def __init__(self, view: GraphView):
        self.view = view
        self.producers = view.producers()
        self.consumers = view.consumers()
        self.replaced: dict = {}  # id(node) -> its replacement
        self.dropped: set = set()  # id() of removed nodes

    def sole_reader(self, key):
        """The one node reading ``key``, or None (several readers, a model output)."""
        readers = self.consumers.get(key, ())
        if len(readers) != 1 or key in self.view.outputs or key in self.view.explained:
            return None
        return readers[0]

    def free(self, node) -> bool:
        return id(node) not in self.replaced and id(node) not in self.dropped

    def fold_backward(self, norm: Node) -> bool:
        no_ops, source = [], self.producers.get(norm.inputs[0])
        while source is not None and is_no_op(source) and self.sole_reader(source.outputs[0]) is not None:
            no_ops.append(source)
            source = self.producers.get(source.inputs[0])
        if source is None or not self.free(source) or not _backward_foldable(self.view, source, norm):
            return False
        if self.sole_reader(source.outputs[0]) is None:
            return False
        self.replaced[id(source)] = _fold_into_producer(source, norm, no_ops)
        self.dropped.update(id(n) for n in no_ops + [norm])
        return True

    def fold_forward(self, norm: Node) -> bool:
        chain, target = [], self.sole_reader(norm.outputs[0])
        while target is not None and _passes_through(target) and self.sole_reader(target.outputs[0]):
            chain.append(target)
            target = self.sole_reader(target.outputs[0])
        if target is None or id(target) in self.dropped or not all(self.free(n) for n in chain):
            return False
        probe = _ForwardProbe(self.view, norm, chain)
        if not probe.foldable_into(target):
            return False
        original, target = target, self.replaced.get(id(target), target)  # maybe folded backward already
        no_ops = [n for n in chain if is_no_op(n)]
        kept = [n for n in chain if not is_no_op(n)]
        keys = [norm.inputs[0]] + [n.outputs[0] for n in kept]
        for node, key in zip(kept, keys):
            self.replaced[id(node)] = node.rewritten(FOLD, inputs=(key,))
        origin = norm.origin + tuple(o for n in no_ops for o in n.origin) + target.origin
        self.replaced[id(original)] = target.rewritten(
            FOLD,
            inputs=(keys[-1],),
            params=probe.folded_params(target),
            name=f"{norm.name}+{target.name}",
            origin=origin,
        )
        self.dropped.update(id(n) for n in no_ops + [norm])
        return True

    def result(self) -> GraphView:
        nodes = []
        for node in self.view.nodes:
            if id(node) in self.dropped:
                continue
            node = self.replaced.get(id(node), node)
            if is_affine(node):
                node = linear_node(node, _affine_map(node.layer), FOLD)
            nodes.append(node)
        return self.view.replace(nodes=tuple(nodes))


def _affine_map(layer) -> linear.LinearMap:
    if isinstance(layer, L.BatchNormalization):
        return linear.batch_norm_map(layer)
    return linear.layer_scale_map(layer)


def _backward_foldable(view, source, norm) -> bool:
    if source.params is None or source.activation is not None or len(source.inputs) != 1:
        return False
    if not issubclass(source.op_type, tuple(linear.LINEAR_MAPS)) or issubclass(source.op_type, L.EinsumDense):
        return False  # an EinsumDense has no single output-channel axis to scale
    rank = len(view.shapes[norm.inputs[0]])
    return affine_axis(norm.layer, rank) == linear.output_channel_axis(source.layer) % rank


def _fold_into_producer(source: Node, norm: Node, no_ops: list) -> Node:
    """``s * (W x + b) + t = (W s) x + (b s + t)``, with the affine layer's scale ``s`` and shift ``t``."""

    def params():
        kernel, bias = source.params()
        scale, shift = _scale_shift(norm.layer, kernel.dtype)
        kernel = linear.scale_output_channels(source.op_type, kernel, scale)
        if bias is not None:
            bias = bias * scale
        if shift is not None:
            bias = shift if bias is None else bias + shift
        return kernel, bias

    return source.rewritten(
        FOLD,
        params=params,
        outputs=norm.outputs,
        name=f"{source.name}+{norm.name}",
        origin=source.origin + tuple(o for n in no_ops for o in n.origin) + norm.origin,
    )


def _scale_shift(layer, dtype):
    """The affine layer's ``(scale, shift or None)``, computed in float32 and cast to ``dtype``."""
    scale, shift = linear.normalization_scale_shift(layer)
    return tf.cast(scale, dtype), None if shift is None else tf.cast(shift, dtype)


def _passes_through(node: Node) -> bool:
    """Whether a per-channel affine map may be moved across ``node`` (see :class:`_ForwardProbe`)."""
    if len(node.inputs) != 1 or len(node.outputs) != 1 or not node.is_original:
        return False
    return issubclass(node.op_type, NO_OPS + AVERAGE_POOLING + (L.Flatten,))


class _ForwardProbe:
    """Where the channels of an affine layer end up after a chain of pooling / Flatten nodes.

    ``axis`` is the channel axis of the chain's output, ``None`` once a
    Flatten has mixed channels with positions (then only a Dense layer can
    follow, and the per-feature scale is the chain applied to the broadcast
    scale).
    """

    def __init__(self, view, norm, chain):
        self.norm, self.chain = norm, chain
        self.shape = view.shapes[norm.outputs[0]]
        self.output_rank = len(view.shapes[chain[-1].outputs[0]] if chain else self.shape)
        self.axis = self._track_axis(affine_axis(norm.layer, len(self.shape)), len(self.shape))

    def _track_axis(self, axis, rank):
        for node in self.chain:
            layer = node.layer
            if is_no_op(node):
                continue
            if isinstance(layer, L.Flatten):
                if axis is not None and any(d is None for d in self.shape[1:]):
                    return -1  # unknown sizes: the flattened layout cannot be computed
                axis = None
                continue
            channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
            if axis is None or axis != (rank - 1 if channels_last else 1):
                return -1  # pooling over the affine layer's own axis
            if isinstance(layer, _GLOBAL_POOLING) and not layer.keepdims:
                axis, rank = 1, 2
        return axis

    def foldable_into(self, target: Node) -> bool:
        if self.axis == -1 or target.params is None or len(target.inputs) != 1:
            return False
        if not issubclass(target.op_type, _FORWARD_TARGETS):
            return False
        layer = target.layer
        if isinstance(layer, L.Dense):
            return self.axis is None or self.axis == self.output_rank - 1
        if self.axis is None or getattr(layer, "groups", 1) != 1:
            return False
        channels_last = layer.data_format == "channels_last"
        if self.axis != (self.output_rank - 1 if channels_last else 1):
            return False
        return layer.padding == "valid" or (layer.padding == "same" and set(layer.kernel_size) == {1})

    def folded_params(self, target: Node):
        """``params()`` of ``target`` with the affine layer moved into it."""
        norm, per_feature = self.norm.layer, self._per_feature

        def params():
            kernel, bias = target.params()
            scale, shift = _scale_shift(norm, kernel.dtype)
            scale_in, shift_in = per_feature(scale), None if shift is None else per_feature(shift)
            if issubclass(target.op_type, linear.DEPTHWISE):
                added = None if shift_in is None else _depthwise_bias(kernel, shift_in)
            else:
                added = None if shift_in is None else tf.tensordot(shift_in, kernel, [[0], [kernel.shape.rank - 2]])
                added = None if added is None else tf.reduce_sum(added, axis=list(range(added.shape.rank - 1)))
            kernel = kernel * tf.reshape(scale_in, (-1, 1))
            if added is not None:
                bias = added if bias is None else bias + added
            return kernel, bias

        return params

    def _per_feature(self, vector):
        """The per-channel ``vector`` as one value per input feature of the target."""
        if self.axis is not None:
            return vector
        shape = [1] * len(self.shape)
        shape[affine_axis(self.norm.layer, len(self.shape))] = -1
        sizes = [1] + [int(d) for d in self.shape[1:]]
        probe = tf.broadcast_to(tf.reshape(vector, shape), sizes)
        for node in self.chain:
            probe = node.forward([probe], None)[0]
        return tf.reshape(probe, (-1,))


def _depthwise_bias(kernel, shift):
    """``W t`` of a depthwise kernel ``(*k, C, M)``: one value per output channel ``c * M + m``."""
    spatial = list(range(kernel.shape.rank - 2))
    return tf.reshape(tf.reduce_sum(kernel, axis=spatial) * tf.reshape(shift, (-1, 1)), (-1,))
