"""Occlusion (Zeiler and Fergus 2014): explain by hiding parts of the input.

A window slides over each input; every position is replaced by a baseline
value and the drop of the explained output, ``f(x) - f(x occluded)``, is
credited to the occluded features. A feature covered by several windows gets
the mean of their drops (Captum's convention; with ``stride == window`` every
feature lies in exactly one window). Only forward passes are used, so any
model the graph walk can replay works, differentiable or not.

zennit's ``Occlusion`` differs: by default it keeps only the window and
occludes the rest, and it reports the occluded output rather than the drop.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfxai import reverse, validation
from tfxai.analyzers import batched
from tfxai.analyzers.base import Analyzer, explained_value
from tfxai.errors import ModelError, ParameterError, ParameterTypeError


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """Where the windows of one input lie.

    Attributes
    ----------
    window, stride : tuple of int
        Per non-batch axis.
    axis_masks : list of numpy.ndarray
        Per axis, ``(positions, size)``: 1 where each window position covers.
    coverage : numpy.ndarray
        Per feature of one sample, how many windows cover it (all >= 1).
    """

    window: tuple
    stride: tuple
    axis_masks: list
    coverage: np.ndarray

    @property
    def grid(self) -> tuple:
        """Number of window positions along each axis."""
        return tuple(m.shape[0] for m in self.axis_masks)

    @property
    def count(self) -> int:
        """Total number of window positions."""
        return int(np.prod(self.grid))


def plan_windows(spec, window, stride) -> WindowPlan:
    """Window positions for one input (``spec`` an :class:`~tfxai.inputs.InputSpec`).

    ``window`` and ``stride`` are ints, or tuples with one entry per
    non-batch axis, or one per axis but the last (channels-last inputs: the
    window then spans all channels). An int applies to every axis but the
    last of inputs with three or more axes, and to the feature axis of
    ``(batch, features)`` inputs. Windows are clipped to the input; when the
    strides do not reach the end, a last window is aligned with it.
    """
    sample = tuple(spec.shape[1:])
    if any(size is None for size in sample):
        raise ModelError(f"Occlusion needs a fixed sample shape; input {spec.name!r} has shape {spec.shape}.")
    window = _per_axis("window", window, sample)
    stride = window if stride is None else _per_axis("stride", stride, sample)
    masks = [_axis_mask(size, w, s) for size, w, s in zip(sample, window, stride)]
    coverage = np.ones((), np.float64)
    for axis, mask in enumerate(masks):
        shape = [1] * len(sample)
        shape[axis] = -1
        coverage = coverage * mask.sum(axis=0).reshape(shape)
    return WindowPlan(window, stride, masks, coverage)


def _per_axis(name, value, sample):
    rank = len(sample)
    given = value
    if _is_int(value):
        value = (int(value),) * (rank if rank == 1 else rank - 1)
    if not isinstance(value, (tuple, list)) or not all(_is_int(v) for v in value):
        raise ParameterTypeError(
            f"{name} must be a positive int or a tuple of positive ints. Received: {name}={given!r}"
        )
    value = tuple(value)
    if len(value) == rank - 1 and rank > 1:
        value = value + (sample[-1],)
    if len(value) != rank or not all(_is_int(v) and v >= 1 for v in value):
        raise ParameterError(
            f"{name} must be a positive int or a tuple of positive ints for the axes of one sample "
            f"{sample} (or all but the last). Received: {name}={given!r}"
        )
    return tuple(min(int(v), size) for v, size in zip(value, sample))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _axis_mask(size, window, stride):
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)
    mask = np.zeros((len(starts), size), np.float64)
    for row, start in enumerate(starts):
        mask[row, start : start + window] = 1.0
    return mask


class Occlusion(Analyzer):
    """Occlusion sensitivity (Zeiler and Fergus 2014).

    All window positions of all samples are evaluated inside the one
    ``tf.function``, ``chunk_size`` positions per batched forward pass. The
    inputs are occluded one at a time (multi-input models); integer inputs
    (token ids) are occluded with the baseline cast to their type.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    window : int or tuple of int
        Window size (default 8); see :func:`plan_windows`.
    stride : int or tuple of int, optional
        Step between windows (default: the window, no overlap).
    baseline : float, array-like, or list of those
        Value replacing occluded features (default 0): a number or an array
        broadcastable to one sample (e.g. per-channel means); one per input
        for multi-input models, or one for all.
    chunk_size : int
        Window positions per forward pass (default 16).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    References
    ----------
    Zeiler, Fergus (2014). Visualizing and understanding convolutional
    networks. ECCV.
    """

    def __init__(self, model, *, window=8, stride=None, baseline=0.0, chunk_size: int = 16, **kwargs):
        super().__init__(model, **kwargs)
        self.plans = [plan_windows(spec, window, stride) for spec in self.input_specs]
        self.chunk_size = validation.count("chunk_size", chunk_size)
        values = baseline if isinstance(baseline, (list, tuple)) else [baseline] * len(self.input_specs)
        if len(values) != len(self.input_specs):
            raise ParameterError(
                f"The model has {len(self.input_specs)} input(s); give one baseline or one per input. "
                f"Received {len(values)}."
            )
        self.baselines = []
        for spec, value in zip(self.input_specs, values):
            array = validation.finite_array(f"baseline (of input {spec.name!r})", value)
            try:
                np.broadcast_shapes(array.shape, tuple(spec.shape[1:]))
            except ValueError:
                raise ParameterError(
                    f"The baseline of input {spec.name!r} must broadcast to one sample of shape "
                    f"{tuple(spec.shape[1:])}. Received shape {array.shape}."
                ) from None
            self.baselines.append(array)

    def relevance(self, xs, forward):
        clean = self.explained(xs, forward)
        return [self._occlude(xs, index, forward.output.dtype, forward.mask, clean) for index in range(len(xs))]

    def _occlude(self, xs, index, dtype, mask, clean):
        """Mean output drop of the windows covering each feature of input ``index``."""
        plan, x = self.plans[index], xs[index]
        chunk = min(self.chunk_size, plan.count)
        axis_masks = [tf.constant(m, dtype) for m in plan.axis_masks]
        baseline = tf.cast(tf.constant(self.baselines[index]), x.dtype)
        repeated_mask = batched.repeat_variants(mask, chunk)

        def step(indices, valid):
            windows = _window_masks(axis_masks, plan.grid, indices)
            occluded = tf.where(windows[:, None] > 0, baseline, x[None])
            rows = [
                batched.stack_variants(occluded) if j == index else batched.repeat_variants(other, chunk)
                for j, other in enumerate(xs)
            ]
            y = reverse.forward(self.view, rows)[0][self.explained_key()]
            drops = (clean[None] - batched.split_variants(explained_value(y, repeated_mask), chunk)) * tf.cast(
                valid, dtype
            )[:, None]
            return [tf.tensordot(drops, windows, axes=[[0], [0]])]

        total = batched.fold(step, plan.count, chunk, batched.add)[0]
        return total / tf.constant(plan.coverage, dtype)


def _window_masks(axis_masks, grid, indices):
    """0/1 masks ``(len(indices), *sample)`` of the windows with flat position ``indices``."""
    result = None
    rank = len(axis_masks)
    for axis, mask in enumerate(axis_masks):
        inner = int(np.prod(grid[axis + 1 :]))
        position = (indices // inner) % grid[axis]
        shape = [-1] + [1] * rank
        shape[axis + 1] = mask.shape[1]
        part = tf.reshape(tf.gather(mask, position), shape)
        result = part if result is None else result * part
    return result
