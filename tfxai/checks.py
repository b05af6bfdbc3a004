"""Checks before anything is traced: can tfxai walk a model, and which rule does each node get?

:func:`check_model` fails fast, with an actionable message, on what tfxai
cannot walk at all (not a ``keras.Model``, another Keras backend, a subclassed
model, an unbuilt Sequential). :func:`check` (``tfxai.check``) walks and
canonizes the model exactly as an analyzer would and prints one row per node
of the canonized graph: its name, its type, the rule it gets under a chosen
composite, and, for a node tfxai cannot explain, the word "unsupported" and
how to fix it. Nothing is traced or run, so it is fast even for large
backbones, and it reports every problem at once. The same table backs the
``tfxai check MODEL`` command. Unsupported layers met when an analyzer is
created are reported all at once by :func:`tfxai.assignment.assign`.
"""

from __future__ import annotations

import dataclasses
import sys

import keras

from tfxai import assignment, composites, graph, registry, validation
from tfxai.canonizers import canonize
from tfxai.composites import Composite
from tfxai.errors import ModelError, ParameterTypeError, UnknownNameError, suggest

def check_model(model) -> None:
    """Raise :class:`~tfxai.errors.ModelError` if tfxai cannot walk ``model``.

    Checks, in order: it is a ``keras.Model``; Keras runs on the TensorFlow
    backend; it is not a subclassed model; a Sequential model is built.
    """
    if not isinstance(model, keras.Model):
        raise ModelError(f"tfxai explains keras.Model instances. Received: {type(model).__name__}")
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ModelError(
            f"tfxai needs Keras on the TensorFlow backend. Received backend: {backend!r}. "
            "Set KERAS_BACKEND=tensorflow before importing keras."
        )
    if graph.is_subclassed_model(model):
        raise ModelError(
            f"Model {model.name!r} is a subclassed keras.Model ({type(model).__name__}); it has no "
            "layer graph to walk. Rebuild it with the functional API "
            "(inputs = keras.Input(...); outputs = ...; keras.Model(inputs, outputs)) "
            "or as a keras.Sequential, reusing the same layers and weights."
        )
    if graph.is_unbuilt_sequential(model):
        raise ModelError(
            f"Sequential model {model.name!r} is not built, so it has no graph yet. Start it with "
            "keras.Input(shape=...) or call model.build((None, ...)) before creating an analyzer."
        )


def stateful_nodes(view) -> list:
    """Names of the nodes of ``view`` whose layer keeps state between calls (``stateful=True`` RNNs)."""
    found = []
    for node in view.nodes:
        layers = [node.layer] + [getattr(node.layer, a, None) for a in ("forward_layer", "backward_layer", "layer")]
        if any(getattr(layer, "stateful", False) is True for layer in layers if layer is not None):
            found.append(node.name)
    return found


def check_stateless(view) -> None:
    """Raise :class:`~tfxai.errors.ModelError` if a layer of ``view`` is stateful.

    A stateful RNN starts each call from the state the previous call left:
    running it to explain an input would change the user's model, and the
    explanation would depend on what ran before. tfxai refuses such models.
    """
    names = stateful_nodes(view)
    if names:
        raise ModelError(
            f"Model {view.name!r} has stateful recurrent layer(s) {names}: their output depends on the state "
            "left by earlier calls, and explaining would change that state. tfxai explains stateless models. "
            "Rebuild the model with stateful=False and copy the weights (model.get_weights() / set_weights())."
        )


UNSUPPORTED = "unsupported"


@dataclasses.dataclass(frozen=True)
class NodeReport:
    """One row of a :class:`CheckReport`.

    Attributes
    ----------
    name : str
        The node's name in the canonized graph (``"backbone/conv1+bn1"``).
    type : str
        What the node computes; for a node a canonizer made from a layer of
        another class, that class follows in brackets
        (``"DepthwiseConv2D (SeparableConv2D)"``).
    rule : str
        The rule the node gets, or ``"unsupported"``.
    fix : str
        For an unsupported node, how to give it a rule; empty otherwise.
    """

    name: str
    type: str
    rule: str
    fix: str = ""

    @property
    def supported(self) -> bool:
        """Whether the node has a usable rule."""
        return self.rule != UNSUPPORTED


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """The per-node table of :func:`check`.

    Attributes
    ----------
    model_name : str
        The checked model's name.
    composite : str
        The composite the rules come from.
    nodes : tuple of NodeReport
        One row per node of the canonized graph, in forward order.
    """

    model_name: str
    composite: str
    nodes: tuple

    @property
    def unsupported(self) -> list:
        """The rows of nodes tfxai cannot explain yet."""
        return [row for row in self.nodes if not row.supported]

    @property
    def ok(self) -> bool:
        """Whether every node has a rule (an analyzer can be created)."""
        return not self.unsupported

    def table(self) -> str:
        """The report as a plain-text table."""
        header = ("node", "type", "rule", "fix")
        rows = [(r.name, r.type, r.rule, r.fix) for r in self.nodes]
        widths = [
            max(len(header[i]), *(len(row[i]) for row in rows)) if rows else len(header[i]) for i in range(3)
        ]

        def line(cells):
            return "  ".join(cell.ljust(width) for cell, width in zip(cells[:3], widths)) + "  " + cells[3]

        lines = [
            (
                f"Model {self.model_name!r} under composite {self.composite!r}: {len(self.nodes)} nodes, "
                f"{len(self.unsupported)} unsupported"
            ),
            line(header).rstrip(),
            "  ".join("-" * w for w in widths) + "  " + "-" * 3,
        ]
        lines += [line(row).rstrip() for row in rows]
        if self.ok:
            lines.append("Every node has a rule.")
        else:
            lines.append(
                f"{len(self.unsupported)} node(s) need a rule before an analyzer can be created; see 'fix'."
            )
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def check(
    model, composite="epsilon_plus", *, rules=(), verbose: bool = True, file=None, sequence_length=None
) -> CheckReport:
    """Print which rule each node of ``model`` gets, and what is unsupported.

    Parameters
    ----------
    model : keras.Model
        A Functional or built Sequential model (nested models allowed).
    composite : str or Composite
        A registered composite name (``"epsilon_plus"``, ``"epsilon_gamma_box"``
        ..., also with an ``"lrp."`` prefix), ``"epsilon"`` (what
        ``tfxai.analyzers.LRP`` uses without a composite) or a Composite.
    rules : sequence of (selector, Rule)
        Entries that override the composite, as ``create_analyzer(..., rules=)``.
    verbose : bool
        Print the table (default). ``False`` only returns it.
    file : file-like, optional
        Where the table is printed (default: standard output).
    sequence_length : int, optional
        As for analyzers: the length at which layers that compute with their
        input's shape are captured.

    Returns
    -------
    CheckReport
        The table; ``report.ok`` says whether an analyzer can be created.

    Raises
    ------
    ModelError
        If tfxai cannot walk the model at all (subclassed, unbuilt, other backend).

    Examples
    --------
    >>> report = tfxai.check(model, "epsilon_gamma_box")  # doctest: +SKIP
    >>> report.ok  # doctest: +SKIP
    True
    """
    check_model(model)
    if sequence_length is not None:
        sequence_length = validation.count("sequence_length", sequence_length)
    view = canonize(graph.build_view(model, registry.needs_capture, sequence_length))
    chosen = as_composite(composite).prepend(rules)
    stateful = stateful_nodes(view)
    report = CheckReport(
        model_name=model.name,
        composite=chosen.name or "custom",
        nodes=tuple(
            _row(node, rule, chosen, reached, stateful)
            for node, rule, reached in assignment.candidate_rules(view, chosen)
        ),
    )
    if verbose:
        print(report.table(), file=sys.stdout if file is None else file)
    return report


def as_composite(composite) -> Composite:
    """A Composite from a composite, a registered name, ``"lrp.<name>"`` or ``"epsilon"``."""
    if isinstance(composite, Composite):
        return composite
    if not isinstance(composite, str):
        raise ParameterTypeError(f"composite must be a name or a Composite. Received: {composite!r}")
    name = composite.removeprefix("lrp.")
    if name == "epsilon":
        return composites.default_composite()
    if name not in composites.composite_names():
        raise UnknownNameError(suggest(composite, ["epsilon"] + composites.composite_names(), "composite"))
    return composites.get_composite(name)


def _type_name(node) -> str:
    own = type(node.layer).__name__
    return node.op_type.__name__ if node.op_type.__name__ == own else f"{node.op_type.__name__} ({own})"


UNREACHED = "none (no relevance reaches it)"


def _row(node, rule, composite, reached, stateful) -> NodeReport:
    type_name = _type_name(node)
    if node.name in stateful:  # refused even where no relevance reaches it: running it changes its state
        fix = "stateful: rebuild the layer with stateful=False"
        return NodeReport(node.name, type_name, UNSUPPORTED, fix)
    if not reached:
        return NodeReport(node.name, type_name, UNREACHED)
    if rule is None:
        return NodeReport(node.name, type_name, UNSUPPORTED, _fix(node, composite))
    if rule.requires_weights and node.params is None:
        fix = f"{type(rule).__name__} modifies weights and this node has none; give it Epsilon or Pass"
        return NodeReport(node.name, type_name, UNSUPPORTED, fix)
    return NodeReport(node.name, type_name, repr(rule))


def _fix(node, composite) -> str:
    fix = _plain_fix(node, composite)
    return fix if node.capture_failure is None else f"{fix} (not captured: {node.capture_failure})"


def _plain_fix(node, composite) -> str:
    cls = node.op_type.__name__
    if node.params is not None:
        return (
            f"add (keras.layers.{cls}, tfxai.rules.Epsilon()) to composite {composite.name or ''!r} or rules="
        )
    if issubclass(node.op_type, keras.layers.Lambda):
        return (
            "a Lambda hides its function: rewrite it with keras.ops or a layer, or "
            f"rules=[({node.name!r}, tfxai.rules.Pass())], or tfxai.register_rule(keras.layers.Lambda, rule)"
        )
    return f"tfxai.register_rule({cls}, tfxai.rules.Pass()) if element-wise, or rules=[({node.name!r}, rule)]"
