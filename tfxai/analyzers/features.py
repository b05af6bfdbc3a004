"""Feature groups for perturbation methods: which input elements are switched together.

KernelSHAP, LIME and Sobol attribution do not perturb single input elements
but *features*: a cell of a regular grid of an image, a column of a table, a
token (time step) of a sequence, or any grouping the user gives. A
:class:`FeatureGroups` maps every element of one sample of every model input
to a feature id in ``[0, count)``; a coalition (or mask) ``z`` of ``count``
values then becomes per-element mask values by a gather, and a perturbed copy
of a sample is ``z * x + (1 - z) * baseline`` (elements with ``z = 1`` keep
their value).

The grouping is the same for every sample, so it is fixed when the analyzer
is created and perturbation methods can run inside the analyzer's
``tf.function``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfxai import reverse
from tfxai.analyzers import batched
from tfxai.analyzers.base import explained_value
from tfxai.errors import ParameterError

KINDS = ("auto", "grid", "columns", "tokens")


@dataclasses.dataclass(frozen=True)
class FeatureGroups:
    """Feature id of every element of one sample of each model input.

    Attributes
    ----------
    index : list of numpy.ndarray
        Per input, int32 ids of the sample's shape, in ``[0, count)``; the ids
        of input ``k`` follow those of inputs ``0..k-1``.
    sizes : numpy.ndarray
        Number of elements in each feature, shape ``(count,)``.
    """

    index: list
    sizes: np.ndarray

    @property
    def count(self) -> int:
        """Number of features."""
        return len(self.sizes)

    def masks(self, z):
        """Per input, mask values ``(n, *sample)`` of coalitions ``z`` of shape ``(n, count)``."""
        return [tf.gather(z, tf.constant(index), axis=1) for index in self.index]

    def spread(self, values, dtype):
        """Per input, ``values`` ``(B, count)`` divided evenly over each feature's elements."""
        per_element = values / tf.constant(self.sizes, values.dtype)[None]
        return [tf.cast(tf.gather(per_element, tf.constant(index), axis=1), dtype) for index in self.index]

    def paint(self, values, dtype):
        """Per input, each element gets the value ``(B, count)`` of its feature."""
        return [tf.cast(tf.gather(values, tf.constant(index), axis=1), dtype) for index in self.index]


def feature_groups(specs, features="auto", grid_size=8) -> FeatureGroups:
    """The feature grouping of the model inputs ``specs``.

    Parameters
    ----------
    specs : list of tfxai.inputs.InputSpec
        The model inputs (fixed sample shapes).
    features : str, array-like, or list of those
        One entry for all inputs or one per input:

        * ``"grid"``: a regular grid of ``grid_size`` cells along each spatial
          axis (every axis but the batch and the last, channels-last); a cell
          spans all channels. Cells differ in size by at most one element per
          axis. This is tfxai's superpixel: deterministic and the same for
          every sample.
        * ``"columns"``: every element of a ``(batch, features)`` input.
        * ``"tokens"``: every position of the first non-batch axis (a token or
          time step, with all its features).
        * ``"auto"`` (default): ``"columns"`` for 2D inputs, ``"tokens"`` for
          3D ``(batch, time, features)`` inputs, ``"grid"`` for images and
          volumes.
        * an integer array of the sample's shape (or broadcastable to it):
          explicit feature ids ``0..m-1``, every id used.
    grid_size : int or tuple of int
        Cells per spatial axis for ``"grid"`` (default 8, as Xplique's Sobol).

    Returns
    -------
    FeatureGroups
    """
    entries = features if isinstance(features, (list, tuple)) else [features] * len(specs)
    if len(entries) != len(specs):
        raise ParameterError(
            f"The model has {len(specs)} input(s); give one feature grouping or one per input. "
            f"Received {len(entries)}."
        )
    indices, offset = [], 0
    for spec, entry in zip(specs, entries):
        sample = tuple(spec.shape[1:])
        if any(size is None for size in sample):
            raise ParameterError(
                f"Feature groups need a fixed sample shape; input {spec.name!r} has shape {spec.shape}."
            )
        ids = _ids(spec.name, sample, entry, grid_size)
        indices.append((ids + offset).astype(np.int32))
        offset += int(ids.max()) + 1
    sizes = np.bincount(np.concatenate([i.ravel() for i in indices]), minlength=offset).astype(np.float64)
    return FeatureGroups(indices, sizes)


def _ids(name, sample, entry, grid_size) -> np.ndarray:
    if isinstance(entry, str):
        if entry not in KINDS:
            raise ParameterError(f"features must be one of {KINDS} or an integer array. Received: {entry!r}")
        kind = entry if entry != "auto" else {1: "columns", 2: "tokens"}.get(len(sample), "grid")
        return _kind_ids(name, sample, kind, grid_size)
    ids = np.asarray(entry)
    if ids.dtype.kind not in "iu":
        raise ParameterError(f"Feature ids of input {name!r} must be integers. Received dtype {ids.dtype}.")
    try:
        ids = np.broadcast_to(ids, sample)
    except ValueError:
        raise ParameterError(
            f"Feature ids of input {name!r} must broadcast to one sample of shape {sample}. "
            f"Received shape {ids.shape}."
        ) from None
    used = np.unique(ids)
    if used[0] != 0 or len(used) != used[-1] + 1:
        raise ParameterError(f"Feature ids of input {name!r} must be 0..m-1, each used. Received ids {used}.")
    return ids.astype(np.int64)


def _kind_ids(name, sample, kind, grid_size) -> np.ndarray:
    if kind == "columns":
        return np.arange(int(np.prod(sample))).reshape(sample)
    if kind == "tokens":
        return np.broadcast_to(np.arange(sample[0]).reshape((-1,) + (1,) * (len(sample) - 1)), sample)
    spatial = sample[:-1]
    if not spatial:
        raise ParameterError(
            f"features='grid' needs spatial axes (batch, ..., channels); input {name!r} has one sample "
            f"axis {sample}. Use 'columns'."
        )
    cells = _per_axis_cells(grid_size, spatial)
    ids = np.zeros(spatial, np.int64)
    for axis, (size, n) in enumerate(zip(spatial, cells)):
        shape = [1] * len(spatial)
        shape[axis] = -1
        ids = ids * n + (np.arange(size) * n // size).reshape(shape)
    return np.broadcast_to(ids[..., None], sample)


def _per_axis_cells(grid_size, spatial) -> tuple:
    values = tuple(grid_size) if isinstance(grid_size, (tuple, list)) else (grid_size,) * len(spatial)
    if len(values) != len(spatial) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ParameterError(
            f"grid_size must be a positive int or one per spatial axis {spatial}. Received: {grid_size!r}"
        )
    return tuple(min(int(v), size) for v, size in zip(values, spatial))


def baseline_arrays(specs, baseline) -> list:
    """One float64 array per input from ``baseline`` (a number, an array, or one per input)."""
    values = baseline if isinstance(baseline, (list, tuple)) else [baseline] * len(specs)
    if len(values) != len(specs):
        raise ParameterError(
            f"The model has {len(specs)} input(s); give one baseline or one per input. Received {len(values)}."
        )
    arrays = []
    for spec, value in zip(specs, values):
        array = np.asarray(value, np.float64)
        if not np.all(np.isfinite(array)):
            raise ParameterError(f"The baseline of input {spec.name!r} contains NaN or Inf.")
        try:
            np.broadcast_shapes(array.shape, tuple(spec.shape[1:]))
        except ValueError:
            raise ParameterError(
                f"The baseline of input {spec.name!r} must broadcast to one sample of shape "
                f"{tuple(spec.shape[1:])}. Received shape {array.shape}."
            ) from None
        arrays.append(array)
    return arrays


def perturb(x, keep, baseline):
    """``keep * x + (1 - keep) * baseline`` for a mask ``keep`` of shape ``(c, *sample)``.

    Returns ``(c * B, *sample)`` rows, variant-major. Where ``keep`` is 0 or 1
    the row holds exactly ``baseline`` or ``x``; integer inputs (token ids) take
    the baseline where ``keep < 0.5``.
    """
    base = tf.cast(tf.constant(baseline), x.dtype)
    if not batched.is_float(x):
        rows = tf.where(keep[:, None] >= 0.5, x[None], base)
    else:
        k = tf.cast(keep, x.dtype)[:, None]
        rows = k * x[None] + (1 - k) * base
    return batched.stack_variants(rows)


def scores(analyzer, rows, mask, chunk: int):
    """Explained value of every stacked row, ``(chunk, B)``, for the neurons ``mask`` of the clean input."""
    y = reverse.forward(analyzer.view, rows)[0][analyzer.explained_key()]
    return batched.split_variants(explained_value(y, batched.repeat_variants(mask, chunk)), chunk)


def coalition_scores(analyzer, xs, mask, groups, baselines, coalitions, chunk_size: int):
    """``f`` of every coalition, ``(n, B)``: row ``i`` keeps the features where ``coalitions[i] == 1``.

    The ``n`` coalitions are evaluated ``chunk_size`` at a time inside a
    ``tf.while_loop`` (:func:`tfxai.analyzers.batched.fold`).
    """
    n = int(coalitions.shape[0])
    chunk = min(int(chunk_size), n)
    table = tf.constant(coalitions, tf.float32)

    def step(indices, valid):
        keeps = groups.masks(tf.gather(table, indices))
        rows = [perturb(x, keep, base) for x, keep, base in zip(xs, keeps, baselines)]
        return [batched.scatter_rows(scores(analyzer, rows, mask, chunk), indices, valid, n)]

    return batched.fold(step, n, chunk, batched.add)[0]
