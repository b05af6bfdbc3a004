"""Which rule each node gets: the composite's entries, then the registry defaults.

:func:`assign` walks the canonized graph from the explained output back to the
inputs, takes each reached node's rule from the :class:`~tfxai.composites.Composite`
(the positions :data:`~tfxai.composites.FIRST` / ``LAST`` / rectified computed by
:func:`positions`) or from :mod:`tfxai.registry`, checks that the rule fits the
node, and reports every node without a rule at once.
"""

from __future__ import annotations

from tfxai import registry, rules
from tfxai.canonizers import is_rectifier
from tfxai.composites import Composite
from tfxai.errors import ModelError, UnsupportedLayerError
from tfxai.nodes import GraphView
from tfxai.rules import transformer


def positions(view: GraphView) -> dict:
    """Names of the weighted nodes nearest the input, nearest the output, and followed only by ReLUs.

    Element-wise affine nodes (a BatchNorm that could not be folded) do not
    count as weighted: like activations, they sit between weighted layers.
    """
    weighted = {node.name for node in view.nodes if is_weighted(node)}
    return {
        "first": _nearest_weighted(view.nodes, view.inputs, weighted, forward=True),
        "last": _nearest_weighted(reversed(view.nodes), view.explained, weighted, forward=False),
        "rectified": _rectified(view, weighted),
    }


def is_weighted(node) -> bool:
    """Whether a node is a Dense / convolution linear node (not an element-wise affine one)."""
    return node.params is not None and not issubclass(node.op_type, registry.AFFINE)


def _rectified(view: GraphView, weighted: set) -> set:
    consumers = view.consumers()
    found = set()
    for node in view.nodes:
        readers = consumers.get(node.outputs[0], []) if node.name in weighted else []
        if readers and node.outputs[0] not in view.explained and all(is_rectifier(r) for r in readers):
            found.add(node.name)
    return found


def _nearest_weighted(nodes, start_keys, weighted, forward: bool) -> set:
    """Weighted nodes reached from ``start_keys`` without crossing another weighted node."""
    reached = set(start_keys)
    found = set()
    for node in nodes:
        sources, targets = (node.inputs, node.outputs) if forward else (node.outputs, node.inputs)
        if not reached.intersection(sources):
            continue
        if node.name in weighted:
            found.add(node.name)
        else:
            reached.update(targets)
    return found


def candidate_rules(view: GraphView, composite: Composite) -> list:
    """``(node, rule or None, reached)`` for every node, in forward order.

    The rule is the composite's entry, else the registry default; a node
    captured one sample at a time (:attr:`~tfxai.nodes.Node.inner`) gets
    :class:`~tfxai.rules.transformer.SampleWise` with its inner nodes'
    rules. ``reached`` says whether relevance can reach the node at all: a
    node whose outputs only feed inputs no rule carries relevance to (a
    normalisation's statistics, mask computations) needs no rule.
    """
    where = positions(view)
    reached_keys = set(view.explained)
    rows = []
    for node in reversed(view.nodes):
        rule = composite.rule_for(node, where)
        if rule is None and node.inner is not None:
            inner = _assign_parts(node.inner, composite, node.name + "/")
            rule = transformer.SampleWise(inner[0]) if not (inner[1] or inner[2]) else None
        rule = rule or registry.default_rule(node.op_type)
        reached = bool(reached_keys.intersection(node.outputs))
        if reached:
            carried = transformer.carried_inputs(rule, node) if rule is not None else range(len(node.inputs))
            reached_keys.update(node.inputs[i] for i in carried)
        rows.append((node, rule, reached))
    return rows[::-1]


def _assign_parts(view: GraphView, composite: Composite, prefix: str = ""):
    """``(chosen, missing, uncovered)``: rules of reached nodes, and the reached nodes without one."""
    chosen, missing, uncovered = {}, [], []
    for node, rule, reached in candidate_rules(view, composite):
        if not reached:
            continue
        if rule is None and node.inner is not None:
            _, inner_missing, inner_uncovered = _assign_parts(node.inner, composite, prefix + node.name + "/")
            missing.extend(inner_missing)
            uncovered.extend(inner_uncovered)
        elif rule is None:
            row = (prefix + node.name, node.op_type.__name__)
            (uncovered if node.params is not None else missing).append(row)
        elif rule.requires_weights and node.params is None:
            raise ModelError(
                f"Rule {rule!r} modifies weights, but node {prefix + node.name!r} "
                f"({node.op_type.__name__}) has none. Give it a rule such as Epsilon or Pass."
            )
        elif isinstance(rule, rules.AlphaBeta) and issubclass(node.op_type, registry.AFFINE):
            raise ModelError(
                f"Rule {rule!r} splits contributions by sign, but node {prefix + node.name!r} is an element-wise "
                f"affine map ({node.op_type.__name__} that could not be folded into a linear layer): each "
                "output has one contribution, so alpha-beta would return alpha times the relevance. "
                "Give it Pass() (the default) or Epsilon()."
            )
        else:
            rule.check_node(node, [view.shapes[key] for key in node.inputs])
            chosen[node.name] = rule
    return chosen, missing, uncovered


def capture_failures(view: GraphView) -> dict:
    """Node name -> why tfxai could not capture the layer (for the nodes where it could not)."""
    return {node.name: node.capture_failure for node in view.nodes if node.capture_failure is not None}


def assign(view: GraphView, composite: Composite) -> dict:
    """Choose a rule for every node that relevance flows through.

    Parameters
    ----------
    view : GraphView
        The canonized model.
    composite : Composite
        Entries tried first; registry defaults fill in the rest.

    Returns
    -------
    dict
        Node name -> Rule, for every node relevance can reach.

    Raises
    ------
    UnsupportedLayerError
        Listing every node with no rule, with how to register one (and, for
        a layer tfxai could not capture, why).
    """
    chosen, missing, uncovered = _assign_parts(view, composite)
    if missing or uncovered:
        message = "\n".join(
            part
            for part in (
                unsupported_message(view.name, missing, capture_failures(view)) if missing else "",
                uncovered_message(view.name, composite, uncovered) if uncovered else "",
            )
            if part
        )
        raise UnsupportedLayerError(message, missing + uncovered)
    return chosen


def unsupported_message(model_name: str, missing: list, failures=None) -> str:
    """The message listing every node whose layer type has no rule (and why a capture failed)."""
    failures = failures or {}
    lines = [f"tfxai has no relevance rule for {len(missing)} node(s) of model {model_name!r}:"]
    lines += [
        f"  - {name!r} ({type_name})" + (f": not captured, {failures[name]}" if name in failures else "")
        for name, type_name in missing
    ]
    example = missing[0][1]
    lines += [
        "Register a rule for each layer class before creating the analyzer, e.g.",
        f"    tfxai.register_rule({example}, tfxai.rules.Pass())      # element-wise, shape-preserving",
        f"    tfxai.register_rule({example}, tfxai.rules.Epsilon())   # LRP through the layer's own function",
        "or give the nodes a rule by name for one analyzer:",
        f"    tfxai.create_analyzer('lrp.epsilon', model, rules=[({missing[0][0]!r}, tfxai.rules.Pass())])",
    ]
    return "\n".join(lines)


def uncovered_message(model_name: str, composite, uncovered: list) -> str:
    """The message listing weighted nodes the composite gives no rule."""
    label = composite.name or "the composite"
    lines = [
        f"Composite {label!r} gives no rule to {len(uncovered)} weighted node(s) of model {model_name!r}:"
    ]
    lines += [f"  - {name!r} ({type_name})" for name, type_name in uncovered]
    lines += [
        "Add an entry for them to the composite or to rules=, e.g.",
        f"    rules=[(keras.layers.{uncovered[0][1]}, tfxai.rules.Epsilon())]",
    ]
    return "\n".join(lines)
