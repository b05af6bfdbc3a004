"""Robustness: does the explanation stay put when the input moves a little?

Each metric explains ``samples`` noisy copies of the whole batch (one
``explain`` call per copy, every sample at once) at the original target and
compares them with the explanation of ``x``. Noise is scaled per channel
(images) or per feature (tabular) by that channel's or feature's range over
the batch, so features in different units get comparable noise. Lower is
better for all three.
"""

from __future__ import annotations

import numpy as np

from tfxai.metrics.base import Forward, MetricError, as_batch, as_relevance, check_positive_int, flat


def _feature_range(x: np.ndarray) -> np.ndarray:
    axes = tuple(range(x.ndim - 1)) if x.ndim >= 3 else (0,)
    span = x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True)
    return np.where(span > 0, span, 1.0)


def _check_scale(name, value):
    if not float(value) > 0:
        raise MetricError(
            f"{name} must be > 0 (a fraction of each feature's range). Received: {name}={value!r}"
        )
    return float(value)


def _noisy_explanations(model, x, relevance, explain, target, samples, seed, draw, logits):
    """``(reference, [(noise, relevance of x + noise)] * samples)``, the noise from ``draw(rng, shape)``."""
    x = as_batch(x)
    reference = as_relevance(relevance, x)
    target = Forward(model, logits=logits).target(x, target)
    rng = np.random.default_rng(seed)
    scale = _feature_range(x)
    pairs = []
    for _ in range(check_positive_int("samples", samples)):
        noise = (draw(rng, x.shape) * scale).astype(np.float32)
        changed = as_relevance(explain(model, x + noise, target), x, "the explanation of the noisy input")
        pairs.append((noise, changed))
    return reference, pairs


def sensitivities(
    model,
    x,
    relevance,
    explain,
    target=None,
    *,
    radius: float = 0.05,
    samples: int = 10,
    seed: int = 0,
    logits: bool = True,
) -> np.ndarray:
    """``(n, samples)`` relative changes ``||e(x + d) - e(x)|| / ||e(x)||`` for uniform noise ``d``.

    ``d`` is uniform in ``[-radius, radius]`` times each feature's range over
    the batch (an L-infinity ball, as Yeh et al. 2019). Norms are Euclidean
    over all values of a sample; a sample whose explanation is zero gets
    ``inf`` unless the noisy explanation is zero too (then 0).
    """
    radius = _check_scale("radius", radius)
    reference, pairs = _noisy_explanations(
        model,
        x,
        relevance,
        explain,
        target,
        samples,
        seed,
        lambda rng, shape: rng.uniform(-radius, radius, shape),
        logits,
    )
    norm = np.linalg.norm(flat(reference), axis=1)
    changes = np.stack([np.linalg.norm(flat(changed - reference), axis=1) for _, changed in pairs], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = changes / norm[:, None]
    return np.where(changes == 0, 0.0, ratio)


def max_sensitivity(model, x, relevance, explain, target=None, **options) -> np.ndarray:
    """Max-sensitivity (Yeh et al. 2019): the largest relative change over the noisy copies.

    Parameters
    ----------
    model : keras.Model
        Not modified.
    x, relevance : array-like
        A batch and its explanation by the method under test.
    explain : callable
        ``explain(model, x, target) -> relevance``.
    target : int or array-like of int, optional
        Explained neuron (default: the largest logit); kept for the noisy copies.
    **options
        ``radius`` (default 0.05 of each feature's range), ``samples``
        (default 10), ``seed``, ``logits``; see :func:`sensitivities`.

    Returns
    -------
    numpy.ndarray
        ``(n,)``; lower is better.

    References
    ----------
    Yeh, Hsieh, Suggala, Inouye, Ravikumar (2019). On the (in)fidelity and
    sensitivity of explanations. NeurIPS.
    """
    return sensitivities(model, x, relevance, explain, target, **options).max(axis=1)


def avg_sensitivity(model, x, relevance, explain, target=None, **options) -> np.ndarray:
    """Average sensitivity (Yeh et al. 2019): the mean relative change over the noisy copies.

    Parameters are those of :func:`max_sensitivity`; lower is better.
    """
    return sensitivities(model, x, relevance, explain, target, **options).mean(axis=1)


def local_lipschitz(
    model,
    x,
    relevance,
    explain,
    target=None,
    *,
    sigma: float = 0.05,
    samples: int = 10,
    seed: int = 0,
    logits: bool = True,
) -> np.ndarray:
    """Local Lipschitz estimate (Alvarez-Melis and Jaakkola 2018): ``max ||e(x') - e(x)|| / ||x' - x||``.

    ``x' = x + d`` with Gaussian ``d`` of standard deviation ``sigma`` times
    each feature's range over the batch; the maximum is over ``samples``
    noisy copies (a Monte-Carlo stand-in for the paper's optimisation over a
    neighbourhood). Lower is better (a more stable explanation).

    References
    ----------
    Alvarez-Melis, Jaakkola (2018). On the robustness of interpretability
    methods. ICML Workshop on Human Interpretability in Machine Learning.
    """
    sigma = _check_scale("sigma", sigma)
    reference, pairs = _noisy_explanations(
        model,
        x,
        relevance,
        explain,
        target,
        samples,
        seed,
        lambda rng, shape: rng.normal(0.0, sigma, shape),
        logits,
    )
    ratios = [
        np.linalg.norm(flat(changed - reference), axis=1)
        / np.linalg.norm(flat(noise.astype(np.float64)), axis=1)
        for noise, changed in pairs
    ]
    return np.max(np.stack(ratios, axis=1), axis=1)
