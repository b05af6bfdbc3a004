"""LIME (Ribeiro, Singh, Guestrin 2016): a weighted linear surrogate over feature groups."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfxai import validation
from tfxai.analyzers.base import Analyzer
from tfxai.analyzers.features import baseline_arrays, coalition_scores, feature_groups
from tfxai.errors import ParameterError


def cosine_distance_to_full(z) -> np.ndarray:
    """Cosine distance of binary coalitions ``z`` ``(n, M)`` to the all-ones coalition (1 for the empty one)."""
    on = z.sum(axis=1)
    return 1.0 - np.sqrt(on / z.shape[1])


def lime_projection(z, weights, ridge: float) -> np.ndarray:
    """``P`` with ``[intercept, coefficients] = P @ y``: weighted ridge regression on ``[1, z]``.

    Minimises ``sum_i w_i (y_i - c - z_i . beta)^2 + ridge |beta|^2``; the
    intercept ``c`` is not penalised.
    """
    a = np.concatenate([np.ones((len(z), 1)), z], axis=1)
    penalty = ridge * np.eye(a.shape[1])
    penalty[0, 0] = 0.0
    gram = a.T @ (weights[:, None] * a) + penalty
    if np.linalg.matrix_rank(gram) < a.shape[1]:
        raise ParameterError(
            f"LIME's {len(z)} coalitions do not determine {z.shape[1]} features; raise n_samples, give "
            "ridge > 0, or use fewer features (a coarser grid_size)."
        )
    return np.linalg.solve(gram, a.T * weights[None])


class LIME(Analyzer):
    """LIME (Ribeiro et al. 2016) for images, tables and sequences.

    ``n_samples`` binary coalitions ``z`` are drawn (each feature kept with
    probability 1/2; the first coalition keeps all), every coalition is
    evaluated with the left-out features set to the baseline, and a weighted
    ridge regression ``y ~ c + z . beta`` is fitted per sample. The weight of a
    coalition is the exponential kernel ``exp(-d(z)^2 / kernel_width^2)`` of
    its cosine distance ``d`` to the all-ones coalition. The coefficient of a
    feature is divided evenly over its elements.

    The ``lime`` package weights by ``sqrt(exp(-d^2 / w^2))``: its
    ``kernel_width=w`` is tfxai's ``kernel_width = w * sqrt(2)``. The default
    0.25 is ``lime``'s image default.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    features, grid_size, baseline
        As for :class:`~tfxai.analyzers.shap.KernelSHAP`.
    n_samples : int
        Coalitions (default 1024).
    kernel_width : float
        Width of the kernel on the cosine distance (default 0.25).
    ridge : float
        L2 penalty of the coefficients (default 1, as ``lime``'s
        ``Ridge(alpha=1)``); 0 is weighted least squares.
    seed : int
        Seed of the coalitions (default 0).
    chunk_size : int
        Coalitions per forward pass (default 64).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    Attributes
    ----------
    groups : FeatureGroups
    coalitions, weights : numpy.ndarray
        The coalitions ``(n, M)`` and their kernel weights.

    References
    ----------
    Ribeiro, Singh, Guestrin (2016). "Why should I trust you?": explaining the
    predictions of any classifier. KDD.
    """

    def __init__(
        self,
        model,
        *,
        features="auto",
        grid_size=8,
        baseline=0.0,
        n_samples: int = 1024,
        kernel_width: float = 0.25,
        ridge: float = 1.0,
        seed: int = 0,
        chunk_size: int = 64,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        self.groups = feature_groups(self.input_specs, features, grid_size)
        self.baselines = baseline_arrays(self.input_specs, baseline)
        self.n_samples = validation.count("n_samples", n_samples)
        self.chunk_size = validation.count("chunk_size", chunk_size)
        self.kernel_width = validation.number("kernel_width", kernel_width, minimum=0, exclusive=True)
        self.ridge = validation.number("ridge", ridge, minimum=0)
        self.seed = validation.integer("seed", seed)
        rng = np.random.default_rng(self.seed)
        self.coalitions = rng.integers(0, 2, (self.n_samples, self.groups.count)).astype(np.float64)
        self.coalitions[0] = 1.0
        distance = cosine_distance_to_full(self.coalitions)
        self.weights = np.exp(-(distance**2) / self.kernel_width**2)
        self.projection = lime_projection(self.coalitions, self.weights, self.ridge)

    def relevance(self, xs, forward):
        y = coalition_scores(
            self, xs, forward.mask, self.groups, self.baselines, self.coalitions, self.chunk_size
        )
        beta = tf.constant(self.projection[1:]) @ tf.cast(y, tf.float64)
        return self.groups.spread(tf.transpose(beta), forward.output.dtype)
