"""Similarity of two explanations of the same samples: rank correlation and SSIM.

The sanity checks (:mod:`tfxai.metrics.randomisation`) compare an
explanation with one of a randomised model or of another class; a method
that passes them gives *dissimilar* maps. Both functions take batches of
relevance maps (first axis: samples) and return one value per sample.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tfxai.metrics.base import MetricError, flat

SIMILARITIES = ("spearman", "ssim")
"""Names accepted wherever a metric takes ``similarity=``."""


def _pair(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim < 2:
        raise MetricError(
            f"Expected two batches of equal shape (n, ...). Received: shapes {a.shape} and {b.shape}"
        )
    return a, b


def rank(values: np.ndarray) -> np.ndarray:
    """Row-wise ranks from 1, ties sharing their mean rank (SciPy's ``rankdata(method="average")``)."""
    order = np.argsort(values, axis=1, kind="stable")
    ranks = np.empty(values.shape, np.float64)
    for row, (v, o) in enumerate(zip(values, order)):
        sorted_values = v[o]
        starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
        ends = np.r_[starts[1:], len(v)]
        mean_rank = (starts + ends + 1) / 2.0
        ranks[row, o] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation of each pair of samples (0 where one of them is constant).

    References
    ----------
    Spearman (1904). The proof and measurement of association between two
    things. Used as explanation similarity by Adebayo et al. (2018).
    """
    a, b = _pair(a, b)
    ra, rb = rank(flat(a)), rank(flat(b))
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    norm = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    return np.divide((ra * rb).sum(axis=1), norm, out=np.zeros(len(a)), where=norm > 0)


def ssim(a, b, *, window=None, data_range=None) -> np.ndarray:
    """Structural similarity of each pair of maps (Wang et al. 2004), in [-1, 1].

    Local means, variances and covariance over every ``window``-sized
    neighbourhood that lies fully inside the map (a uniform window along
    each axis, sample covariance), combined as
    ``(2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))``
    with ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` and averaged. These are the
    defaults of scikit-image's ``structural_similarity``, which Quantus uses.

    Parameters
    ----------
    a, b : array-like
        ``(n, ...)`` batches of maps of 1 or more axes (images: pass 2D maps,
        e.g. relevance summed over channels).
    window : int, optional
        Odd window side, at most the smallest map axis (default 7, or the
        largest odd number that fits a smaller map).
    data_range : float, optional
        ``L``; default per pair: the largest minus the smallest value of both maps.

    References
    ----------
    Wang, Bovik, Sheikh, Simoncelli (2004). Image quality assessment: from
    error visibility to structural similarity. IEEE TIP 13(4).
    """
    a, b = _pair(a, b)
    axes = tuple(range(1, a.ndim))
    if window is None:
        smallest = min(a.shape[1:])
        window = min(7, smallest if smallest % 2 else smallest - 1)
    if window % 2 == 0 or window < 3 or window > min(a.shape[1:]):
        raise MetricError(
            f"window must be odd, >= 3 and at most the smallest map axis {min(a.shape[1:])}. "
            f"Received: window={window}"
        )
    if data_range is None:
        both = np.concatenate([flat(a), flat(b)], axis=1)
        span = both.max(axis=1) - both.min(axis=1)
    else:
        span = np.full(len(a), float(data_range))
    span = span.reshape((-1,) + (1,) * len(axes))
    c1, c2 = (0.01 * span) ** 2, (0.03 * span) ** 2
    count = window ** len(axes)
    cov = count / (count - 1)

    def local_mean(v):
        return sliding_window_view(v, (window,) * len(axes), axis=axes).mean(axis=tuple(range(-len(axes), 0)))

    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = cov * (local_mean(a * a) - mu_a**2)
    var_b = cov * (local_mean(b * b) - mu_b**2)
    cov_ab = cov * (local_mean(a * b) - mu_a * mu_b)
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)
    denominator = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    ratio = np.divide(numerator, denominator, out=np.ones_like(numerator), where=denominator > 0)
    return flat(ratio).mean(axis=1)


def similarity_function(name: str):
    """The similarity named ``name`` (one of :data:`SIMILARITIES`)."""
    if name not in SIMILARITIES:
        raise MetricError(f"similarity must be one of {list(SIMILARITIES)}. Received: similarity={name!r}")
    return {"spearman": spearman, "ssim": ssim}[name]
