"""Sobol attribution (Fel et al. 2021): total-order sensitivity indices of feature groups."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfxai import validation
from tfxai.analyzers.base import Analyzer
from tfxai.analyzers.features import baseline_arrays, coalition_scores, feature_groups


def primes(count: int) -> list:
    """The first ``count`` prime numbers."""
    found, candidate = [], 2
    while len(found) < count:
        if all(candidate % p for p in found if p * p <= candidate):
            found.append(candidate)
        candidate += 1
    return found


def scrambled_halton(n: int, dims: int, rng) -> np.ndarray:
    """``n`` points of the ``dims``-dimensional Halton sequence, digit-scrambled, in ``[0, 1)``.

    Dimension ``k`` is the radical inverse of ``1..n`` in the ``k``-th prime
    base, each digit mapped by a random permutation of the base's digits that
    fixes 0 (Braaten-Weller style scrambling), which removes the correlations
    of plain Halton points in high dimensions.
    """
    points = np.zeros((n, dims))
    index = np.arange(1, n + 1)
    for k, base in enumerate(primes(dims)):
        permutation = np.concatenate([[0], 1 + rng.permutation(base - 1)])
        remaining, scale = index.copy(), 1.0 / base
        while np.any(remaining > 0):
            points[:, k] += permutation[remaining % base] * scale
            remaining //= base
            scale /= base
    return points


def saltelli_masks(design: np.ndarray) -> np.ndarray:
    """Rows ``[A; B; A_B^1; ...; A_B^d]`` from a design ``(N, 2d)``: ``A_B^i`` is ``A`` with column ``i`` of ``B``."""
    d = design.shape[1] // 2
    a, b = design[:, :d], design[:, d:]
    mixed = np.repeat(a[None], d, axis=0)
    mixed[np.arange(d), :, np.arange(d)] = b.T
    return np.concatenate([a, b, mixed.reshape(-1, d)])


def jansen_total_indices(y, n: int, d: int):
    """Total-order indices ``(B, d)`` from the outputs ``(N (d + 2), B)`` of :func:`saltelli_masks` rows.

    ``ST_i = mean_j (f(A)_j - f(A_B^i)_j)^2 / (2 Var)``, with ``Var`` the
    population variance of ``f(A)`` and ``f(B)`` together (Jansen 1999); 0
    where the output does not vary.
    """
    f_a, f_b = y[:n], y[n : 2 * n]
    f_mixed = tf.reshape(y[2 * n :], (d, n, -1))
    _, variance = tf.nn.moments(tf.concat([f_a, f_b], axis=0), axes=[0])
    total = tf.reduce_mean(tf.square(f_a[None] - f_mixed), axis=1) / 2.0
    return tf.transpose(tf.math.divide_no_nan(total, variance[None]))


class SobolAttribution(Analyzer):
    """Sobol attribution (Fel et al. 2021): how much each feature group's masking moves the output.

    Masks give each feature group (default: a ``grid_size`` grid of an image,
    see :func:`~tfxai.analyzers.features.feature_groups`) a value in
    ``[0, 1]``; a masked input is ``m x + (1 - m) b`` (Xplique's inpainting
    perturbation for ``b = 0``). For a quasi-Monte-Carlo design of ``N``
    points in ``[0, 1]^{2d}`` (``d`` features, a scrambled Halton sequence
    seeded by ``seed``), the ``N (d + 2)`` Saltelli rows are evaluated inside
    the analyzer's ``tf.function`` and the total-order index of every feature
    is estimated with Jansen's estimator (:func:`jansen_total_indices`).
    Every element of a feature gets that feature's index (it is a
    sensitivity, not an additive share).

    Xplique draws its design from scipy's scrambled Sobol sequence; tfxai
    uses a scrambled Halton sequence (pure NumPy), so the numbers differ by
    the sampling error.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    features, grid_size, baseline
        As for :class:`~tfxai.analyzers.shap.KernelSHAP` (``grid_size``
        default 8, as Xplique).
    n_designs : int
        ``N``, points of the design (default 32, as Xplique's ``nb_design``).
    seed : int
        Seed of the scrambling (default 0).
    chunk_size : int
        Masks per forward pass (default 64).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    Attributes
    ----------
    groups : FeatureGroups
    masks : numpy.ndarray
        The ``(N (d + 2), d)`` mask values evaluated.

    References
    ----------
    Fel, Cadene, Chalvidal, Cord, Vigouroux, Serre (2021). Look at the
    variance! Efficient black-box explanations with Sobol-based sensitivity
    analysis. NeurIPS.
    Jansen (1999). Analysis of variance designs for model output. Computer
    Physics Communications 117.
    """

    def __init__(
        self,
        model,
        *,
        features="auto",
        grid_size=8,
        baseline=0.0,
        n_designs: int = 32,
        seed: int = 0,
        chunk_size: int = 64,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        self.groups = feature_groups(self.input_specs, features, grid_size)
        self.baselines = baseline_arrays(self.input_specs, baseline)
        self.n_designs = validation.count("n_designs", n_designs, minimum=2)
        self.chunk_size = validation.count("chunk_size", chunk_size)
        design = scrambled_halton(
            self.n_designs, 2 * self.groups.count, np.random.default_rng(validation.integer("seed", seed))
        )
        self.masks = saltelli_masks(design)

    def relevance(self, xs, forward):
        y = coalition_scores(self, xs, forward.mask, self.groups, self.baselines, self.masks, self.chunk_size)
        indices = jansen_total_indices(y, self.n_designs, self.groups.count)
        return self.groups.paint(indices, forward.output.dtype)
