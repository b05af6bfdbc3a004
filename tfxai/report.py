"""``tfxai.check``: which rule every node of a model gets, before anything is traced.

:func:`check` walks and canonizes the model exactly as an analyzer would and
prints one row per node of the canonized graph: its name, its type, the rule
it gets under a chosen composite, and, for a node tfxai cannot explain, the
word "unsupported" and how to fix it. Nothing is traced or run, so it is fast
even for large backbones, and it reports every problem at once. The same
table backs the ``tfxai check MODEL`` command (:func:`add_check_command`,
:func:`run_check_command`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import keras

from tfxai import checks, composites
from tfxai.analyzers.lrp import default_composite
from tfxai.canonizers import canonize
from tfxai.composites import Composite
from tfxai.errors import TfxaiError
from tfxai.export import load_model as load_model_file
from tfxai.graph import build_view

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


def check(model, composite="epsilon_plus", *, rules=(), verbose: bool = True, file=None) -> CheckReport:
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
    checks.check_model(model)
    view = canonize(build_view(model))
    chosen = as_composite(composite).prepend(rules)
    report = CheckReport(
        model_name=model.name,
        composite=chosen.name or "custom",
        nodes=tuple(_row(node, rule, chosen) for node, rule in composites.candidate_rules(view, chosen)),
    )
    if verbose:
        print(report.table(), file=sys.stdout if file is None else file)
    return report


def as_composite(composite) -> Composite:
    """A Composite from a composite, a registered name, ``"lrp.<name>"`` or ``"epsilon"``."""
    if isinstance(composite, Composite):
        return composite
    if not isinstance(composite, str):
        raise TypeError(f"composite must be a name or a Composite. Received: {composite!r}")
    name = composite.removeprefix("lrp.")
    if name == "epsilon":
        return default_composite()
    if name not in composites.composite_names():
        valid = ", ".join(["epsilon"] + composites.composite_names())
        raise KeyError(f"Unknown composite {composite!r}. Valid names: {valid}")
    return composites.get_composite(name)


def _type_name(node) -> str:
    own = type(node.layer).__name__
    return node.op_type.__name__ if node.op_type is type(node.layer) else f"{node.op_type.__name__} ({own})"


def _row(node, rule, composite) -> NodeReport:
    type_name = _type_name(node)
    if rule is None:
        return NodeReport(node.name, type_name, UNSUPPORTED, _fix(node, composite))
    if rule.requires_weights and node.params is None:
        fix = f"{type(rule).__name__} modifies weights and this node has none; give it Epsilon or Pass"
        return NodeReport(node.name, type_name, UNSUPPORTED, fix)
    return NodeReport(node.name, type_name, repr(rule))


def _fix(node, composite) -> str:
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


def load_model(spec: str, input_shape=None):
    """A model from a saved-model file, or a ``keras.applications`` architecture (no weights).

    Parameters
    ----------
    spec : str
        A path to a ``.keras`` / ``.h5`` file, or an application name such as
        ``"ResNet50"`` or ``"keras.applications.EfficientNetB0"``.
    input_shape : tuple of int, optional
        For applications: the input shape (default: the architecture's own).
    """
    if os.path.exists(spec):
        return load_model_file(spec)
    name = spec.removeprefix("keras.applications.")
    builder = getattr(keras.applications, name, None)
    if not (callable(builder) and name[:1].isupper()):
        raise TfxaiError(
            f"{spec!r} is neither a model file nor a keras.applications model. "
            "Give a .keras/.h5 path or a name such as ResNet50 or EfficientNetB0."
        )
    return builder(weights=None, input_shape=None if input_shape is None else tuple(input_shape))


def add_check_command(subparsers) -> argparse.ArgumentParser:
    """Add ``check MODEL [--composite NAME] [--input-shape H,W,C]`` to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "check",
        help="print the rule every node of a model gets, and what is unsupported",
        description="Walk and canonize a model without tracing it; print one row per node with its "
        "type, its rule under a composite, and a fix for every unsupported node. "
        "Exit status 0 when every node has a rule, 1 otherwise.",
    )
    parser.add_argument(
        "model", help="a .keras/.h5 file, or a keras.applications name (built without weights)"
    )
    parser.add_argument(
        "--composite",
        default="epsilon_plus",
        help="registered composite name, or 'epsilon' (default: epsilon_plus)",
    )
    parser.add_argument(
        "--input-shape",
        type=_shape,
        default=None,
        help="input shape for keras.applications names, e.g. 32,32,3",
    )
    return parser


def run_check_command(args) -> int:
    """Run ``tfxai check`` for parsed arguments; return the exit status."""
    try:
        model = load_model(args.model, args.input_shape)
        report = check(model, args.composite)
    except (TfxaiError, KeyError, ValueError) as error:
        print(f"tfxai check: {error}", file=sys.stderr)
        return 2
    return 0 if report.ok else 1


def _shape(text: str) -> tuple:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, e.g. 32,32,3. Received: {text!r}"
        )
