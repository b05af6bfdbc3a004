"""The scale relevance is drawn on: channel reductions, clip values, colours."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from tfxai.errors import ParameterError

REDUCTIONS = {
    "sum": lambda r: r.sum(axis=-1),
    "abs_sum": lambda r: np.abs(r).sum(axis=-1),
    "max_norm": lambda r: np.abs(r).max(axis=-1),
}
"""Channel reductions: signed sum, sum of magnitudes, largest magnitude (L-infinity norm)."""


def reduce_channels(relevance, reduce: str = "sum") -> np.ndarray:
    """Combine the last (channel) axis of ``relevance``.

    Parameters
    ----------
    relevance : array-like
        Any shape; the last axis is reduced.
    reduce : {"sum", "abs_sum", "max_norm"}
        The signed sum (keeps LRP's conservation), the sum of absolute values,
        or the largest absolute value.

    Returns
    -------
    numpy.ndarray
        float64, ``relevance.shape[:-1]``.
    """
    check_reduce(reduce)
    return REDUCTIONS[reduce](np.asarray(relevance, dtype=np.float64))


def check_reduce(reduce) -> None:
    if reduce not in REDUCTIONS:
        raise ParameterError(f"reduce must be one of {sorted(REDUCTIONS)}. Received: reduce={reduce!r}")


def relevance_map(relevance, reduce: str, caller: str) -> np.ndarray:
    """One sample's 2-D map: ``(H, W)`` as is, ``(H, W, C)`` reduced over channels."""
    values = np.asarray(relevance, dtype=np.float64)
    if values.ndim not in (2, 3):
        raise ParameterError(
            f"{caller} draws one sample: relevance of shape (H, W) or (H, W, C). Received shape {values.shape}; "
            "pass relevance[i], or plot_grid for a batch."
        )
    check_reduce(reduce)
    return values if values.ndim == 2 else REDUCTIONS[reduce](values)


def clip_value(values, percentile: float) -> float:
    """The ``percentile``-th percentile of ``|values|`` (1 where it is 0)."""
    if not 0 < percentile <= 100:
        raise ParameterError(f"percentile must be in (0, 100]. Received: percentile={percentile}")
    limit = float(np.percentile(np.abs(values), percentile))
    return limit if limit > 0 else 1.0


def rgb(scaled, cmap: str) -> np.ndarray:
    """RGB of values in [-1, 1] (clipped) on a diverging colormap."""
    return colormaps[cmap]((np.clip(scaled, -1.0, 1.0) + 1.0) / 2.0)[..., :3].astype(np.float32)
