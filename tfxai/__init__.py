"""tfxai: explain Keras 3 / TensorFlow models with LRP and gradient methods.

>>> import tfxai
>>> analyzer = tfxai.create_analyzer("lrp.epsilon", model)   # doctest: +SKIP
>>> relevance = analyzer.analyze(x)                           # doctest: +SKIP

Public names are loaded on first use: ``import tfxai`` itself imports
neither TensorFlow nor matplotlib, so the command line starts at once and
``tfxai.visualize`` costs nothing until a picture is drawn.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("analyzers", "composites", "export", "metrics", "rules", "serving", "visualize")

_NAMES = {
    "Analyzer": "tfxai.analyzers",
    "analyzer_names": "tfxai.analyzers",
    "analyzer_parameters": "tfxai.analyzers",
    "create_analyzer": "tfxai.analyzers",
    "Composite": "tfxai.composites",
    "FIRST": "tfxai.composites",
    "LAST": "tfxai.composites",
    "register_composite": "tfxai.composites",
    "EmptyMapWarning": "tfxai.errors",
    "InputError": "tfxai.errors",
    "ModelError": "tfxai.errors",
    "ModelLoadError": "tfxai.errors",
    "ParameterError": "tfxai.errors",
    "ParameterTypeError": "tfxai.errors",
    "TfxaiError": "tfxai.errors",
    "TfxaiWarning": "tfxai.errors",
    "UnknownNameError": "tfxai.errors",
    "UnsupportedLayerError": "tfxai.errors",
    "register_rule": "tfxai.registry",
    "unregister_rule": "tfxai.registry",
    "check": "tfxai.checks",
    "evaluate": "tfxai.evaluation",
    "quiet": "tfxai.logs",
}
"""Public name -> the module that defines it."""

__all__ = sorted(set(_NAMES) | set(_SUBMODULES))


def __getattr__(name):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"tfxai.{name}")
    else:
        raise AttributeError(f"module 'tfxai' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
