"""The data a model walk produces: :class:`Node` (one computation) and :class:`GraphView` (all of them).

Plain frozen dataclasses, free of Keras: :mod:`tfxai.graph` builds them from a
model, the canonizers rewrite them, the rules and the reverse walk read them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

TensorKey = tuple
"""Hashable name of one tensor of the view: ``(scope, id(KerasTensor))``."""


@dataclasses.dataclass(frozen=True, eq=False)
class Node:
    """One step of the forward computation.

    Attributes
    ----------
    name : str
        Unique, readable name: the layer name prefixed with the path of nested
        models (``"backbone/conv1"``); the k-th call of a shared layer gets
        ``"@k"`` appended.
    layer : object
        The Keras layer or operation the node comes from (matched by rules).
    op_type : type
        The class the rule registry looks up. Usually ``type(layer)``; nodes made
        by canonizers use the class of what they compute (e.g. the activation
        split off a ``Dense`` is typed ``keras.layers.Activation``).
    inputs, outputs : tuple of TensorKey
        Tensors consumed and produced, in call order.
    forward : callable
        ``forward(inputs, params) -> list of outputs`` on concrete tensors.
    params : callable or None
        ``params() -> (kernel, bias or None)`` read at trace time for nodes whose
        weights rules may modify; ``None`` for everything else.
    activation : str or None
        Name of the element-wise activation this node applies, if it is one.
    call_kwargs : dict
        Keyword arguments of the layer call; a tensor argument is given as
        its position in ``inputs`` (``{"key": 2, "use_causal_mask": True}``).
    origin : tuple of str
        Names of the nodes of the model's own graph this node computes (or a
        part of): ``("conv1",)`` for a node walked from the model, and
        ``("conv1", "bn1")`` for a BatchNorm folded into a convolution.
    rewrite : str or None
        The canonizer that made or changed this node (``"linearize"``,
        ``"fold_affine"`` ...); ``None`` for a node as the model has it.
    inner : GraphView or None
        For a layer captured one sample at a time (its ``call`` computes with
        its input's shape, see :mod:`tfxai.capture`): the captured graph of
        one sample, batch size 1. ``forward`` still calls the layer itself.
    capture_failure : str or None
        Why a layer with no rule could not be captured, if it could not.
    """

    name: str
    layer: Any
    op_type: type
    inputs: tuple
    outputs: tuple
    forward: Callable
    params: Callable | None = None
    activation: str | None = None
    call_kwargs: dict = dataclasses.field(default_factory=dict)
    origin: tuple = ()
    rewrite: str | None = None
    inner: "GraphView | None" = None
    capture_failure: str | None = None

    def replace(self, **changes) -> "Node":
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def rewritten(self, canonizer: str, **changes) -> "Node":
        """A copy changed by ``canonizer``, which is recorded in :attr:`rewrite`."""
        return dataclasses.replace(self, rewrite=canonizer, **changes)

    @property
    def is_original(self) -> bool:
        """Whether the node is as the model has it (no canonizer changed it)."""
        return self.rewrite is None


@dataclasses.dataclass(frozen=True)
class GraphView:
    """A model's forward computation as data.

    Attributes
    ----------
    name : str
        The model's name.
    nodes : tuple of Node
        Every computation in a valid forward order.
    inputs : tuple of TensorKey
        The model inputs, in ``model.inputs`` order.
    input_names : tuple of str
        Names of the model inputs.
    input_dtypes : tuple of str
        Dtypes of the model inputs.
    outputs : tuple of TensorKey
        The model outputs (what ``model(x)`` returns), in ``model.outputs`` order.
    explained : tuple of TensorKey
        For each output, the tensor explanations start from: the output itself,
        or the logits when a canonizer stripped a final softmax.
    shapes : dict
        Static shape (a tuple, batch axis included) of every tensor key.
    """

    name: str
    nodes: tuple
    inputs: tuple
    input_names: tuple
    input_dtypes: tuple
    outputs: tuple
    explained: tuple
    shapes: dict

    def replace(self, **changes) -> "GraphView":
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def producers(self) -> dict:
        """Map each tensor key to the node that produces it."""
        return {key: node for node in self.nodes for key in node.outputs}

    def consumers(self) -> dict:
        """Map each tensor key to the list of nodes that read it (with repeats)."""
        result: dict = {}
        for node in self.nodes:
            for key in node.inputs:
                result.setdefault(key, []).append(node)
        return result
