"""tfxai: explain Keras 3 / TensorFlow models with LRP and gradient methods.

>>> import tfxai
>>> analyzer = tfxai.create_analyzer("lrp.epsilon", model)   # doctest: +SKIP
>>> relevance = analyzer.analyze(x)                           # doctest: +SKIP
"""

from tfxai import analyzers, composites, export, rules, serving, visualize
from tfxai.analyzers import Analyzer, analyzer_names, create_analyzer
from tfxai.composites import FIRST, LAST, Composite, register_composite
from tfxai.errors import InputError, ModelError, TfxaiError, UnsupportedLayerError
from tfxai.evaluate import evaluate
from tfxai import metrics
from tfxai.registry import register_rule, unregister_rule
from tfxai.report import check

__version__ = "0.1.0"

__all__ = [
    "Analyzer",
    "Composite",
    "FIRST",
    "InputError",
    "LAST",
    "ModelError",
    "TfxaiError",
    "UnsupportedLayerError",
    "analyzer_names",
    "analyzers",
    "check",
    "composites",
    "create_analyzer",
    "evaluate",
    "export",
    "metrics",
    "register_composite",
    "register_rule",
    "rules",
    "serving",
    "unregister_rule",
    "visualize",
]
