"""Faithfulness: does removing what the explanation calls relevant change the output most?

All metrics here perturb the input region by region (see
:mod:`tfxai.metrics.perturbation` for regions and replacements) and read the
explained output of the model, at its logits by default. Scores are returned
per sample (NumPy ``(n,)`` float64); curves as ``(n, steps + 1)`` arrays whose
first column is the unperturbed input.
"""

from __future__ import annotations

import numpy as np

from tfxai.metrics import perturbation as pt
from tfxai.metrics.base import (
    Forward,
    as_batch,
    as_relevance,
    check_choice,
    check_positive_int,
    relevance_map,
)

ORDERS = ("morf", "lerf")
"""Removal orders: most relevant first, least relevant first."""


def region_perturbation(
    model,
    x,
    relevance,
    target=None,
    *,
    order: str = "morf",
    patch_size=None,
    steps=None,
    replacement="mean",
    seed: int = 0,
    logits: bool = True,
    batch_size: int = 256,
) -> np.ndarray:
    """Region-perturbation curve (Samek et al. 2017); pixel flipping (Bach et al. 2015) at ``patch_size=1``.

    Regions are removed in the order of their summed relevance and the
    explained output is recorded after each step:
    ``curve[:, k] = f(x with the first round(k * regions / steps) regions replaced)``.

    Parameters
    ----------
    model : keras.Model
        Single input, single output; not modified.
    x : array-like
        ``(n, height, width, channels)`` images or ``(n, features)`` rows.
    relevance : array-like
        Same shape as ``x``; summed over channels per region.
    target : int or array-like of int, optional
        Explained output neuron per sample (default: the largest logit).
    order : {"morf", "lerf"}
        Most relevant first (MoRF) or least relevant first (LeRF).
    patch_size : int, optional
        Region side in positions; must divide the height and width (the
        feature count). Default: the smallest patch giving at most 64 regions.
    steps : int, optional
        Number of removal steps, at most the number of regions (default: one
        region per step).
    replacement : float, str, array-like or callable
        What replaces a removed region; see
        :func:`tfxai.metrics.perturbation.replacement_values`.
    seed : int
        Seed of a random replacement.
    logits : bool
        Measure the logits of a model that ends in a softmax.
    batch_size : int
        Largest number of perturbed inputs per model call.

    Returns
    -------
    numpy.ndarray
        ``(n, steps + 1)`` float64 curve.

    References
    ----------
    Samek, Binder, Montavon, Lapuschkin, Mueller (2017). Evaluating the
    visualization of what a deep neural network has learned. IEEE TNNLS.
    """
    check_choice("order", order, ORDERS)
    forward, x, relevance, target = _prepare(model, x, relevance, target, logits, batch_size)
    regions = pt.regions_for(x, patch_size)
    counts = pt.removal_counts(regions.count, pt.check_steps(steps, regions.count))
    baseline = pt.replacement_values(x, replacement, regions, seed)
    ranks = pt.ranks_from_relevance(relevance, regions, order)
    return pt.perturbed_outputs(forward, x, baseline, ranks, counts, target)


def aopc(curve) -> np.ndarray:
    """Area over the perturbation curve: ``mean_k (curve[:, 0] - curve[:, k])`` over all ``steps + 1`` points.

    Samek et al. (2017), equation 12. Higher is better for a MoRF curve,
    lower for a LeRF curve.
    """
    curve = np.asarray(curve, np.float64)
    return (curve[:, :1] - curve).mean(axis=1)


def abpc(morf_curve, lerf_curve) -> np.ndarray:
    """Area between the perturbation curves, ``mean_k (lerf[:, k] - morf[:, k])``: AOPC(MoRF) - AOPC(LeRF).

    Schulz, Sixt, Tombari, Landgraf (2020). Restricting the flow:
    information bottlenecks for attribution. ICLR. Higher is better.
    """
    return (np.asarray(lerf_curve, np.float64) - np.asarray(morf_curve, np.float64)).mean(axis=1)


def curve_auc(curve) -> np.ndarray:
    """Trapezoidal area under each curve over the removed fraction, from 0 to 1."""
    curve = np.asarray(curve, np.float64)
    return (curve[:, 1:] + curve[:, :-1]).sum(axis=1) / (2 * (curve.shape[1] - 1))


def deletion(model, x, relevance, target=None, *, replacement=0.0, **options) -> np.ndarray:
    """Deletion AUC (Petsiuk et al. 2018, RISE): remove the most relevant regions first; lower is better.

    The area under the MoRF curve of :func:`region_perturbation` over the
    removed fraction [0, 1] (trapezoidal rule). RISE deletes to zeros and
    measures probabilities; here the default replacement is 0 and the
    output is the logit unless ``logits=False``. ``options`` are those of
    :func:`region_perturbation`.

    References
    ----------
    Petsiuk, Das, Saenko (2018). RISE: randomized input sampling for
    explanation of black-box models. BMVC.
    """
    return curve_auc(
        region_perturbation(model, x, relevance, target, order="morf", replacement=replacement, **options)
    )


def insertion_curve(
    model,
    x,
    relevance,
    target=None,
    *,
    replacement=None,
    patch_size=None,
    steps=None,
    seed=0,
    logits=True,
    batch_size=256,
) -> np.ndarray:
    """The insertion curve (Petsiuk et al. 2018): start from the replacement, restore the most relevant first.

    ``curve[:, 0]`` is the output on the replacement alone and
    ``curve[:, -1]`` the output on ``x``. The default replacement is
    ``"blur"`` for images (as RISE) and ``"mean"`` for other inputs. The
    other parameters are those of :func:`region_perturbation`.
    """
    forward, x, relevance, target = _prepare(model, x, relevance, target, logits, batch_size)
    regions = pt.regions_for(x, patch_size)
    counts = pt.removal_counts(regions.count, pt.check_steps(steps, regions.count))
    if replacement is None:
        replacement = "blur" if x.ndim == 4 else "mean"
    baseline = pt.replacement_values(x, replacement, regions, seed)
    ranks = pt.ranks_from_relevance(relevance, regions, "morf")
    return pt.perturbed_outputs(forward, baseline, x, ranks, counts, target)


def insertion(model, x, relevance, target=None, **options) -> np.ndarray:
    """Insertion AUC (Petsiuk et al. 2018): area under :func:`insertion_curve` over [0, 1]; higher is better.

    ``options`` are those of :func:`insertion_curve`.
    """
    return curve_auc(insertion_curve(model, x, relevance, target, **options))


def selectivity(model, x, relevance, target=None, *, replacement="min", **options) -> np.ndarray:
    """Selectivity (Montavon et al. 2018): how fast the output falls as the most relevant regions go.

    Lower is better.

    The area under the MoRF curve over the removed fraction [0, 1], with
    removed regions set to the sample's minimum (Quantus' ``"black"``), the
    same measurement as :func:`deletion` with another default replacement.
    ``options`` are those of :func:`region_perturbation`.

    References
    ----------
    Montavon, Samek, Mueller (2018). Methods for interpreting and
    understanding deep neural networks. Digital Signal Processing 73.
    """
    return curve_auc(
        region_perturbation(model, x, relevance, target, order="morf", replacement=replacement, **options)
    )


def faithfulness_correlation(
    model,
    x,
    relevance,
    target=None,
    *,
    subset_size=None,
    subsets: int = 50,
    patch_size: int = 1,
    replacement=0.0,
    seed: int = 0,
    logits: bool = True,
    batch_size: int = 256,
) -> np.ndarray:
    """Faithfulness correlation (Bhatt et al. 2020); higher is better.

    For each of ``subsets`` random sets ``S`` of ``subset_size`` regions, the
    regions of ``S`` are replaced and the drop ``f(x) - f(x_S)`` is paired
    with the relevance summed over ``S``; the score is the Pearson
    correlation of the two over the subsets (0 for a sample where either is
    constant).

    Parameters
    ----------
    model, x, relevance, target, replacement, seed, logits, batch_size
        As in :func:`region_perturbation`.
    subset_size : int, optional
        Regions per subset (default: a tenth of the regions, at least 1).
    subsets : int
        Number of random subsets per sample.
    patch_size : int
        Region side (default 1: single pixels or features).

    References
    ----------
    Bhatt, Weller, Moura (2020). Evaluating and aggregating feature-based
    model explanations. IJCAI.
    """
    forward, x, relevance, target = _prepare(model, x, relevance, target, logits, batch_size)
    regions = pt.regions_for(x, patch_size)
    size = max(1, regions.count // 10) if subset_size is None else pt.check_steps(subset_size, regions.count)
    subsets = check_positive_int("subsets", subsets, minimum=2)
    ranks = random_subset_ranks(len(x), regions.count, subsets, seed)
    n, baseline = len(x), pt.replacement_values(x, replacement, regions, seed)
    position_ranks = regions.expand(ranks.reshape(subsets * n, -1)).astype(np.int32)
    tiled = [np.tile(a, (subsets,) + (1,) * (a.ndim - 1)) for a in (x, baseline, target)]
    outputs = pt.perturbed_outputs(forward, tiled[0], tiled[1], position_ranks, np.array([0, size]), tiled[2])
    drops = (outputs[:, 0] - outputs[:, 1]).reshape(subsets, n).T
    in_subset = ranks < size
    region_relevance = regions.sums(relevance_map(relevance))
    sums = (in_subset * region_relevance[None]).sum(axis=2).T
    return pearson_rows(sums, drops)


def random_subset_ranks(n: int, count: int, subsets: int, seed: int) -> np.ndarray:
    """``(subsets, n, count)``: an independent random permutation of the regions per subset and sample."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((subsets, n, count)), axis=2).argsort(axis=2)


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation, 0 where a row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.divide((a * b).sum(axis=1), norm, out=np.zeros(len(a)), where=norm > 0)


def _prepare(model, x, relevance, target, logits, batch_size):
    forward = Forward(model, logits=logits, batch_size=batch_size)
    x = as_batch(x)
    relevance = as_relevance(relevance, x)
    return forward, x, relevance, forward.target(x, target)


__all__ = [
    "ORDERS",
    "abpc",
    "aopc",
    "curve_auc",
    "deletion",
    "faithfulness_correlation",
    "insertion",
    "insertion_curve",
    "pearson_rows",
    "region_perturbation",
    "selectivity",
]
