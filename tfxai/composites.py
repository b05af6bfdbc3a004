"""Composites: which rule each node of a model gets.

A :class:`Composite` is an ordered list of ``(matcher, rule)`` entries; for each
node the first matching entry wins. Matchers select nodes by layer type, by
layer name (exact or regular expression) or by position (:data:`FIRST`, the
weighted layers nearest the input; :data:`LAST`, those nearest the output).
Nodes no entry matches get the default rule of their type from
:mod:`tfxai.registry`.

Presets follow Montavon et al. (2019) and Kohlbrenner et al. (2020): upper dense
layers LRP-epsilon, convolutions a positive-evidence rule, the input layer a
rule for its domain. They are registered by name with :func:`register_composite`
and built by :func:`get_composite`.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Callable

from tfxai import registry, rules
from tfxai.canonizers import RETYPING_REWRITES
from tfxai.errors import (
    ParameterError,
    ParameterTypeError,
    UnknownNameError,
    suggest,
)
from tfxai.rules import transformer


@dataclasses.dataclass(frozen=True)
class ByType:
    """Match nodes whose layer is an instance of one of ``types``."""

    types: tuple

    def matches(self, node, positions) -> bool:
        return issubclass(node.op_type, self.types)


@dataclasses.dataclass(frozen=True)
class ByName:
    """Match nodes by layer name or full node name (``"backbone/conv1"``).

    ``pattern`` is an exact name (str) or a compiled regular expression, which
    must match the whole name.
    """

    pattern: object

    def matches(self, node, positions) -> bool:
        # A node a canonizer split off a layer (the fused activation of a Dense)
        # matches by its own node name only, so naming a layer selects the
        # layer's linear part, as selecting by type does.
        retyped = node.rewrite in RETYPING_REWRITES
        names = (node.name,) if retyped else (node.layer.name, node.name)
        if isinstance(self.pattern, re.Pattern):
            return any(self.pattern.fullmatch(name) for name in names)
        return self.pattern in names


@dataclasses.dataclass(frozen=True)
class ByPosition:
    """Match the weighted nodes nearest the input (``"first"``) or output (``"last"``)."""

    where: str

    def __post_init__(self):
        if self.where not in ("first", "last"):
            raise ParameterError(f"ByPosition expects 'first' or 'last'. Received: {self.where!r}")

    def matches(self, node, positions) -> bool:
        return node.name in positions[self.where]


@dataclasses.dataclass(frozen=True)
class Rectified:
    """Match nodes of one of ``types`` whose output only feeds ReLUs.

    Relevance then only reaches their outputs with ``z > 0``, the setting
    :class:`~tfxai.rules.Gamma` is meant for.
    """

    types: tuple

    def matches(self, node, positions) -> bool:
        return issubclass(node.op_type, self.types) and node.name in positions["rectified"]


FIRST = ByPosition("first")
"""The weighted layers that see the model input (no weighted layer before them)."""

LAST = ByPosition("last")
"""The weighted layers that produce the explained output (no weighted layer after)."""


def as_matcher(spec):
    """Turn a layer class, tuple of classes, name, regex or matcher into a matcher."""
    if hasattr(spec, "matches"):
        return spec
    if isinstance(spec, type):
        return ByType((spec,))
    if isinstance(spec, tuple) and spec and all(isinstance(t, type) for t in spec):
        return ByType(spec)
    if isinstance(spec, (str, re.Pattern)):
        return ByName(spec)
    raise ParameterTypeError(
        "A composite entry selects nodes by layer class, tuple of classes, layer name, "
        f"compiled regex, FIRST or LAST. Received: {spec!r}"
    )


class Composite:
    """Ordered ``(matcher, rule)`` map; the first entry that matches a node wins.

    Parameters
    ----------
    entries : sequence of (selector, Rule)
        Selectors are layer classes or tuples of them, exact layer names,
        compiled regular expressions, :data:`FIRST` / :data:`LAST`, or any
        object with ``matches(node, positions)``.
    name : str, optional
        A label for error messages and ``repr``.

    Examples
    --------
    >>> import re, keras
    >>> from tfxai import rules
    >>> Composite([(FIRST, rules.Flat()), (re.compile("block5_.*"), rules.Gamma(0.5)),
    ...            (keras.layers.Dense, rules.Epsilon(0.1))])  # doctest: +ELLIPSIS
    Composite(...)
    """

    def __init__(self, entries=(), name: str | None = None):
        checked = []
        if isinstance(entries, (str, dict)) or not hasattr(entries, "__iter__"):
            raise ParameterTypeError(
                f"Composite entries are a sequence of (selector, Rule) pairs. Received: {entries!r}"
            )
        for entry in entries:
            if not isinstance(entry, (tuple, list)) or len(entry) != 2:
                raise ParameterTypeError(
                    f"Composite entries pair a selector with a Rule. Received: {entry!r}"
                )
            selector, rule = entry
            if not isinstance(rule, rules.Rule):
                raise ParameterTypeError(
                    f"Composite entries pair a selector with a Rule. Received: {entry!r}"
                )
            checked.append((as_matcher(selector), rule))
        self.entries = tuple(checked)
        self.name = name

    def prepend(self, entries) -> "Composite":
        """A new composite whose ``entries`` come before (override) these."""
        return Composite(tuple(entries) + self.entries, self.name)

    def rule_for(self, node, positions) -> rules.Rule | None:
        """The rule of the first matching entry, or ``None``."""
        for matcher, rule in self.entries:
            if matcher.matches(node, positions):
                return rule
        return None

    def __repr__(self):
        return f"Composite({self.name or ''}{list(self.entries)!r})"


_PRESETS: dict = {}


def register_composite(name: str) -> Callable:
    """Decorator registering a composite factory under ``name``.

    The factory takes keyword parameters (``epsilon``, ``gamma``, ``low``...)
    and returns a :class:`Composite`; ``create_analyzer("lrp.<name>", ...)``
    passes its keyword arguments through.
    """

    def decorate(factory):
        _PRESETS[name] = factory
        return factory

    return decorate


def composite_names() -> list:
    """Names of every registered composite preset."""
    return sorted(_PRESETS)


def get_composite(name: str, **params) -> Composite:
    """Build the registered composite ``name`` with its parameters.

    Raises
    ------
    UnknownNameError
        For an unknown name, suggesting the closest valid ones.
    ParameterTypeError
        For a parameter the preset does not take, listing the ones it does.
    """
    if name not in _PRESETS:
        raise UnknownNameError(suggest(name, composite_names(), "composite"))
    factory = _PRESETS[name]
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ParameterTypeError(f"Composite {name!r} does not take {unknown}; it takes {accepted}.")
    return factory(**params)


def _dense_epsilon(epsilon):
    return [(registry.DENSE, rules.Epsilon(epsilon))]


@register_composite("epsilon_plus")
def epsilon_plus(epsilon: float = 1e-6):
    """Dense: Epsilon; convolutions: ZPlus."""
    return Composite([(registry.CONV, rules.ZPlus())] + _dense_epsilon(epsilon), "epsilon_plus")


@register_composite("epsilon_plus_flat")
def epsilon_plus_flat(epsilon: float = 1e-6):
    """As ``epsilon_plus``; the first weighted layer: Flat."""
    return epsilon_plus(epsilon).prepend([(FIRST, rules.Flat())])


@register_composite("epsilon_gamma_box")
def epsilon_gamma_box(low=-1.0, high=1.0, epsilon: float = 1e-6, gamma: float = 0.25):
    """Dense: Epsilon; convolutions: Gamma; the first weighted layer: ZBox(low, high).

    Gamma for convolutions followed by a ReLU; GeneralizedGamma for those whose
    output keeps negative values (residual branches, linear bottlenecks, swish),
    where Gamma's denominator can cancel and amplify relevance without bound.
    """
    return Composite(
        [
            (FIRST, rules.ZBox(low, high)),
            (Rectified(registry.CONV), rules.Gamma(gamma)),
            (registry.CONV, rules.GeneralizedGamma(gamma)),
        ]
        + _dense_epsilon(epsilon),
        "epsilon_gamma_box",
    )


@register_composite("epsilon_alpha2_beta1")
def epsilon_alpha2_beta1(epsilon: float = 1e-6):
    """Dense: Epsilon; convolutions: AlphaBeta(2, 1)."""
    return Composite(
        [(registry.CONV, rules.AlphaBeta(2.0, 1.0))] + _dense_epsilon(epsilon), "epsilon_alpha2_beta1"
    )


@register_composite("epsilon_alpha2_beta1_flat")
def epsilon_alpha2_beta1_flat(epsilon: float = 1e-6):
    """As ``epsilon_alpha2_beta1``; the first weighted layer: Flat."""
    return epsilon_alpha2_beta1(epsilon).prepend([(FIRST, rules.Flat())])


@register_composite("sequential_preset_a")
def sequential_preset_a(epsilon: float = 0.1):
    """iNNvestigate's preset A: Dense: Epsilon(0.1); convolutions: AlphaBeta(1, 0)."""
    return Composite(
        [(registry.CONV, rules.AlphaBeta(1.0, 0.0))] + _dense_epsilon(epsilon), "sequential_preset_a"
    )


@register_composite("sequential_preset_b")
def sequential_preset_b(epsilon: float = 0.1):
    """iNNvestigate's preset B: Dense: Epsilon(0.1); convolutions: AlphaBeta(2, 1)."""
    return Composite(
        [(registry.CONV, rules.AlphaBeta(2.0, 1.0))] + _dense_epsilon(epsilon), "sequential_preset_b"
    )


@register_composite("sequential_preset_a_flat")
def sequential_preset_a_flat(epsilon: float = 0.1):
    """Preset A with Flat on the first weighted layer."""
    return sequential_preset_a(epsilon).prepend([(FIRST, rules.Flat())])


@register_composite("sequential_preset_b_flat")
def sequential_preset_b_flat(epsilon: float = 0.1):
    """Preset B with Flat on the first weighted layer."""
    return sequential_preset_b(epsilon).prepend([(FIRST, rules.Flat())])


def _transformer_entries(epsilon, attention, mix):
    linear = rules.Epsilon(epsilon)
    return [
        (registry.LINEAR, linear),
        (registry.ATTENTION, attention(linear)),
        (registry.RECURRENT, rules.Recurrent(linear)),
        (registry.TIED_EMBEDDINGS, transformer.TiedEmbedding(epsilon)),
        (registry.ATTENTION_MIXES, mix),
        (registry.PRODUCTS_OF_ACTIVATIONS, transformer.Bilinear(epsilon)),
        (registry.NORMALIZATIONS, rules.FrozenScale(epsilon)),
    ]


@register_composite("cp_lrp")
def cp_lrp(epsilon: float = 1e-6):
    """CP-LRP for transformers (Ali et al. 2022): attention weights and normalisation scales held constant.

    Every linear map (Dense, EinsumDense, attention projections, the tied
    output embedding) gets LRP-epsilon; ``A v`` is linear in ``v``
    (:class:`~tfxai.rules.transformer.ConstantWeights`), so no relevance
    enters the softmax; other products of activations split uniformly.
    Conservative on bias-free models with ``epsilon=0``.
    """
    return Composite(
        _transformer_entries(epsilon, rules.ConservativeAttention, transformer.ConstantWeights(epsilon)),
        "cp_lrp",
    )


@register_composite("attn_lrp")
def attn_lrp(epsilon: float = 1e-6):
    """AttnLRP (Achtibat et al. 2024): relevance also through the attention weights.

    As ``cp_lrp``, but ``A v`` and ``q k^T`` split relevance uniformly
    between their factors (:class:`~tfxai.rules.transformer.Bilinear`) and
    every softmax inside the model gets
    :class:`~tfxai.rules.transformer.AttnSoftmax`. Not conservative: the
    softmax rule absorbs relevance, as in the paper.
    """
    entries = _transformer_entries(epsilon, rules.AttnLRP, transformer.Bilinear(epsilon))
    return Composite([(registry.SOFTMAXES, transformer.AttnSoftmax())] + entries, "attn_lrp")


def default_composite() -> Composite:
    """The composite of an LRP analyzer given none: LRP-epsilon on every weighted layer."""
    return Composite([(registry.LINEAR, rules.Epsilon())], "epsilon")
