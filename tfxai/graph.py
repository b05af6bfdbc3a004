"""Read-only view of a Keras 3 functional graph.

This is the only module of tfxai that touches private Keras attributes
(``_nodes_by_depth``, ``_inbound_nodes``, ``_functional``, ...). Everything else
works on the :class:`GraphView` built here: a flat list of :class:`Node` objects
in forward order, nested models already inlined, each shared-layer call its own
node, and tensors named by hashable keys.

Walking a model never calls a layer on a ``KerasTensor``, so it never adds nodes
to the user's model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from typing import Callable, Sequence

import keras
from keras.src.ops import core as keras_ops_core
from keras.src.ops import function as keras_function
from keras.src.ops import nn as keras_ops_nn
from keras.src.ops import numpy as keras_ops_numpy
from keras.src.ops import operation as keras_operation

from tfxai import capture
from tfxai.errors import ModelError
from tfxai.nodes import GraphView, Node, TensorKey


def build_view(model, expand=None, sequence_length: int | None = None) -> GraphView:
    """Walk a built Sequential or Functional Keras model into a GraphView.

    Parameters
    ----------
    model : keras.Model
        A Sequential (built) or Functional model; nested models are inlined.
    expand : callable, optional
        ``expand(layer) -> bool``: whether to look inside a layer (one with
        no rule of its own) by capturing the Keras layers and operations its
        ``call`` is made of (see :mod:`tfxai.capture`). Default: never.
    sequence_length : int, optional
        Length used for dynamic (``None``) non-batch axes when a layer can
        only be captured at fixed shapes (it computes with its input's shape:
        causal masks, rotary or learned positions).

    Returns
    -------
    GraphView

    Notes
    -----
    Capturing calls ``layer.call`` on fresh ``keras.Input`` tensors, which
    records Keras nodes on the layer's sublayers; every operation's node
    lists are restored to their length before the walk, so the user's model
    is left as it was.
    """
    graph = _functional_graph(model, model.name)
    keys = _KeyMap()
    input_keys = tuple(keys.key("", t) for t in graph.inputs)
    snapshot = _node_lists(model)
    try:
        nodes = _walk(graph, "", keys, _Walk(expand or (lambda layer: False), sequence_length))
    finally:
        _restore_node_lists(snapshot)
    shapes = {key: shape for key, shape in keys.shapes.items()}
    output_keys = tuple(keys.key("", t) for t in graph.outputs)
    return GraphView(
        name=model.name,
        nodes=tuple(nodes),
        inputs=input_keys,
        input_names=tuple(_tensor_name(t) for t in graph.inputs),
        input_dtypes=tuple(str(t.dtype) for t in graph.inputs),
        outputs=output_keys,
        explained=output_keys,
        shapes=shapes,
    )


def is_graph_model(model) -> bool:
    """Whether ``model`` has a functional graph tfxai can walk."""
    return _functional_graph_or_none(model) is not None


def is_subclassed_model(model) -> bool:
    """Whether ``model`` is a subclassed ``keras.Model`` with no graph."""
    return isinstance(model, keras.Model) and not isinstance(
        model, (keras.Sequential, keras.src.models.Functional)
    )


def is_unbuilt_sequential(model) -> bool:
    """Whether ``model`` is a Sequential model without a functional graph yet."""
    return isinstance(model, keras.Sequential) and model._functional is None


def count_inbound_nodes(model) -> dict:
    """Number of Keras nodes of every operation in ``model`` (nested models and sublayers included).

    ``id(op) -> (len(op._inbound_nodes), len(op._outbound_nodes))``. Used to
    prove that analysing a model added nothing to its graph.
    """
    return {id(op): (len(op._inbound_nodes), len(op._outbound_nodes)) for op in _all_operations(model)}


def _node_lists(model) -> list:
    return [(op, len(op._inbound_nodes), len(op._outbound_nodes)) for op in _all_operations(model)]


def _restore_node_lists(snapshot) -> None:
    for op, inbound, outbound in snapshot:
        del op._inbound_nodes[inbound:]
        del op._outbound_nodes[outbound:]


def call_has_training_argument(layer) -> bool:
    """Whether ``layer.call`` accepts a ``training`` argument."""
    return bool(getattr(layer, "_call_has_training_arg", False))


def raw_op_classes(*names: str) -> tuple:
    """Classes of Keras raw operations (``x + y`` is ``keras.ops``' ``Add``), by class name.

    A name this Keras version does not define is left out, so a renamed or
    removed operation costs its rule, never ``import tfxai``.
    """
    found = []
    for name in names:
        classes = [
            getattr(m, name) for m in (keras_ops_numpy, keras_ops_nn, keras_ops_core) if hasattr(m, name)
        ]
        found.extend(classes[:1])
    return tuple(found)


def application_layer_classes(*pairs) -> tuple:
    """Layer classes that ``keras.applications`` defines but Keras does not export.

    ``application_layer_classes(("convnext", "LayerScale"))`` is
    ``(keras.src.applications.convnext.LayerScale,)``; a class this Keras
    version lacks is left out.
    """
    found = []
    for module, name in pairs:
        try:
            found.append(getattr(importlib.import_module(f"keras.src.applications.{module}"), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _all_operations(model):
    """Every operation of ``model``'s graph, of nested models, and every sublayer of those."""
    found = {}
    graph = _functional_graph_or_none(model)
    for op in [] if graph is None else graph.operations:
        found[id(op)] = op
        if isinstance(op, keras.Model):
            found.update((id(o), o) for o in _all_operations(op))
        elif isinstance(op, keras.layers.Layer):
            found.update((id(o), o) for o in op._flatten_layers(include_self=False, recursive=True))
    return list(found.values())


def _functional_graph_or_none(model):
    if isinstance(model, keras.Sequential):
        return model._functional
    if isinstance(model, keras.src.models.Functional):
        return model
    return None


def _functional_graph(model, path):
    graph = _functional_graph_or_none(model)
    if graph is None:
        raise ModelError(
            f"Model {path!r} ({type(model).__name__}) has no functional graph "
            "tfxai can walk. Expected a Functional model or a built Sequential "
            "model."
        )
    return graph


def _tensor_name(kt) -> str:
    history = getattr(kt, "_keras_history", None)
    if history is not None:
        return history[0].name
    return kt.name


class _KeyMap:
    """Names KerasTensors per scope, with aliases for nested-model boundaries."""

    def __init__(self):
        self._alias: dict = {}
        self.shapes: dict = {}

    def key(self, scope: str, kt) -> TensorKey:
        key = (scope, id(kt))
        key = self._alias.get(key, key)
        self.shapes.setdefault(key, tuple(kt.shape))
        return key

    def bind(self, scope: str, kt, key: TensorKey) -> None:
        self._alias[(scope, id(kt))] = key


@dataclasses.dataclass(frozen=True)
class _Walk:
    """What the walk needs besides the graph: which layers to capture, at which length."""

    expand: Callable
    sequence_length: int | None


def _walk(graph, scope: str, keys: _KeyMap, walk: _Walk) -> list:
    nodes = []
    knodes = [
        knode
        for depth in sorted(graph._nodes_by_depth, reverse=True)
        for knode in graph._nodes_by_depth[depth]
        if not knode.is_input
    ]
    names = _call_names(knodes)
    for knode in knodes:
        op = knode.operation
        name = scope + names[id(knode)]
        if isinstance(op, keras.Model):
            inner = _functional_graph(op, name)
            nodes.extend(_inline(inner, knode.arguments.keras_tensors, knode, scope, name, keys, walk))
        elif isinstance(op, keras.layers.Layer) and walk.expand(op):
            nodes.extend(_captured(op, knode, scope, name, keys, walk))
        else:
            nodes.append(_replay_node(op, knode, scope, name, keys))
    return nodes


def _call_names(knodes) -> dict:
    """``id(knode) -> name``: the layer name, ``"@k"`` appended for its k-th call in THIS graph.

    Calls are numbered in the order of the layer's own node list, counting
    only the nodes of this graph: a layer another model also called keeps
    its plain name here.
    """
    mine = {id(knode) for knode in knodes}
    calls_of: dict = {}
    for knode in knodes:
        calls_of.setdefault(id(knode.operation), []).append(knode)
    names = {}
    for calls in calls_of.values():
        op = calls[0].operation
        ordered = [k for k in op._inbound_nodes if id(k) in mine]
        for index, knode in enumerate(ordered if len(ordered) == len(calls) else calls):
            names[id(knode)] = op.name if index == 0 else f"{op.name}@{index}"
    return names


def _inline(inner, outer_inputs, knode, scope, name, keys, walk):
    inner_scope = name + "/"
    if len(outer_inputs) != len(inner.inputs):
        raise ModelError(
            f"Nested model {name!r} expects {len(inner.inputs)} inputs but its "
            f"call receives {len(outer_inputs)} tensors."
        )
    for inner_kt, outer_kt in zip(inner.inputs, outer_inputs):
        keys.bind(inner_scope, inner_kt, keys.key(scope, outer_kt))
    nodes = _walk(inner, inner_scope, keys, walk)
    for inner_kt, outer_kt in zip(inner.outputs, knode.outputs):
        keys.bind(scope, outer_kt, keys.key(inner_scope, inner_kt))
    return nodes


def _captured(op, knode, scope, name, keys, walk) -> list:
    """The nodes of a layer's captured ``call``: inlined, or one node captured per sample.

    A layer that cannot be captured stays one node, with the reason in
    :attr:`Node.capture_failure`; it needs a rule like any unsupported layer.
    """
    in_kts = list({id(kt): kt for kt in knode.arguments.keras_tensors}.values())
    failure = capture.masked_inputs_failure(in_kts)
    if failure is None:
        try:
            return _inline(_capture_call(op, knode, in_kts, None), in_kts, knode, scope, name, keys, walk)
        except Exception as error:  # noqa: BLE001 - every failure of Keras' symbolic call is reported
            failure = capture.describe(error)
        shapes = capture.static_shapes(in_kts, walk.sequence_length)
        if shapes is None:
            failure = capture.needs_length(failure)
        else:
            try:
                return [_per_sample_node(op, knode, scope, name, keys, walk, in_kts, shapes)]
            except Exception as error:  # noqa: BLE001
                failure = capture.describe(error)
    return [_replay_node(op, knode, scope, name, keys).replace(capture_failure=failure)]


def _per_sample_node(op, knode, scope, name, keys, walk, in_kts, shapes) -> Node:
    """One node for the layer, with its call captured at fixed shapes (batch 1) as :attr:`Node.inner`."""
    function = _capture_call(op, knode, in_kts, shapes)
    inner_keys = _KeyMap()
    inner_nodes = _walk(function, "", inner_keys, walk)
    inner_outputs = tuple(inner_keys.key("", t) for t in function.outputs)
    inner = GraphView(
        name=name,
        nodes=tuple(inner_nodes),
        inputs=tuple(inner_keys.key("", t) for t in function.inputs),
        input_names=tuple(_tensor_name(t) for t in function.inputs),
        input_dtypes=tuple(str(t.dtype) for t in function.inputs),
        outputs=inner_outputs,
        explained=inner_outputs,
        shapes=dict(inner_keys.shapes),
    )
    return _replay_node(op, knode, scope, name, keys, in_kts).replace(inner=inner)


def _capture_call(op, knode, in_kts, shapes):
    """``op.call`` on fresh ``keras.Input`` tensors (of ``shapes``, or those of ``in_kts``), as a Function."""
    fresh = [
        keras.Input(batch_shape=tuple(kt.shape) if shapes is None else shape, dtype=kt.dtype)
        for kt, shape in zip(in_kts, shapes or [None] * len(in_kts))
    ]
    args, kwargs = knode.arguments.fill_in({id(kt): f for kt, f in zip(in_kts, fresh)})
    if call_has_training_argument(op):
        kwargs = {**kwargs, "training": False}
    with _tolerant_output_specs(op):
        outputs = keras.tree.flatten(op.call(*args, **kwargs))
    capture.check_outputs(outputs, len(knode.outputs))
    return keras_function.Function(fresh, outputs, name=op.name)


@contextlib.contextmanager
def _tolerant_output_specs(layer):
    """While capturing: sublayers whose ``compute_output_spec`` rejects their call's arguments trace ``call``.

    KerasHub's cached attention layers are called with ``cache=None``, an
    argument ``MultiHeadAttention.compute_output_spec`` does not take; Keras
    only calls it symbolically, which capturing does. The instance attribute
    set here is removed on exit.
    """
    patched = []
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        if type(sub).compute_output_spec is keras.layers.Layer.compute_output_spec:
            continue
        object.__setattr__(sub, "compute_output_spec", _spec_or_traced_call(sub))
        patched.append(sub)
    try:
        yield
    finally:
        for sub in patched:
            object.__delattr__(sub, "compute_output_spec")


def _spec_or_traced_call(layer):
    own = type(layer).compute_output_spec.__get__(layer)

    def compute_output_spec(*args, **kwargs):
        try:
            return own(*args, **kwargs)
        except TypeError:
            return keras_operation.Operation.compute_output_spec(layer, *args, **kwargs)

    return compute_output_spec


def _replay_node(op, knode, scope, name, keys, in_kts=None) -> Node:
    in_kts = list(knode.arguments.keras_tensors) if in_kts is None else in_kts
    return Node(
        name=name,
        layer=op,
        op_type=type(op),
        inputs=tuple(keys.key(scope, kt) for kt in in_kts),
        outputs=tuple(keys.key(scope, kt) for kt in knode.outputs),
        forward=_replay_function(op, knode, in_kts),
        call_kwargs=_call_kwargs(knode, in_kts),
        origin=(name,),
    )


def _call_kwargs(knode, in_kts) -> dict:
    position = {id(kt): i for i, kt in enumerate(in_kts)}
    return {
        name: position.get(id(value), value) if isinstance(value, keras.KerasTensor) else value
        for name, value in knode.arguments.kwargs.items()
    }


def keras_mask(tensor):
    """The Keras mask attached to a concrete tensor (``mask_zero``, ``Masking``), or ``None``."""
    return getattr(tensor, "_keras_mask", None)


def _replay_function(op, knode, in_kts: Sequence) -> Callable:
    wants_training = call_has_training_argument(op)
    ids = [id(kt) for kt in in_kts]
    if isinstance(op, keras_ops_numpy.Reshape) and list(op.newshape).count(None) == 1:
        # Captured calls may reshape to a shape read from a KerasTensor with one dynamic axis.
        newshape = [-1 if d is None else d for d in op.newshape]
        return lambda values, params=None: [keras.ops.reshape(values[0], newshape)]

    def forward(values, params=None):
        args, kwargs = knode.arguments.fill_in(dict(zip(ids, values)))
        if wants_training:
            kwargs = {**kwargs, "training": False}
        return keras.tree.flatten(op(*args, **kwargs))

    return forward
