"""Complexity: how concentrated is an explanation? No model needed.

Both metrics look at the magnitude of the relevance map (``|sum over
channels|`` for images, ``|relevance|`` for tabular data): a map that puts
its mass on few positions is easier to read. Samples whose map is all zero
score NaN.
"""

from __future__ import annotations

import numpy as np

from tfxai.metrics.base import MetricError, flat, relevance_map


def _magnitudes(relevance) -> np.ndarray:
    relevance = np.asarray(relevance, np.float64)
    if relevance.ndim < 2:
        raise MetricError(f"relevance must be a batch (n, ...). Received: shape {relevance.shape}")
    if not np.all(np.isfinite(relevance)):
        raise MetricError("relevance holds NaN or infinite values; metrics need finite relevance.")
    return np.abs(flat(relevance_map(relevance)))


def sparseness(relevance) -> np.ndarray:
    """Gini index of the relevance magnitudes (Chalasani et al. 2020): 0 uniform, towards 1 concentrated.

    With the ``d`` magnitudes sorted ascending, ``a_1 <= ... <= a_d``:
    ``G = sum_i (2 i - d - 1) a_i / (d sum_i a_i)``. Higher is sparser.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64.

    References
    ----------
    Chalasani, Chen, Chowdhury, Wu, Jha (2020). Concise explanations of
    neural networks using adversarial training. ICML.
    """
    values = np.sort(_magnitudes(relevance), axis=1)
    d = values.shape[1]
    weights = 2 * np.arange(1, d + 1) - d - 1
    total = values.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (values * weights).sum(axis=1) / (d * total), np.nan)


def complexity(relevance) -> np.ndarray:
    """Entropy of the fractional contributions ``p_i = |a_i| / sum_j |a_j|`` (Bhatt et al. 2020), in nats.

    ``-sum_i p_i log p_i`` (terms with ``p_i = 0`` count 0): between 0 (one
    position holds everything) and ``log d`` (uniform). Lower is simpler.

    References
    ----------
    Bhatt, Weller, Moura (2020). Evaluating and aggregating feature-based
    model explanations. IJCAI.
    """
    values = _magnitudes(relevance)
    total = values.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = values / total
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(total[:, 0] > 0, terms.sum(axis=1), np.nan)
