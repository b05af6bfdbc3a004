"""Where a ReLU's output can stand in for the pre-activation it rectifies.

An LRP rule divides the relevance of a layer's outputs by their
pre-activations ``z``, so the backward walk would hold every layer's ``z``
next to the layer inputs ``a`` it multiplies by: twice what a gradient keeps
(a gradient needs only the ReLU outputs ``r = max(z, 0)``, which are also the
next layer's ``a``). Where ``z`` feeds nothing but a ReLU, ``r`` equals ``z``
wherever ``r > 0``; where ``r = 0`` the relevance reaching ``z`` is exactly
zero, provided every rule downstream gives an input zero relevance where that
input is zero (:attr:`tfxai.rules.Rule.ratio_form`: ``R_in = a * ...``). Then dividing by ``r``
instead of ``z`` gives the same result to the last bit, and ``z`` is freed
right after the ReLU ran, as in a gradient.

:func:`stand_ins` finds those places from the graph and the assigned rules;
:func:`tfxai.reverse.propagate` applies them. Values are never inspected.
"""

from __future__ import annotations

import keras

from tfxai.graph import GraphView, raw_op_classes
from tfxai.layer_groups import NO_OPS, ROUTING_LAYERS, UPSAMPLING
from tfxai.rules.engine import LinearRule
from tfxai.rules.structural import Pass, Route
from tfxai.signs import activation_name, is_rectifier

ZERO_KEEPING = (
    ROUTING_LAYERS
    + UPSAMPLING
    + NO_OPS
    + raw_op_classes("Reshape", "Transpose", "Concatenate", "Squeeze", "ExpandDims")
)
"""Operations each of whose outputs is one of their input values (or a zero of padding)."""

_CAPPED_RELU_OPS = raw_op_classes("Relu6")


def is_plain_relu(node) -> bool:
    """``max(x, 0)`` or a thresholded ReLU: wherever the output is non-zero, it equals the input."""
    if not is_rectifier(node):
        return False
    if node.is_original and isinstance(node.layer, keras.layers.ReLU):
        return node.layer.max_value is None
    return not issubclass(node.op_type, _CAPPED_RELU_OPS) and activation_name(node) != "relu6"


def zero_safe_keys(view: GraphView, assignment: dict, start_keys) -> set:
    """Keys of tensors whose relevance is zero wherever the tensor is zero, whatever the input.

    A tensor qualifies when relevance does not start there and each node
    reading it either has no rule (it sends nothing back), has a rule of ratio
    form, or is a Pass / Route through an operation that only moves values
    (or a ReLU, whose output is zero where its input is) and all of whose
    outputs qualify.
    """
    consumers = view.consumers()
    safe: set = set()
    for node in reversed(view.nodes):
        for key in node.inputs:
            if key in start_keys:
                continue
            if all(_passes_zeros(reader, assignment, safe) for reader in consumers.get(key, ())):
                safe.add(key)
    return safe


def has_ratio_form(rule) -> bool:
    """``rule.ratio_form``, unless a subclass of the class declaring it replaced how relevance is computed.

    A subclass that overrides ``backward``, ``terms`` or ``cotangents`` of
    the class that set ``ratio_form = True`` may compute anything, so it
    counts only if it declares ``ratio_form`` itself.
    """
    cls = type(rule)
    declaring = next(c for c in cls.__mro__ if "ratio_form" in vars(c))
    methods = ("backward", "terms", "cotangents")
    return bool(declaring.ratio_form) and all(getattr(cls, m, None) is getattr(declaring, m, None) for m in methods)


def _passes_zeros(node, assignment, safe) -> bool:
    rule = assignment.get(node.name)
    if rule is None or has_ratio_form(rule):
        return True
    moves = type(rule) in (Pass, Route) and (issubclass(node.op_type, ZERO_KEEPING) or is_plain_relu(node))
    return moves and all(key in safe for key in node.outputs)


def stand_ins(view: GraphView, assignment: dict, start_keys) -> dict:
    """Node name -> name of the ReLU node whose output stands in for the node's output ``z``.

    A node qualifies when its rule is of ratio form (it uses ``z`` only to
    divide by), its one output feeds only a plain ReLU with the
    :class:`~tfxai.rules.Pass` rule, relevance does not start at ``z``, and
    the ReLU's output is in :func:`zero_safe_keys`.
    """
    consumers = view.consumers()
    producers = view.producers()
    safe = zero_safe_keys(view, assignment, start_keys)
    found = {}
    for node in view.nodes:
        if len(node.inputs) != 1 or type(assignment.get(node.name)) is not Pass or not is_plain_relu(node):
            continue
        z = node.inputs[0]
        source = producers.get(z)
        rule = None if source is None else assignment.get(source.name)
        if (
            rule is not None
            and has_ratio_form(rule)
            and len(source.outputs) == 1
            and len(consumers[z]) == 1
            and z not in start_keys
            and node.outputs[0] in safe
        ):
            found[source.name] = node.name
    return found


SUMS = (keras.layers.Add,) + raw_op_classes("Add")
"""Element-wise sums whose every input has the output's shape (checked per node)."""


def recomputed_inputs(view: GraphView, assignment: dict, start_keys, rectifiers: dict) -> dict:
    """Sum node name -> ``(input index, producer name)`` of one input the backward walk recomputes.

    A residual sum ``y = x + z`` whose output has a stand-in (``r = max(y, 0)``,
    see :func:`stand_ins`) still holds ``z``, the output of the block's last
    layer, for its rule (``R_z = z R_y / y``) and for that layer's (``R_y``
    divided by ``z``). Where ``y > 0``, ``z = r - x`` from tensors the walk
    holds anyway (``x`` is the block's input); where ``y <= 0`` no relevance
    flows. The recomputed ``z`` is exact up to the rounding of ``y = x + z``
    and both rules use the same one, so the sum stays conservative.
    :func:`tfxai.reverse.propagate` leaves half-precision sums alone, where
    that rounding is coarse.

    An input qualifies when its producer has a rule of ratio form and one
    output, the sum alone reads it, relevance does not start there, and it
    has the sum's shape; of several, the last is taken.
    """
    consumers = view.consumers()
    producers = view.producers()
    found = {}
    for node in view.nodes:
        rule = assignment.get(node.name)
        if node.name not in rectifiers or not issubclass(node.op_type, SUMS) or not isinstance(rule, LinearRule):
            continue
        if len(node.inputs) < 2 or len(node.outputs) != 1 or not has_ratio_form(rule):
            continue
        if len({view.shapes.get(k) for k in node.inputs + node.outputs}) != 1:
            continue
        for index in reversed(range(len(node.inputs))):
            key = node.inputs[index]
            source = producers.get(key)
            source_rule = None if source is None else assignment.get(source.name)
            if (
                source_rule is not None
                and has_ratio_form(source_rule)
                and len(source.outputs) == 1
                and len(consumers[key]) == 1
                and node.inputs.count(key) == 1
                and key not in start_keys
            ):
                found[node.name] = (index, source.name)
                break
    return found

