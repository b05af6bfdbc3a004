"""``tfxai.evaluate``: compare explanation methods on your own model and data.

One call explains a batch with every method, measures each method's time and
peak memory, and scores each explanation with the metrics of
:mod:`tfxai.metrics`. The result prints as a Markdown table (one row per
method), writes CSV and plots the perturbation curves.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import numpy as np

from tfxai.analyzers import create_analyzer
from tfxai.metrics.complexity import complexity, sparseness
from tfxai.metrics import faithfulness as ff
from tfxai.metrics import localisation as loc
from tfxai.metrics import randomisation as rnd
from tfxai.metrics import robustness as rob
from tfxai.metrics.base import Forward, MetricError, as_batch
from tfxai.metrics.results import Evaluation
from tfxai.metrics.resources import Meter


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric as :func:`evaluate` runs it.

    Attributes
    ----------
    group : str
        ``"faithfulness"``, ``"localisation"``, ``"sanity"``, ``"robustness"`` or ``"complexity"``.
    higher_is_better : bool
    score : callable
        ``score(run, params) -> (n,) scores`` for one method's :class:`MethodRun`.
    """

    group: str
    higher_is_better: bool
    score: Callable


CURVE_REPLACEMENT = {"morf": "mean", "lerf": "mean", "deletion": 0.0, "selectivity": "min", "insertion": None}
"""Default replacement of each perturbation curve (``None``: blur for images, mean otherwise)."""


@dataclasses.dataclass
class MethodRun:
    """One method's explanation of the batch and what the metrics computed from it.

    Attributes
    ----------
    name : str
        The analyzer name; ``params`` its parameters.
    relevance : numpy.ndarray
        The explanation of ``x`` at ``target``.
    curves : dict
        Curve kind (``"morf"``, ``"lerf"``, ``"deletion"``, ``"insertion"``,
        ``"selectivity"``) -> ``(n, steps + 1)`` array.
    details : dict
        Extra results, e.g. ``"randomisation"``: layer -> similarity.
    """

    name: str
    params: dict
    setting: dict
    relevance: np.ndarray = None
    curves: dict = dataclasses.field(default_factory=dict)
    details: dict = dataclasses.field(default_factory=dict)
    _analyzer: object = None

    def explain(self, model, x, target):
        """The method's relevance of ``x`` at ``target`` for ``model``.

        The analyzer of the user's model is made once; a copy (randomised
        model) gets a new analyzer at every call, so it sees its current weights.
        """
        if model is not self.setting["model"]:
            analyzer = create_analyzer(self.name, model, **self.params)
        else:
            if self._analyzer is None:
                self._analyzer = create_analyzer(self.name, model, **self.params)
            analyzer = self._analyzer
        return analyzer.analyze(x, neuron_selection=np.asarray(target), batch_size=self.setting["batch_size"])

    def curve(self, kind: str, params: dict) -> np.ndarray:
        """The perturbation curve ``kind`` with the shared settings and ``params`` (computed once)."""
        s = self.setting
        options = {
            "patch_size": s["patch_size"],
            "steps": s["steps"],
            "seed": s["seed"],
            "logits": s["logits"],
        }
        default = s["replacement"] if kind in ("morf", "lerf") else CURVE_REPLACEMENT[kind]
        options.update({"replacement": default, **params})
        key = (kind, repr(sorted(options.items(), key=lambda item: item[0])))
        if key not in self.curves:
            args = (s["model"], s["x"], self.relevance, s["target"])
            if kind == "insertion":
                self.curves[key] = ff.insertion_curve(*args, **options)
            else:
                order = "lerf" if kind == "lerf" else "morf"
                self.curves[key] = ff.region_perturbation(*args, order=order, **options)
        return self.curves[key]

    def curves_by_kind(self) -> dict:
        """The first curve of each kind."""
        found = {}
        for (kind, _), curve in self.curves.items():
            found.setdefault(kind, curve)
        return found


def _common(run):
    s = run.setting
    return s["model"], s["x"], run.relevance, run.explain, s["target"]


def _masks(run):
    if run.setting["masks"] is None:
        raise MetricError("Localisation metrics need ground-truth masks: pass masks= to evaluate.")
    return run.setting["masks"]


def _randomisation(run, params):
    model, x, relevance, explain, target = _common(run)
    options = {"seed": run.setting["seed"], "logits": run.setting["logits"], **params}
    cascade = rnd.model_parameter_randomisation(model, x, relevance, explain, target, **options)
    run.details["randomisation"] = cascade
    return list(cascade.values())[-1]


def _without_explain(function):
    def score(run, params):
        model, x, relevance, _, target = _common(run)
        options = {"seed": run.setting["seed"], "logits": run.setting["logits"], **params}
        return function(model, x, relevance, target, **options)

    return score


def _with_model(function):
    def score(run, params):
        options = {"seed": run.setting["seed"], "logits": run.setting["logits"], **params}
        return function(*_common(run), **options)

    return score


METRICS = {
    "morf": Metric("faithfulness", True, lambda run, p: ff.aopc(run.curve("morf", p))),
    "lerf": Metric("faithfulness", False, lambda run, p: ff.aopc(run.curve("lerf", p))),
    "abpc": Metric("faithfulness", True, lambda run, p: ff.abpc(run.curve("morf", p), run.curve("lerf", p))),
    "deletion": Metric("faithfulness", False, lambda run, p: ff.curve_auc(run.curve("deletion", p))),
    "insertion": Metric("faithfulness", True, lambda run, p: ff.curve_auc(run.curve("insertion", p))),
    "selectivity": Metric("faithfulness", False, lambda run, p: ff.curve_auc(run.curve("selectivity", p))),
    "faithfulness_correlation": Metric("faithfulness", True, _without_explain(ff.faithfulness_correlation)),
    "relevance_mass_accuracy": Metric(
        "localisation", True, lambda run, p: loc.relevance_mass_accuracy(run.relevance, _masks(run), **p)
    ),
    "relevance_rank_accuracy": Metric(
        "localisation", True, lambda run, p: loc.relevance_rank_accuracy(run.relevance, _masks(run), **p)
    ),
    "pointing_game": Metric(
        "localisation", True, lambda run, p: loc.pointing_game(run.relevance, _masks(run), **p)
    ),
    "randomisation": Metric("sanity", False, _randomisation),
    "random_logit": Metric("sanity", False, _with_model(rnd.random_logit)),
    "max_sensitivity": Metric("robustness", False, _with_model(rob.max_sensitivity)),
    "avg_sensitivity": Metric("robustness", False, _with_model(rob.avg_sensitivity)),
    "local_lipschitz": Metric("robustness", False, _with_model(rob.local_lipschitz)),
    "sparseness": Metric("complexity", True, lambda run, p: sparseness(run.relevance, **p)),
    "complexity": Metric("complexity", False, lambda run, p: complexity(run.relevance, **p)),
}
"""Metric name -> :class:`Metric`, in table order."""

DEFAULT_METRICS = (
    "morf",
    "lerf",
    "abpc",
    "deletion",
    "insertion",
    "randomisation",
    "random_logit",
    "sparseness",
)
"""What :func:`evaluate` measures by default (the localisation metrics are added when masks are given)."""

LOCALISATION = ("relevance_mass_accuracy", "relevance_rank_accuracy", "pointing_game")


def metric_names() -> list:
    """Every metric name :func:`evaluate` accepts, in table order."""
    return list(METRICS)


def evaluate(
    model,
    x,
    methods,
    metrics=None,
    *,
    masks=None,
    target=None,
    patch_size=None,
    steps=None,
    replacement="mean",
    batch_size=None,
    seed: int = 0,
    logits: bool = True,
    verbose: int = 1,
) -> Evaluation:
    """Explain ``x`` with each method and score the explanations with each metric.

    Parameters
    ----------
    model : keras.Model
        Single input, single output; never modified (the sanity checks work
        on copies).
    x : array-like
        One batch: ``(n, height, width, channels)`` images or ``(n, features)`` rows.
    methods : list or dict
        Analyzer names (:func:`tfxai.analyzer_names`), ``(name, params)``
        pairs, or a dict name -> params. A name used twice is labelled with
        its parameters.
    metrics : list, optional
        Names from :func:`metric_names` or ``(name, params)`` pairs, params
        going to the metric function (e.g. ``("randomisation", {"similarity":
        "ssim"})``). Default :data:`DEFAULT_METRICS`, plus the localisation
        metrics when ``masks`` are given.
    masks : array-like, optional
        Ground-truth evidence per sample, ``(n, height, width)`` or ``(n, features)``.
    target : int or array-like of int, optional
        Explained output neuron per sample; default the largest logit. Every
        method explains this neuron.
    patch_size, steps, replacement
        Regions, steps and (for MoRF/LeRF) replacement of the perturbation
        metrics; see :func:`tfxai.metrics.region_perturbation`.
    batch_size : int, optional
        Samples per analyzer call.
    seed : int
        Seeds the random parts (noise replacement, subsets, randomisation).
    logits : bool
        Measure the logits of a model that ends in a softmax.
    verbose : int
        1 shows a progress bar over (method, metric) steps.

    Returns
    -------
    tfxai.metrics.report.Evaluation

    Raises
    ------
    MetricError
        For an unknown metric, a localisation metric without masks, masks of
        the wrong shape, or invalid metric parameters.

    Examples
    --------
    >>> result = tfxai.evaluate(model, x, ["gradient", "lrp.epsilon"], masks=masks)  # doctest: +SKIP
    >>> print(result.to_markdown())  # doctest: +SKIP
    """
    x = as_batch(x)
    forward = Forward(model, logits=logits)
    setting = {
        "model": model,
        "x": x,
        "target": forward.target(x, target),
        "batch_size": batch_size,
        "seed": seed,
        "logits": logits,
        "patch_size": patch_size,
        "steps": steps,
        "replacement": replacement,
        "masks": None if masks is None else loc.check_masks(masks, x),
    }
    runs = [MethodRun(name, params, setting) for name, params in _methods(methods)]
    chosen = _metrics(metrics, masks is not None)
    labels = _labels(runs)
    progress = keras.utils.Progbar(len(runs) * (1 + len(chosen)), verbose=1) if verbose else None
    result = Evaluation([m for m, _ in chosen], {m: METRICS[m] for m, _ in chosen}, len(x))
    for label, run in zip(labels, runs):
        with Meter() as meter:
            run.relevance = np.asarray(run.explain(model, x, setting["target"]), np.float64)
        result.add_method(label, meter.seconds, meter.peak_bytes, meter.source)
        _advance(progress)
        for name, params in chosen:
            result.add_score(label, name, np.asarray(METRICS[name].score(run, params), np.float64))
            _advance(progress)
        result.curves[label] = run.curves_by_kind()
        result.details[label] = run.details
    return result


def _advance(progress):
    if progress is not None:
        progress.add(1)


def _methods(methods) -> list:
    items = methods.items() if isinstance(methods, dict) else methods
    parsed = []
    for item in items:
        name, params = (item, {}) if isinstance(item, str) else item
        if not isinstance(name, str) or not isinstance(params, dict):
            raise MetricError(f"Each method must be a name or a (name, params dict) pair. Received: {item!r}")
        parsed.append((name, dict(params)))
    if not parsed:
        raise MetricError("evaluate needs at least one method, e.g. methods=['gradient', 'lrp.epsilon'].")
    return parsed


def _metrics(metrics, have_masks: bool) -> list:
    if metrics is None:
        metrics = list(DEFAULT_METRICS) + (list(LOCALISATION) if have_masks else [])
    parsed = []
    for item in metrics:
        name, params = (item, {}) if isinstance(item, str) else item
        if name not in METRICS:
            raise MetricError(f"Unknown metric {name!r}. Valid names: {', '.join(METRICS)}")
        if METRICS[name].group == "localisation" and not have_masks:
            raise MetricError(f"Metric {name!r} needs ground-truth masks: pass masks= to evaluate.")
        parsed.append((name, dict(params)))
    if len({name for name, _ in parsed}) != len(parsed):
        raise MetricError(f"Each metric may appear once. Received: {[name for name, _ in parsed]}")
    return parsed


def _labels(runs) -> list:
    names = [run.name for run in runs]
    labels = [
        run.name
        if names.count(run.name) == 1
        else f"{run.name}({', '.join(f'{k}={v}' for k, v in sorted(run.params.items()))})"
        for run in runs
    ]
    if len(set(labels)) != len(labels):
        raise MetricError(f"Each method must differ in name or parameters. Received: {labels}")
    return labels
