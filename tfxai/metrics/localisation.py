"""Localisation: does the relevance fall on the ground-truth evidence?

These metrics need a ground-truth mask per sample (1 on the evidence, 0
elsewhere) and no model. The relevance is reduced to one value per position
(summed over channels for images, see :mod:`tfxai.metrics.base`); masks are
``(n, height, width)`` (``(n, features)`` for tabular data) or have the
shape of ``x`` (a position is evidence when any of its channels is). A sample
whose mask is empty scores NaN.
"""

from __future__ import annotations

import numpy as np

from tfxai.metrics.base import MetricError, as_relevance, check_choice, flat, relevance_map

KEEP = ("positive", "absolute", "signed")
"""What part of the relevance counts as mass: its positive part, its magnitude, or its signed value."""


def check_masks(masks, relevance: np.ndarray) -> np.ndarray:
    """Boolean ``(n, *positions)`` masks for a batch of relevance of shape ``(n, *positions[, channels])``.

    Raises
    ------
    MetricError
        When the masks have another shape or values other than 0 and 1.
    """
    positions = relevance.shape[:-1] if relevance.ndim >= 3 else relevance.shape
    array = np.asarray(masks)
    if array.shape == relevance.shape and relevance.ndim >= 3:
        array = array.any(axis=-1) if array.dtype == bool else (array != 0).any(axis=-1)
    elif array.shape == positions + (1,):
        array = array[..., 0]
    if array.shape != positions:
        raise MetricError(
            f"masks must have shape {positions} (one value per position) or the shape of x, "
            f"{relevance.shape}. Received: shape {array.shape}"
        )
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise MetricError("masks must hold only 0/1 or booleans (1 marks the ground-truth evidence).")
    return array.astype(bool)


def _inputs(relevance, masks):
    relevance = as_relevance(relevance, np.asarray(relevance), "relevance")
    if relevance.ndim < 2:
        raise MetricError(f"relevance must be a batch (n, ...). Received: shape {relevance.shape}")
    masks = check_masks(masks, relevance)
    return flat(relevance_map(relevance)), flat(masks)


def relevance_mass_accuracy(relevance, masks, *, keep: str = "positive") -> np.ndarray:
    """Share of the relevance mass inside the mask (Arras et al. 2022); higher is better, at most 1.

    ``sum(R inside mask) / sum(R)`` per sample, over the positive part of the
    relevance by default (as CLEVR-XAI), its magnitude (``keep="absolute"``)
    or the signed values (``keep="signed"``, as Quantus). NaN for an empty
    mask or a zero total.

    Parameters
    ----------
    relevance : array-like
        ``(n, ...)`` relevance of a batch.
    masks : array-like
        Ground-truth masks (see the module documentation).
    keep : {"positive", "absolute", "signed"}

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64.

    References
    ----------
    Arras, Osman, Samek (2022). CLEVR-XAI: a benchmark dataset for the
    ground truth evaluation of neural network explanations. Information
    Fusion 81.
    """
    check_choice("keep", keep, KEEP)
    values, masks = _inputs(relevance, masks)
    values = {"positive": np.maximum(values, 0.0), "absolute": np.abs(values), "signed": values}[keep]
    total = values.sum(axis=1)
    inside = (values * masks).sum(axis=1)
    valid = masks.any(axis=1) & (total != 0)
    return np.where(valid, inside / np.where(valid, total, 1.0), np.nan)


def relevance_rank_accuracy(relevance, masks) -> np.ndarray:
    """Share of the ``K`` most relevant positions inside the mask, ``K`` the mask's size (Arras et al. 2022).

    Higher is better, at most 1. Ties in relevance keep the row-major
    position order. NaN for an empty mask.

    References
    ----------
    Arras, Osman, Samek (2022). CLEVR-XAI. Information Fusion 81.
    """
    values, masks = _inputs(relevance, masks)
    sizes = masks.sum(axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    top = np.arange(values.shape[1])[None, :] < sizes[:, None]
    hits = (np.take_along_axis(masks, order, axis=1) & top).sum(axis=1)
    return np.where(sizes > 0, hits / np.maximum(sizes, 1), np.nan)


def pointing_game(relevance, masks, *, tolerance: float = 0.0) -> np.ndarray:
    """Whether the most relevant position lies on the evidence (Zhang et al. 2018); 1.0 hit, 0.0 miss.

    The most relevant position is the first maximum in row-major order. With
    ``tolerance > 0`` a position counts as a hit when it is at most
    ``tolerance`` positions (Euclidean distance) from the mask; Zhang et al.
    use 15 pixels. NaN for an empty mask.

    References
    ----------
    Zhang, Bargal, Lin, Brandt, Shen, Sclaroff (2018). Top-down neural
    attention by excitation backprop. IJCV 126.
    """
    if not float(tolerance) >= 0:
        raise MetricError(f"tolerance must be >= 0 positions. Received: tolerance={tolerance!r}")
    relevance = np.asarray(relevance, np.float64)
    values, flat_masks = _inputs(relevance, masks)
    shape = relevance.shape[1:-1] if relevance.ndim >= 3 else relevance.shape[1:]
    peak = np.argmax(values, axis=1)
    coordinates = np.stack(np.unravel_index(np.arange(values.shape[1]), shape), axis=1).astype(np.float64)
    distance = np.linalg.norm(coordinates[None, :, :] - coordinates[peak][:, None, :], axis=2)
    hit = (flat_masks & (distance <= float(tolerance))).any(axis=1)
    return np.where(flat_masks.any(axis=1), hit.astype(np.float64), np.nan)
