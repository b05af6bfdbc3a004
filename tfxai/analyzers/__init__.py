"""Analyzers and the name registry behind :func:`create_analyzer`.

Names follow iNNvestigate so its users can migrate: ``"gradient"``,
``"input_t_gradient"``, ``"lrp.epsilon"``, ``"lrp.alpha_2_beta_1"``, ... and
``"lrp.<composite>"`` for every registered composite preset.
"""

from __future__ import annotations

import inspect
from typing import Callable

from tfxai import composites, registry, rules
from tfxai.analyzers.base import Analyzer
from tfxai.analyzers.gradient import Gradient, InputTimesGradient
from tfxai.analyzers.lrp import LRP
from tfxai.analyzers.baselines import InputAnalyzer, RandomAnalyzer
from tfxai.analyzers.cam import GradCAM, GradCAMPlusPlus
from tfxai.analyzers.deep_taylor import BoundedDeepTaylor, DeepTaylor
from tfxai.analyzers.gradient import IntegratedGradients, NoiseTunnel, SmoothGrad, VarGrad
from tfxai.analyzers.guided import Deconvnet, GuidedBackprop
from tfxai.analyzers.occlusion import Occlusion
from tfxai.composites import FIRST, Composite
from tfxai.errors import TfxaiError

_ANALYZERS: dict = {}


class UnknownAnalyzerError(TfxaiError, KeyError):
    """``create_analyzer`` got a name no analyzer is registered under."""

    def __str__(self):
        return str(self.args[0])


def register_analyzer(name: str, factory: Callable) -> None:
    """Register ``factory(model, **kwargs) -> Analyzer`` under ``name``."""
    _ANALYZERS[name] = factory


def analyzer_names() -> list:
    """Every name :func:`create_analyzer` accepts."""
    _register_presets()
    return sorted(_ANALYZERS)


def _register_presets() -> None:
    """Make ``"lrp.<name>"`` available for every composite, also those registered later."""
    for preset in composites.composite_names():
        if f"lrp.{preset}" not in _ANALYZERS:
            register_analyzer(f"lrp.{preset}", _preset_lrp(preset))


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
        For an unknown name; the message lists the valid names.
    TypeError
        For a parameter the analyzer does not take; the message lists those it does.

    Examples
    --------
    >>> analyzer = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.1)  # doctest: +SKIP
    >>> relevance = analyzer.analyze(x)  # doctest: +SKIP
    """
    _register_presets()
    if name not in _ANALYZERS:
        raise UnknownAnalyzerError(f"Unknown analyzer {name!r}. Valid names: {', '.join(analyzer_names())}")
    factory = _ANALYZERS[name]
    accepted = _accepted_parameters(factory)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"Analyzer {name!r} does not take {unknown}. It takes: {sorted(accepted)}")
    return factory(model, **kwargs)


_BASE_OPTIONS = ("output_index", "jit_compile")
_LRP_OPTIONS = _BASE_OPTIONS + ("rules", "input_layer_rule")


def _accepted_parameters(factory) -> list:
    own = [p for p in inspect.signature(factory).parameters if p not in ("model", "options")]
    return own + list(getattr(factory, "options", ()))


def _uniform_lrp(make_rule: Callable, first_rule: Callable | None = None) -> Callable:
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
    factory.options = _LRP_OPTIONS + (("low", "high") if first_rule is not None else ())
    return factory


def _preset_lrp(preset: str) -> Callable:
    make = composites._PRESETS[preset]

    def factory(model, **kwargs):
        params = {k: kwargs.pop(k) for k in list(kwargs) if k in inspect.signature(make).parameters}
        return LRP(model, composites.get_composite(preset, **params), **kwargs)

    factory.__signature__ = inspect.Signature(
        [inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in inspect.signature(make).parameters.values()]
    )
    factory.options = _LRP_OPTIONS
    return factory


def _analyzer_class(cls, options=_BASE_OPTIONS) -> Callable:
    """Factory of ``cls(model, **params)`` that accepts the keyword parameters of ``cls``."""

    def factory(model, **kwargs):
        return cls(model, **kwargs)

    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, p in inspect.signature(cls).parameters.items()
        if name != "model" and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]
    factory.__signature__ = inspect.Signature(
        [inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + own
    )
    factory.options = options
    factory.__doc__ = cls.__doc__
    return factory


def _lrp_generic(model, composite=None, **kwargs):
    return LRP(model, composite, **kwargs)


_lrp_generic.options = _LRP_OPTIONS


def _rule(cls, **fixed):
    """A rule constructor with some parameters fixed (for named variants)."""
    signature = inspect.signature(cls)
    params = [p for name, p in signature.parameters.items() if name not in fixed]

    def make(**params_given):
        return cls(**fixed, **params_given)

    make.__signature__ = inspect.Signature(params)
    return make


register_analyzer("gradient", _analyzer_class(Gradient))
register_analyzer("input_t_gradient", _analyzer_class(InputTimesGradient))
register_analyzer("lrp", _lrp_generic)
_UNIFORM = {
    "lrp.z": _rule(rules.Z),
    "lrp.z_IB": _rule(rules.Z, ignore_bias=True),
    "lrp.epsilon": _rule(rules.Epsilon),
    "lrp.epsilon_IB": _rule(rules.Epsilon, ignore_bias=True),
    "lrp.gamma": _rule(rules.Gamma),
    "lrp.alpha_beta": _rule(rules.AlphaBeta),
    "lrp.alpha_1_beta_0": _rule(rules.AlphaBeta, alpha=1.0, beta=0.0),
    "lrp.alpha_1_beta_0_IB": _rule(rules.AlphaBeta, alpha=1.0, beta=0.0, ignore_bias=True),
    "lrp.alpha_2_beta_1": _rule(rules.AlphaBeta, alpha=2.0, beta=1.0),
    "lrp.alpha_2_beta_1_IB": _rule(rules.AlphaBeta, alpha=2.0, beta=1.0, ignore_bias=True),
    "lrp.z_plus": _rule(rules.ZPlus),
    "lrp.w_square": _rule(rules.WSquare),
    "lrp.flat": _rule(rules.Flat),
}
for _name, _make in _UNIFORM.items():
    register_analyzer(_name, _uniform_lrp(_make))
register_analyzer("lrp.bounded", _uniform_lrp(_rule(rules.Z), first_rule=rules.ZBox))
_register_presets()


_CLASSES = {
    "smoothgrad": SmoothGrad,
    "vargrad": VarGrad,
    "noise_tunnel": NoiseTunnel,
    "integrated_gradients": IntegratedGradients,
    "guided_backprop": GuidedBackprop,
    "deconvnet": Deconvnet,
    "grad_cam": GradCAM,
    "grad_cam_plus_plus": GradCAMPlusPlus,
    "occlusion": Occlusion,
    "input": InputAnalyzer,
    "random": RandomAnalyzer,
}
for _name, _cls in _CLASSES.items():
    register_analyzer(_name, _analyzer_class(_cls))
register_analyzer("deep_taylor", _analyzer_class(DeepTaylor, _LRP_OPTIONS))
register_analyzer("deep_taylor.bounded", _analyzer_class(BoundedDeepTaylor, _LRP_OPTIONS))

__all__ = [
    "Analyzer",
    "BoundedDeepTaylor",
    "Deconvnet",
    "DeepTaylor",
    "Gradient",
    "GradCAM",
    "GradCAMPlusPlus",
    "GuidedBackprop",
    "InputAnalyzer",
    "InputTimesGradient",
    "IntegratedGradients",
    "LRP",
    "NoiseTunnel",
    "Occlusion",
    "RandomAnalyzer",
    "SmoothGrad",
    "UnknownAnalyzerError",
    "VarGrad",
    "analyzer_names",
    "create_analyzer",
    "register_analyzer",
]
