"""The name table behind :func:`create_analyzer`.

Names follow iNNvestigate so its users can migrate: ``"gradient"``,
``"input_t_gradient"``, ``"lrp.epsilon"``, ``"lrp.alpha_2_beta_1"``, ... and
``"lrp.<composite>"`` for every registered composite preset. The built-in
analyzers are registered by :mod:`tfxai.analyzers`; this module holds the
table and the factories, and imports no analyzer but LRP (for the presets).
"""

from __future__ import annotations

import inspect
from typing import Callable

from tfxai import composites, registry
from tfxai.analyzers.lrp import LRP
from tfxai.composites import FIRST, Composite
from tfxai.errors import ParameterTypeError, UnknownNameError, suggest

_ANALYZERS: dict = {}


class UnknownAnalyzerError(UnknownNameError):
    """``create_analyzer`` got a name no analyzer is registered under."""


def register_analyzer(name: str, factory: Callable) -> None:
    """Register ``factory(model, **kwargs) -> Analyzer`` under ``name``."""
    _ANALYZERS[name] = factory


def analyzer_names() -> list:
    """Every name :func:`create_analyzer` accepts."""
    register_presets()
    return sorted(_ANALYZERS)


def register_presets() -> None:
    """Make ``"lrp.<name>"`` available for every composite, also those registered later."""
    for preset in composites.composite_names():
        if f"lrp.{preset}" not in _ANALYZERS:
            register_analyzer(f"lrp.{preset}", preset_lrp(preset))


def create_analyzer(name: str, model, **kwargs) -> Analyzer:
    """Create the analyzer registered as ``name`` for ``model``.

    Parameters
    ----------
    name : str
        One of :func:`analyzer_names`, e.g. ``"lrp.epsilon"``,
        ``"lrp.epsilon_gamma_box"``, ``"gradient"``.
    model : keras.Model
        A Functional or built Sequential Keras 3 model; never modified.
    **kwargs
        Method parameters (``epsilon=``, ``gamma=``, ``alpha=``/``beta=``,
        ``low=``/``high=``, ``ignore_bias=``), LRP options (``rules=``,
        ``input_layer_rule=``) and analyzer options (``output_index=``,
        ``jit_compile=``).

    Returns
    -------
    Analyzer

    Raises
    ------
    UnknownAnalyzerError
        For an unknown name; the message suggests the closest valid names.
    ParameterTypeError
        For a parameter the analyzer does not take (the message lists those
        it does), or for the model and the name given in the wrong order.

    Examples
    --------
    >>> analyzer = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.1)  # doctest: +SKIP
    >>> relevance = analyzer.analyze(x)  # doctest: +SKIP
    """
    accepted = analyzer_parameters(name, model)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ParameterTypeError(f"Analyzer {name!r} does not take {unknown}. It takes: {sorted(accepted)}")
    return _ANALYZERS[name](model, **kwargs)


def analyzer_parameters(name: str, model=None) -> list:
    """Names of the keyword parameters the analyzer ``name`` takes, each once.

    Parameters
    ----------
    name : str
        One of :func:`analyzer_names`.
    model : optional
        Only used to recognise ``(model, name)`` given in the wrong order.

    Raises
    ------
    UnknownAnalyzerError
        For an unknown name; the message suggests the closest valid names.
    ParameterTypeError
        When ``name`` is not a string.
    """
    if not isinstance(name, str):
        if isinstance(model, str):
            raise ParameterTypeError(
                f"create_analyzer takes the analyzer name first, then the model: "
                f"create_analyzer({model!r}, model). Received the model first and {model!r} second."
            )
        raise ParameterTypeError(f"The analyzer name must be a string such as 'lrp.epsilon'. Received: {name!r}")
    register_presets()
    if name not in _ANALYZERS:
        raise UnknownAnalyzerError(suggest(name, analyzer_names(), "analyzer"))
    return _accepted_parameters(_ANALYZERS[name])


BASE_OPTIONS = ("output_index", "jit_compile", "sequence_length")
LRP_OPTIONS = BASE_OPTIONS + ("rules", "input_layer_rule")


def _accepted_parameters(factory) -> list:
    own = [p for p in inspect.signature(factory).parameters if p not in ("model", "options")]
    return list(dict.fromkeys(own + list(getattr(factory, "options", ()))))


def uniform_lrp(make_rule: Callable, first_rule: Callable | None = None) -> Callable:
    """Factory of an LRP analyzer giving every weighted layer ``make_rule(**params)``."""
    parameters = list(inspect.signature(make_rule).parameters.values())

    def factory(model, **kwargs):
        params = {p.name: kwargs.pop(p.name) for p in parameters if p.name in kwargs}
        rule = make_rule(**params)
        entries = [(registry.LINEAR, rule)] + registry.sequence_entries(rule)
        if first_rule is not None:
            entries.insert(0, (FIRST, first_rule(kwargs.pop("low", -1.0), kwargs.pop("high", 1.0))))
        return LRP(model, Composite(entries), **kwargs)

    factory.__signature__ = inspect.Signature(
        [inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters]
    )
    factory.options = LRP_OPTIONS + (("low", "high") if first_rule is not None else ())
    return factory


def preset_lrp(preset: str) -> Callable:
    make = composites._PRESETS[preset]

    def factory(model, **kwargs):
        params = {k: kwargs.pop(k) for k in list(kwargs) if k in inspect.signature(make).parameters}
        return LRP(model, composites.get_composite(preset, **params), **kwargs)

    factory.__signature__ = inspect.Signature(
        [inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in inspect.signature(make).parameters.values()]
    )
    factory.options = LRP_OPTIONS
    return factory


def analyzer_class(cls, options=BASE_OPTIONS, **fixed) -> Callable:
    """Factory of ``cls(model, **fixed, **params)`` that accepts the other keyword parameters of ``cls``."""

    def factory(model, **kwargs):
        return cls(model, **fixed, **kwargs)

    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, p in inspect.signature(cls).parameters.items()
        if name != "model"
        and name not in fixed
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]
    factory.__signature__ = inspect.Signature(
        [inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + own
    )
    factory.options = options
    factory.__doc__ = cls.__doc__
    return factory


def lrp_generic(model, composite=None, **kwargs):
    return LRP(model, composite, **kwargs)


lrp_generic.options = LRP_OPTIONS


def rule_variant(cls, **fixed):
    """A rule constructor with some parameters fixed (for named variants)."""
    signature = inspect.signature(cls)
    params = [p for name, p in signature.parameters.items() if name not in fixed]

    def make(**params_given):
        return cls(**fixed, **params_given)

    make.__signature__ = inspect.Signature(params)
    return make
