"""Regions, replacement values and the batched perturbation loop behind the faithfulness metrics.

An input is cut into equal, non-overlapping regions: ``patch_size`` x
``patch_size`` patches spanning every channel for channels-last images,
groups of ``patch_size`` consecutive features for ``(n, features)`` data
(generally: every axis but the channel axis is cut into pieces of
``patch_size``). A region's relevance is the sum of the relevance in it.

Removing a region replaces its values by a *replacement*: a constant, the
mean, uniform noise, a blurred copy of the input, or any baseline array. The
perturbed copies of a whole batch for several steps are built in TensorFlow
and scored by one model call per chunk of steps (never one call per sample).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfxai.metrics.base import MetricError, check_positive_int, flat, relevance_map

REPLACEMENTS = ("mean", "min", "uniform", "blur")
"""Named replacements; a float (constant), an array or a callable ``f(x) -> baseline`` also work."""


@dataclasses.dataclass(frozen=True)
class Regions:
    """Equal patches that partition each sample's positions.

    Attributes
    ----------
    positions : tuple of int
        Shape of one sample without its channel axis (``(features,)`` for
        tabular data).
    patch : int
        Patch length along every position axis.
    """

    positions: tuple
    patch: int

    @property
    def grid(self) -> tuple:
        """Number of patches along each position axis."""
        return tuple(size // self.patch for size in self.positions)

    @property
    def count(self) -> int:
        """Number of regions of one sample."""
        return int(np.prod(self.grid))

    def sums(self, values: np.ndarray) -> np.ndarray:
        """``(n, count)`` sums of a ``(n, *positions)`` map over each region (row-major region order)."""
        shape = [len(values)]
        for cells in self.grid:
            shape += [cells, self.patch]
        summed = values.reshape(shape).sum(axis=tuple(range(2, len(shape), 2)))
        return summed.reshape(len(values), -1)

    def expand(self, per_region: np.ndarray) -> np.ndarray:
        """``(n, *positions)`` map: each position gets its region's value in ``per_region (n, count)``."""
        values = per_region.reshape((len(per_region),) + self.grid)
        for axis in range(1, len(self.grid) + 1):
            values = np.repeat(values, self.patch, axis=axis)
        return values


def regions_for(x: np.ndarray, patch_size=None) -> Regions:
    """The :class:`Regions` of ``x`` for ``patch_size`` (default: the smallest giving at most 64 regions).

    Raises
    ------
    MetricError
        When ``patch_size`` is not a positive integer, larger than the input or
        does not divide every position axis.
    """
    positions = tuple(x.shape[1:-1]) if x.ndim >= 3 else (x.shape[1],)
    if patch_size is None:
        return Regions(positions, _default_patch(positions))
    patch = check_positive_int("patch_size", patch_size)
    if patch > min(positions):
        raise MetricError(
            f"patch_size must be at most the input size {positions}. Received: patch_size={patch}"
        )
    if any(size % patch for size in positions):
        raise MetricError(
            f"patch_size must divide every position axis of the input {positions} (channels excluded). "
            f"Received: patch_size={patch}"
        )
    return Regions(positions, patch)


def _default_patch(positions) -> int:
    smallest = min(positions)
    for patch in range(1, smallest + 1):
        if all(size % patch == 0 for size in positions) and np.prod([s // patch for s in positions]) <= 64:
            return patch
    return next(p for p in range(smallest, 0, -1) if all(size % p == 0 for size in positions))


def check_steps(steps, count: int) -> int:
    """``steps`` (default ``count``) checked to lie in ``[1, count]``."""
    if steps is None:
        return count
    steps = check_positive_int("steps", steps)
    if steps > count:
        raise MetricError(f"steps must be at most the number of regions ({count}). Received: steps={steps}")
    return steps


def removal_counts(count: int, steps: int) -> np.ndarray:
    """Regions removed after each of ``steps`` equal steps, starting at 0: ``round(k * count / steps)``."""
    return np.round(np.arange(steps + 1) * count / steps).astype(np.int32)


def region_ranks(region_relevance: np.ndarray, order: str) -> np.ndarray:
    """``(n, count)`` rank of each region: 0 is removed first (``"morf"``: most relevant; ``"lerf"``: least).

    Ties keep the row-major region order.
    """
    keys = -region_relevance if order == "morf" else region_relevance
    order_of = np.argsort(keys, axis=1, kind="stable")
    ranks = np.empty_like(order_of)
    np.put_along_axis(ranks, order_of, np.arange(order_of.shape[1])[None, :], axis=1)
    return ranks


def ranks_from_relevance(relevance: np.ndarray, regions: Regions, order: str) -> np.ndarray:
    """Per position, the removal rank of its region (``(n, *positions)`` int32)."""
    ranks = region_ranks(regions.sums(relevance_map(relevance)), order)
    return regions.expand(ranks).astype(np.int32)


def replacement_values(x: np.ndarray, replacement, regions: Regions, seed: int = 0) -> np.ndarray:
    """The values that replace removed regions, one full array of ``x``'s shape.

    Parameters
    ----------
    x : numpy.ndarray
        The batch.
    replacement : float, str, array-like or callable
        A constant; ``"mean"`` (per sample and channel for images, per feature
        over the batch for tabular data); ``"min"`` (the sample's smallest
        value, Quantus' ``"black"``); ``"uniform"`` (noise between the batch's
        minimum and maximum of each channel / feature, seeded); ``"blur"``
        (images only: a Gaussian blur with a standard deviation of one patch,
        at least one pixel); an array broadcastable to ``x``; or
        ``f(x) -> array``.
    regions : Regions
        Used by ``"blur"``.
    seed : int
        Seed of ``"uniform"``.
    """
    if callable(replacement):
        return _broadcast(replacement(x), x)
    if isinstance(replacement, str):
        if replacement not in REPLACEMENTS:
            raise MetricError(
                f"replacement must be a number, an array, a callable or one of {list(REPLACEMENTS)}. "
                f"Received: replacement={replacement!r}"
            )
        return _named_replacement(x, replacement, regions, seed)
    return _broadcast(replacement, x)


def _broadcast(values, x):
    array = np.asarray(values, np.float32)
    try:
        return np.broadcast_to(array, x.shape).copy()
    except ValueError:
        raise MetricError(
            f"A replacement array must broadcast to x {x.shape}. Received: shape {array.shape}"
        ) from None


def _named_replacement(x, name, regions, seed):
    feature_axes = tuple(range(1, x.ndim - 1)) if x.ndim >= 3 else (0,)
    if name == "mean":
        return np.broadcast_to(x.mean(axis=feature_axes, keepdims=True), x.shape).copy()
    if name == "min":
        return np.broadcast_to(flat(x).min(axis=1).reshape((-1,) + (1,) * (x.ndim - 1)), x.shape).copy()
    if name == "uniform":
        axes = (0,) + tuple(range(1, x.ndim - 1)) if x.ndim >= 3 else (0,)
        low, high = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
        return np.random.default_rng(seed).uniform(low, high, x.shape).astype(np.float32)
    if x.ndim != 4:
        raise MetricError(
            f"replacement='blur' needs images (n, height, width, channels). Received: shape {x.shape}"
        )
    return gaussian_blur(x, sigma=float(max(1, regions.patch)))


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of channels-last images (reflected borders, kernel of +-3 sigma)."""
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    channels = images.shape[-1]
    x = tf.convert_to_tensor(images)
    for axis in (1, 2):
        pad = [[0, 0]] * 4
        pad[axis] = [radius, radius]
        x = tf.pad(x, pad, mode="SYMMETRIC" if radius < images.shape[axis] else "CONSTANT")
        shape = (len(taps), 1) if axis == 1 else (1, len(taps))
        kernel = tf.tile(tf.reshape(taps, shape + (1, 1)), (1, 1, channels, 1))
        x = tf.nn.depthwise_conv2d(x, kernel, strides=(1, 1, 1, 1), padding="VALID")
    return x.numpy()


def perturbed_outputs(forward, x, baseline, ranks, counts, target) -> np.ndarray:
    """Explained output after replacing the regions of rank ``< counts[k]`` by ``baseline``.

    Parameters
    ----------
    forward : tfxai.metrics.base.Forward
        The model.
    x, baseline : numpy.ndarray
        The batch and its replacement values (same shape).
    ranks : numpy.ndarray
        ``(n, *positions)`` int32 removal rank of each position.
    counts : numpy.ndarray
        ``(steps,)`` number of removed regions at each step.
    target : numpy.ndarray
        ``(n,)`` explained neuron.

    Returns
    -------
    numpy.ndarray
        ``(n, steps)`` float64.
    """
    n = len(x)
    per_call = max(1, forward.batch_size // n)
    x, baseline, ranks = tf.constant(x), tf.constant(baseline), tf.constant(ranks)
    columns = []
    for start in range(0, len(counts), per_call):
        chunk = np.asarray(counts[start : start + per_call], np.int32)
        y = forward.outputs(_perturb(x, baseline, ranks, tf.constant(chunk))).numpy()
        picked = y.reshape(len(chunk), n, -1)[:, np.arange(n), target]
        columns.append(picked.astype(np.float64).T)
    return np.concatenate(columns, axis=1)


@tf.function(autograph=False)
def _perturb(x, baseline, ranks, counts):
    """``(k * n, ...)`` copies of ``x``: copy ``k`` has the positions of rank ``< counts[k]`` replaced."""
    removed = ranks[None] < tf.reshape(counts, (-1,) + (1,) * len(ranks.shape))
    if len(x.shape) >= 3:
        removed = removed[..., None]
    copies = tf.where(removed, baseline[None], x[None])
    return tf.reshape(copies, tf.concat([[-1], tf.shape(x)[1:]], axis=0))
