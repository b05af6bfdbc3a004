"""RISE (Petsiuk, Das, Saenko 2018): saliency from randomly masked inputs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfxai import validation
from tfxai.analyzers import batched
from tfxai.analyzers.base import Analyzer
from tfxai.analyzers.cam import resize_linear
from tfxai.analyzers.features import baseline_arrays, scores
from tfxai.errors import ModelError, ParameterError


class RISE(Analyzer):
    """RISE (Petsiuk et al. 2018): ``S = sum_i f(x * M_i + (1 - M_i) b) M_i / (n p)``.

    Each mask ``M_i`` is a random binary grid of ``grid_size`` cells per
    spatial axis (each cell kept with probability ``p = keep_probability``),
    upsampled linearly (half-pixel centres, as ``tf.image.resize(...,
    "bilinear")``) to ``(grid_size + 1) * cell`` samples per axis, with
    ``cell = ceil(size / grid_size)``, and cropped to the input at a random
    shift in ``[0, cell)``. The map is the same for every channel. The grids
    and shifts are drawn once, with NumPy's generator seeded by ``seed``; all
    masks are evaluated inside the analyzer's ``tf.function``.

    Parameters
    ----------
    model : keras.Model
        A model with one float input with spatial axes, channels last
        (images, volumes, ``(batch, time, features)`` series).
    n_masks : int
        Number of masks (default 2000; the paper uses 4000-8000).
    grid_size : int
        Cells per spatial axis (default 7, as the paper).
    keep_probability : float
        Probability that a cell is kept (default 0.5).
    baseline : float or array-like
        Value of the masked-out part (default 0).
    seed : int
        Seed of the masks (default 0).
    chunk_size : int
        Masks per forward pass (default 32).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    Attributes
    ----------
    grids : numpy.ndarray
        ``(n_masks, grid_size, ...)`` 0/1 cells.
    shifts : numpy.ndarray
        ``(n_masks, spatial axes)`` crop offsets.

    References
    ----------
    Petsiuk, Das, Saenko (2018). RISE: randomized input sampling for
    explanation of black-box models. BMVC.
    """

    def __init__(
        self,
        model,
        *,
        n_masks: int = 2000,
        grid_size: int = 7,
        keep_probability: float = 0.5,
        baseline=0.0,
        seed: int = 0,
        chunk_size: int = 32,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        self.spatial = spatial_shape(self.input_specs, "RISE")
        self.n_masks = validation.count("n_masks", n_masks)
        self.grid_size = validation.count("grid_size", grid_size)
        self.chunk_size = validation.count("chunk_size", chunk_size)
        keep_probability = validation.number("keep_probability", keep_probability, minimum=0, exclusive=True)
        if keep_probability > 1:
            raise ParameterError(
                f"keep_probability must be in (0, 1]. Received: keep_probability={keep_probability!r}"
            )
        self.keep_probability = float(keep_probability)
        self.baselines = baseline_arrays(self.input_specs, baseline)
        self.cells = tuple(-(-size // self.grid_size) for size in self.spatial)
        rng = np.random.default_rng(validation.integer("seed", seed))
        grid_shape = (self.n_masks,) + (self.grid_size,) * len(self.spatial)
        self.grids = (rng.uniform(size=grid_shape) < self.keep_probability).astype(np.float32)
        self.shifts = np.stack([rng.integers(0, cell, self.n_masks) for cell in self.cells], axis=1)

    def masks(self, indices):
        """Masks ``(len(indices), *spatial)`` of the masks numbered ``indices``."""
        grids = tf.gather(tf.constant(self.grids), indices)
        shifts = tf.gather(tf.constant(self.shifts, tf.int32), indices)
        for axis, (size, cell) in enumerate(zip(self.spatial, self.cells)):
            grids = resize_linear(grids, axis + 1, (self.grid_size + 1) * cell)
            positions = shifts[:, axis : axis + 1] + tf.range(size)[None]
            grids = tf.gather(grids, positions, axis=axis + 1, batch_dims=1)
        return grids

    def relevance(self, xs, forward):
        x = xs[0]
        chunk = min(self.chunk_size, self.n_masks)
        base = tf.cast(tf.constant(self.baselines[0]), x.dtype)

        def step(indices, valid):
            masks = tf.cast(self.masks(indices), x.dtype)
            keep = masks[:, None, ..., None]
            rows = [batched.stack_variants(keep * x[None] + (1 - keep) * base)]
            weights = tf.cast(scores(self, rows, forward.mask, chunk), x.dtype)  # scores: float16 if mixed
            weights = weights * tf.cast(valid, x.dtype)[:, None]
            return [tf.tensordot(weights, masks, axes=[[0], [0]])]

        total = batched.fold(step, self.n_masks, chunk, batched.add)[0]
        saliency = total / tf.constant(self.n_masks * self.keep_probability, x.dtype)
        return [tf.broadcast_to(saliency[..., None], tf.shape(x))]


def spatial_shape(specs, method: str) -> tuple:
    """The fixed spatial shape of a model's single float input with channels last."""
    if len(specs) != 1 or np.dtype(specs[0].dtype).kind != "f" or len(specs[0].shape) < 3:
        received = [(spec.name, spec.shape, spec.dtype) for spec in specs]
        raise ModelError(
            f"{method} explains models with one float input with spatial axes, (batch, ..., channels). "
            f"Received inputs {received}; use kernel_shap or lime with feature groups instead."
        )
    spatial = tuple(specs[0].shape[1:-1])
    if any(size is None for size in spatial):
        raise ModelError(f"{method} needs a fixed input size. Received shape {specs[0].shape}.")
    return spatial
