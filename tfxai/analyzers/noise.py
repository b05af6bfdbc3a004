"""Noise around any analyzer: the noise tunnel, SmoothGrad (Smilkov et al. 2017), VarGrad
(Adebayo et al. 2018) and SquareGrad (Hooker et al. 2019).
"""

from __future__ import annotations

import tensorflow as tf

from tfxai import validation
from tfxai.analyzers import batched, factory
from tfxai.analyzers.base import Analyzer
from tfxai.analyzers.gradient import Gradient
from tfxai.errors import ParameterError, ParameterTypeError

REDUCTIONS = ("mean", "variance", "mean_square")
"""How :class:`NoiseTunnel` combines the explanations of the noisy copies."""


class NoiseTunnel(Analyzer):
    """Any analyzer's explanation averaged over noisy copies of the input.

    For each sample, ``n_samples`` copies ``x + eps_j`` with Gaussian
    ``eps_j ~ N(0, sigma^2)`` are explained and the results reduced by their
    mean (SmoothGrad, Smilkov et al. 2017) or their variance (VarGrad,
    Adebayo et al. 2018). The explained neuron is chosen once, on the clean
    input, and kept for every noisy copy; ``explained`` and the predictions
    are those of the clean input.

    The noise is drawn with stateless random ops from ``seed``: the ``j``-th
    noise pattern is the same for every sample (scaled by that sample's
    ``sigma``), so a sample's explanation does not depend on the batch it is
    in, and repeated calls give the same result. Integer inputs (token ids)
    are never perturbed.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    analyzer : str or Analyzer
        The analyzer to smooth: a name for :func:`tfxai.create_analyzer`
        (default ``"gradient"``) or an analyzer of the same model.
    analyzer_params : dict, optional
        Parameters for ``create_analyzer`` when ``analyzer`` is a name.
    n_samples : int
        Number of noisy copies (default 16).
    noise_level : float, optional
        ``sigma`` as a fraction of each sample's value range,
        ``sigma = noise_level * (max(x) - min(x))`` per sample and input, as in
        zennit. Default 0.1 when ``noise_scale`` is not given.
    noise_scale : float, optional
        Absolute ``sigma`` (iNNvestigate's parameter name); excludes
        ``noise_level``.
    reduce : {"mean", "variance", "mean_square"}
        How the explanations of the noisy copies are combined: their mean,
        their population variance (divided by ``n_samples``), or the mean of
        their squares (SquareGrad, Hooker et al. 2019), computed as
        ``mean^2 + variance``.
    seed : int
        Seed of the noise (default 0).
    chunk_size : int
        Noisy copies explained per pass (default 8); bounds memory at
        ``chunk_size`` times the batch.
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    References
    ----------
    Smilkov, Thorat, Kim, Viegas, Wattenberg (2017). SmoothGrad: removing noise
    by adding noise. arXiv:1706.03825.
    Adebayo, Gilmer, Goodfellow, Kim (2018). Local explanation methods for deep
    neural networks lack sensitivity to parameter values. ICLR workshop.
    """

    def __init__(
        self,
        model,
        analyzer="gradient",
        *,
        analyzer_params=None,
        n_samples: int = 16,
        noise_level: float | None = None,
        noise_scale: float | None = None,
        reduce: str = "mean",
        seed: int = 0,
        chunk_size: int = 8,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        self.inner = self._inner_analyzer(analyzer, analyzer_params)
        self.n_samples = validation.count("n_samples", n_samples)
        self.chunk_size = validation.count("chunk_size", chunk_size)
        self.noise_level, self.noise_scale = _noise_parameters(noise_level, noise_scale)
        self.reduce = validation.choice("reduce", reduce, REDUCTIONS)
        self.seed = validation.integer("seed", seed)

    def _inner_analyzer(self, analyzer, params):
        if params is not None and not isinstance(params, dict):
            raise ParameterTypeError(
                f"analyzer_params must be a dict or None. Received: analyzer_params={params!r}"
            )
        if isinstance(analyzer, Analyzer):
            if params:
                raise ParameterError("analyzer_params only apply when analyzer is a name, not an Analyzer.")
            if analyzer.model is not self.model or analyzer.output_index != self.output_index:
                raise ParameterError(
                    "The smoothed analyzer must explain the same model and output_index as the noise tunnel. "
                    f"Received: an analyzer of model {analyzer.model.name!r}, "
                    f"output_index={analyzer.output_index}"
                )
            return analyzer
        if not isinstance(analyzer, str):
            raise ParameterTypeError(
                f"analyzer must be an analyzer name or an Analyzer. Received: {analyzer!r}"
            )
        return factory.create_analyzer(
            analyzer, self.model, output_index=self.output_index, **dict(params or {})
        )

    def sigma(self, x):
        """Standard deviation of the noise for each sample of one input, broadcastable to ``x``."""
        if self.noise_scale is not None:
            return tf.constant(self.noise_scale, x.dtype)
        axes = list(range(1, x.shape.rank))
        spread = tf.reduce_max(x, axis=axes, keepdims=True) - tf.reduce_min(x, axis=axes, keepdims=True)
        return tf.constant(self.noise_level, x.dtype) * spread

    def _noise(self, xs):
        """One noise pattern per copy and float input: ``(n_samples, ...)`` (None for integer inputs)."""
        patterns = []
        for k, x in enumerate(xs):
            if not batched.is_float(x):
                patterns.append(None)
                continue
            shape = tf.concat([[self.n_samples], tf.shape(x)[1:]], axis=0)
            noise = tf.random.stateless_normal(shape, seed=[self.seed, k], dtype=x.dtype, alg="philox")
            patterns.append(noise)
        return patterns

    def relevance(self, xs, forward):
        mask = forward.mask
        patterns = self._noise(xs)
        sigmas = [self.sigma(x) if p is not None else None for x, p in zip(xs, patterns)]
        chunk = min(self.chunk_size, self.n_samples)

        def step(indices, valid):
            noisy = []
            for x, pattern, sigma in zip(xs, patterns, sigmas):
                if pattern is None:
                    noisy.append(batched.repeat_variants(x, chunk))
                    continue
                noise = tf.gather(pattern, indices)[:, None] * sigma[None]
                noisy.append(batched.stack_variants(x[None] + noise))
            relevance, _, _ = self.inner.explain_tensors(noisy, batched.fixed_selection(mask, chunk))
            return _chunk_moments([batched.split_variants(r, chunk) for r in relevance], valid)

        count, *moments = batched.fold(step, self.n_samples, chunk, _merge_moments)
        means, m2s = moments[: len(xs)], moments[len(xs) :]
        variances = [m2 / tf.cast(count, m2.dtype) for m2 in m2s]
        if self.reduce == "mean":
            return means
        if self.reduce == "variance":
            return variances
        return [tf.square(mean) + variance for mean, variance in zip(means, variances)]


def _noise_parameters(noise_level, noise_scale):
    if noise_level is not None and noise_scale is not None:
        raise ParameterError(
            "Give either noise_level (relative to the input range) or noise_scale (absolute), not both. "
            f"Received: noise_level={noise_level}, noise_scale={noise_scale}"
        )
    if noise_scale is not None:
        return None, validation.number("noise_scale", noise_scale, minimum=0)
    return 0.1 if noise_level is None else validation.number("noise_level", noise_level, minimum=0), None


def _chunk_moments(variants, valid):
    """``[count, means..., sums of squared deviations...]`` of the valid variants of one chunk."""
    count = tf.reduce_sum(valid)
    means, m2s = [], []
    for v in variants:
        w = tf.cast(valid, v.dtype)
        mean = tf.tensordot(w, v, axes=[[0], [0]]) / tf.cast(count, v.dtype)
        means.append(mean)
        m2s.append(tf.tensordot(w, tf.square(v - mean[None]), axes=[[0], [0]]))
    return [count] + means + m2s


def _merge_moments(state, chunk):
    """Chan et al.'s pairwise update of count, mean and squared deviations."""
    n = len(state) // 2
    count_a, count_b = state[0], chunk[0]
    total = count_a + count_b
    merged = [total]
    deltas = [mb - ma for ma, mb in zip(state[1 : n + 1], chunk[1 : n + 1])]
    for mean_a, delta in zip(state[1 : n + 1], deltas):
        merged.append(mean_a + delta * tf.cast(count_b / total, delta.dtype))
    for m2_a, m2_b, delta in zip(state[n + 1 :], chunk[n + 1 :], deltas):
        merged.append(m2_a + m2_b + tf.square(delta) * tf.cast(count_a * count_b / total, delta.dtype))
    return merged


class SmoothGrad(NoiseTunnel):
    """SmoothGrad (Smilkov et al. 2017): the mean gradient over noisy copies of the input.

    With ``noise_level=0`` (or ``noise_scale=0``) it equals the gradient.
    See :class:`NoiseTunnel` for the noise and the parameters.

    Parameters
    ----------
    model : keras.Model
        The model to explain.
    n_samples, noise_level, noise_scale, seed, chunk_size
        See :class:`NoiseTunnel`. zennit's defaults are ``noise_level=0.1``
        and ``n_samples=20`` (one of its copies is noise-free);
        iNNvestigate's are ``noise_scale=1`` and ``n_samples=64``.
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.
    """

    reduction = "mean"

    def __init__(
        self,
        model,
        *,
        n_samples: int = 16,
        noise_level: float | None = None,
        noise_scale: float | None = None,
        seed: int = 0,
        chunk_size: int = 8,
        **kwargs,
    ):
        super().__init__(
            model,
            Gradient(model, output_index=kwargs.get("output_index", 0)),
            n_samples=n_samples,
            noise_level=noise_level,
            noise_scale=noise_scale,
            reduce=self.reduction,
            seed=seed,
            chunk_size=chunk_size,
            **kwargs,
        )


class VarGrad(SmoothGrad):
    """VarGrad (Adebayo et al. 2018): the variance of the gradient over noisy copies.

    Same parameters as :class:`SmoothGrad`; the variance is the population
    variance over the ``n_samples`` copies.
    """

    reduction = "variance"


class SquareGrad(SmoothGrad):
    """SquareGrad (Hooker et al. 2019): the mean squared gradient over noisy copies.

    ``R = mean_j (d y / d x (x + eps_j))^2``, Xplique's definition; same
    parameters as :class:`SmoothGrad`. Always non-negative: it shows where the
    output is sensitive, not in which direction.

    References
    ----------
    Hooker, Erhan, Kindermans, Kim (2019). A benchmark for interpretability
    methods in deep neural networks. NeurIPS.
    """

    reduction = "mean_square"
