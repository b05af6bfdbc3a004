"""Metrics of explanation quality: faithfulness, localisation, sanity, robustness, complexity.

Every metric takes NumPy arrays (or tensors) of one batch: the input ``x``,
its ``relevance`` (same shape) and, where the model is called, the model and
the explained ``target`` neuron per sample; it returns one score per sample.
See :mod:`tfxai.metrics.base` for the conventions (channels-last images,
tabular rows, logits) and :func:`tfxai.evaluate` to run several metrics over
several methods at once.

>>> from tfxai import metrics
>>> curve = metrics.region_perturbation(model, x, relevance, patch_size=4)  # doctest: +SKIP
>>> metrics.aopc(curve).mean()  # doctest: +SKIP
"""

from tfxai.metrics.base import MetricError, logits_model
from tfxai.metrics.complexity import complexity, sparseness
from tfxai.metrics.faithfulness import (
    abpc,
    aopc,
    curve_auc,
    deletion,
    faithfulness_correlation,
    insertion,
    insertion_curve,
    region_perturbation,
    selectivity,
)
from tfxai.metrics.localisation import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy
from tfxai.metrics.randomisation import cascading_randomisation, model_parameter_randomisation, random_logit
from tfxai.metrics.robustness import avg_sensitivity, local_lipschitz, max_sensitivity, sensitivities
from tfxai.metrics.similarity import spearman, ssim

__all__ = [
    "MetricError",
    "abpc",
    "aopc",
    "avg_sensitivity",
    "cascading_randomisation",
    "complexity",
    "curve_auc",
    "deletion",
    "faithfulness_correlation",
    "insertion",
    "insertion_curve",
    "local_lipschitz",
    "logits_model",
    "max_sensitivity",
    "model_parameter_randomisation",
    "pointing_game",
    "random_logit",
    "region_perturbation",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "selectivity",
    "sensitivities",
    "sparseness",
    "spearman",
    "ssim",
]
