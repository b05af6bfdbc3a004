"""Shapley-value estimators: GradientSHAP and KernelSHAP (Lundberg and Lee 2017).

* GradientSHAP: expected gradients between the input and a background set,
  ``E[(x + eps - b) * grad f(b + alpha (x + eps - b))]``, estimated from
  ``n_samples`` seeded draws of ``(b, alpha, eps)``.
* KernelSHAP: Shapley values of feature groups from a weighted least-squares
  fit on coalitions, with the efficiency constraint
  ``sum(phi) = f(x) - f(baseline)`` built into the solution. With
  ``n_samples >= 2^M - 2`` every coalition is enumerated and the result is
  the exact Shapley value of each group.

The random draws are made once, with NumPy's generator seeded by ``seed``,
when the analyzer is created: every sample of every batch sees the same
draws (batch independence), and the draws are constants of the graph.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfxai import validation
from tfxai.analyzers import batched, features
from tfxai.analyzers.base import Analyzer, explained_value
from tfxai.analyzers.deeplift import background_arrays, expected_output, require_float_inputs
from tfxai.analyzers.features import baseline_arrays, feature_groups
from tfxai.analyzers.gradient import Gradient
from tfxai.errors import ParameterError


class GradientSHAP(Gradient):
    """GradientSHAP (Lundberg and Lee 2017; Captum's ``GradientShap``).

    For draws ``j = 1..n``: a background sample ``b_j`` (uniformly from the
    background set), ``alpha_j ~ U(0, 1)`` and Gaussian noise ``eps_j`` of
    standard deviation ``noise_scale``;
    ``R = mean_j (x + eps_j - b_j) * grad f(b_j + alpha_j (x + eps_j - b_j))``.
    Its expectation is Integrated Gradients averaged over the background
    (for ``noise_scale=0``), so it sums to ``f(x) - mean_k f(b_k)`` in
    expectation; that is the explained value reported.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified. Float inputs only.
    background : array-like, or list of those
        ``(K, *sample)`` reference samples, one array per model input.
    n_samples : int
        Number of draws (default 32).
    noise_scale : float
        Standard deviation of the noise added to ``x`` (default 0, Captum's
        default).
    seed : int
        Seed of the draws (default 0).
    chunk_size : int
        Draws per batched gradient pass (default 8).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    Attributes
    ----------
    picks, alphas : numpy.ndarray
        The background index and ``alpha`` of each draw.

    References
    ----------
    Lundberg, Lee (2017). A unified approach to interpreting model
    predictions. NeurIPS.
    Erion, Janizek, Sturmfels, Lundberg, Lee (2021). Improving performance of
    deep learning models with axiomatic attribution priors and expected
    gradients. Nature Machine Intelligence.
    """

    def __init__(
        self,
        model,
        *,
        background,
        n_samples: int = 32,
        noise_scale: float = 0.0,
        seed: int = 0,
        chunk_size: int = 8,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        require_float_inputs(self, "GradientSHAP")
        self.background = background_arrays(self.input_specs, background)
        self.n_samples = validation.count("n_samples", n_samples)
        self.chunk_size = validation.count("chunk_size", chunk_size)
        self.noise_scale = validation.number("noise_scale", noise_scale, minimum=0)
        self.seed = validation.integer("seed", seed)
        rng = np.random.default_rng(self.seed)
        self.picks = rng.integers(0, len(self.background[0]), self.n_samples)
        self.alphas = rng.uniform(0.0, 1.0, self.n_samples)

    def noise(self, xs):
        """Per input, the noise of every draw, ``(n_samples, *sample)`` (stateless, seeded)."""
        result = []
        for k, x in enumerate(xs):
            shape = tf.concat([[self.n_samples], tf.shape(x)[1:]], axis=0)
            draw = tf.random.stateless_normal(shape, seed=[self.seed, k], dtype=x.dtype, alg="philox")
            result.append(tf.constant(self.noise_scale, x.dtype) * draw)
        return result

    def relevance(self, xs, forward):
        chunk = min(self.chunk_size, self.n_samples)
        mask = forward.mask
        noise = self.noise(xs)
        background = [tf.constant(b, x.dtype) for b, x in zip(self.background, xs)]
        picks, alphas = tf.constant(self.picks, tf.int32), tf.constant(self.alphas)

        def step(indices, valid):
            alpha = tf.gather(alphas, indices)
            points, spans = [], []
            for x, b, eps in zip(xs, background, noise):
                start = tf.gather(b, tf.gather(picks, indices))[:, None]
                span = x[None] + tf.gather(eps, indices)[:, None] - start
                a = batched.expand_like(tf.cast(alpha, x.dtype), x)
                points.append(batched.stack_variants(start + a * span))
                spans.append(batched.stack_variants(span))
            grads = self.gradients(points, self.forward_pass(points, batched.fixed_selection(mask, chunk)))
            weight = tf.cast(valid, tf.float64) / self.n_samples
            return [batched.weighted_sum(weight, s * g, chunk) for s, g in zip(spans, grads)]

        return batched.fold(step, self.n_samples, chunk, batched.add)

    def explained(self, xs, forward):
        """``f(x) - mean_k f(b_k)``: what the attributions sum to in expectation."""
        return explained_value(forward.output, forward.mask) - expected_output(self, xs, forward.mask)


def shapley_weight(m: int, size):
    """Shapley kernel ``(m - 1) / (C(m, s) s (m - s))`` of coalitions of ``size`` features out of ``m``."""
    size = np.asarray(size)
    comb = np.array([math.comb(m, int(s)) for s in size.ravel()], np.float64).reshape(size.shape)
    return (m - 1) / (comb * size * (m - size))


def shapley_design(m: int, n_samples: int, rng) -> tuple:
    """Coalitions ``(n, m)`` and their regression weights for KernelSHAP.

    Every non-empty proper coalition when ``2^m - 2 <= n_samples``, weighted by
    the Shapley kernel (exact Shapley values). Otherwise ``n_samples`` (rounded
    up to even) sampled coalitions: a size ``s`` drawn with probability
    proportional to the kernel's mass ``(m - 1) / (s (m - s))``, a uniformly
    random subset of that size and its complement, all weighted 1.
    """
    if m < 2:
        return np.zeros((0, m)), np.zeros(0)
    if m <= 30 and 2**m - 2 <= n_samples:
        codes = np.arange(1, 2**m - 1)
        z = ((codes[:, None] >> np.arange(m)[None]) & 1).astype(np.float64)
        return z, shapley_weight(m, z.sum(axis=1))
    sizes = np.arange(1, m)
    mass = (m - 1) / (sizes * (m - sizes))
    pairs = -(-n_samples // 2)
    drawn = rng.choice(sizes, size=pairs, p=mass / mass.sum())
    ranks = np.argsort(rng.uniform(size=(pairs, m)), axis=1)
    half = (ranks < drawn[:, None]).astype(np.float64)
    return np.concatenate([half, 1.0 - half]), np.ones(2 * pairs)


def constrained_projection(z, weights) -> np.ndarray:
    """``P`` with ``phi[:-1] = P @ t`` solving KernelSHAP's constrained weighted least squares.

    With ``phi_m = delta - sum(phi[:-1])`` substituted, the fit of
    ``y - f(b) = z . phi`` becomes ``t = y - f(b) - z_m delta`` regressed on
    ``A = z[:, :-1] - z[:, -1:]``; ``P = (A^T W A)^-1 A^T W``.
    """
    a = z[:, :-1] - z[:, -1:]
    gram = a.T @ (weights[:, None] * a)
    if np.linalg.matrix_rank(gram) < a.shape[1]:
        raise ParameterError(
            f"KernelSHAP's coalitions do not determine {z.shape[1]} features; raise n_samples "
            f"(received {len(z)} coalitions) or use fewer features (a coarser grid_size)."
        )
    return np.linalg.solve(gram, a.T * weights[None])


class KernelSHAP(Analyzer):
    """KernelSHAP (Lundberg and Lee 2017) over feature groups.

    Features are groups of input elements (:func:`tfxai.analyzers.features.feature_groups`):
    grid cells of an image, columns of a table, tokens of a sequence. A
    coalition keeps the features it contains and sets the others to the
    baseline; all coalitions are evaluated inside the analyzer's
    ``tf.function``, ``chunk_size`` per batched forward pass. The Shapley
    value of a feature is divided evenly over its elements, so the relevance
    sums to ``f(x) - f(baseline)`` exactly (efficiency), the explained value
    reported.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    features : str, array-like, or list of those
        The feature groups (default ``"auto"``); see
        :func:`~tfxai.analyzers.features.feature_groups`.
    grid_size : int or tuple of int
        Grid cells per spatial axis for ``features="grid"`` (default 8).
    baseline : float, array-like, or list of those
        Value of the features a coalition leaves out (default 0).
    n_samples : int
        Coalitions to evaluate (default 2048); with ``n_samples >= 2^M - 2``
        for ``M`` features all are enumerated and the values are exact.
    seed : int
        Seed of the sampled coalitions (default 0).
    chunk_size : int
        Coalitions per forward pass (default 64).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    Attributes
    ----------
    groups : FeatureGroups
    coalitions, weights : numpy.ndarray
        The coalitions ``(n, M)`` evaluated and their regression weights.

    References
    ----------
    Lundberg, Lee (2017). A unified approach to interpreting model
    predictions. NeurIPS.
    """

    def __init__(
        self,
        model,
        *,
        features="auto",
        grid_size=8,
        baseline=0.0,
        n_samples: int = 2048,
        seed: int = 0,
        chunk_size: int = 64,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        self.groups = feature_groups(self.input_specs, features, grid_size)
        self.baselines = baseline_arrays(self.input_specs, baseline)
        self.n_samples = validation.count("n_samples", n_samples)
        self.chunk_size = validation.count("chunk_size", chunk_size)
        self.seed = validation.integer("seed", seed)
        rng = np.random.default_rng(self.seed)
        self.coalitions, self.weights = shapley_design(self.groups.count, self.n_samples, rng)
        self.projection = (
            constrained_projection(self.coalitions, self.weights) if len(self.coalitions) else None
        )

    def baseline_score(self, xs, mask):
        """Per sample, ``f(baseline)`` of the neurons ``mask``."""
        rows = [
            features.perturb(x, tf.zeros((1,) + tuple(x.shape[1:])), b) for x, b in zip(xs, self.baselines)
        ]
        return features.scores(self, rows, mask, 1)[0]

    def relevance(self, xs, forward):
        delta = tf.cast(self.explained(xs, forward), tf.float64)
        if self.projection is None:
            return self.groups.spread(delta[:, None], forward.output.dtype)
        y = features.coalition_scores(
            self, xs, forward.mask, self.groups, self.baselines, self.coalitions, self.chunk_size
        )
        f_b = tf.cast(self.baseline_score(xs, forward.mask), tf.float64)
        z_last = tf.constant(self.coalitions[:, -1:])
        target = tf.cast(y, tf.float64) - f_b[None] - z_last * delta[None]
        rest = tf.transpose(tf.constant(self.projection) @ target)
        phi = tf.concat([rest, (delta - tf.reduce_sum(rest, axis=1))[:, None]], axis=1)
        return self.groups.spread(phi, forward.output.dtype)

    def explained(self, xs, forward):
        """``f(x) - f(baseline)`` of the explained neurons."""
        return explained_value(forward.output, forward.mask) - self.baseline_score(xs, forward.mask)
