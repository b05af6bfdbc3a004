"""Gradient-based analyzers.

Saliency (Simonyan et al. 2014), input times gradient (Shrikumar et al. 2016),
SmoothGrad (Smilkov et al. 2017), VarGrad (Adebayo et al. 2018), SquareGrad
(Hooker et al. 2019), a noise tunnel over any analyzer, and Integrated
Gradients (Sundararajan et al. 2017).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfxai import reverse, rules, validation
from tfxai.analyzers import batched, factory
from tfxai.analyzers.base import Analyzer, explained_value
from tfxai.errors import ModelError, ParameterError, ParameterTypeError


class Gradient(Analyzer):
    """Saliency: the gradient of the explained neuron(s) with respect to the input.

    Differentiates the canonized model (logits, not softmax). With
    ``neuron_selection="all"`` it is the gradient of the sum of the outputs.

    An integer input read by ``Embedding`` layers (token ids) gets one value
    per token instead, shape ``(batch, sequence)``: :meth:`token_score` of
    each embedding output ``e`` and the gradient ``g`` with respect to it.
    For the gradient this is the Euclidean norm of ``g`` over the embedding
    axis (Li et al. 2016): the plain sum of ``g`` is the derivative along
    the all-ones direction, which a LayerNorm after the embedding cancels.

    References
    ----------
    Simonyan, Vedaldi, Zisserman (2014). Deep inside convolutional networks.
    ICLR workshop.
    Li, Chen, Hovy, Jurafsky (2016). Visualizing and understanding neural
    models in NLP. NAACL.
    """

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        check_token_inputs(self.view)

    def watched(self, xs):
        lookups = embedding_lookups(self.view)
        return list(xs) + [node.layer.embeddings.value for nodes in lookups.values() for node in nodes]

    def gradients(self, xs, forward):
        """Gradient of the explained neurons of ``forward`` for each input (per token for token ids)."""
        lookups = embedding_lookups(self.view)
        embedded = {i: [forward.values[node.outputs[0]] for node in nodes] for i, nodes in lookups.items()}
        grads, embedded_grads = forward.tape.gradient(
            forward.output,
            (xs, embedded),
            output_gradients=forward.mask,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        grads = [g if batched.is_float(x) else tf.zeros(tf.shape(x), forward.output.dtype) for x, g in zip(xs, grads)]
        for i, outputs in embedded.items():
            grads[i] = tf.add_n([self.token_score(e, g) for e, g in zip(outputs, embedded_grads[i])])
        return grads

    def relevance(self, xs, forward):
        return self.gradients(xs, forward)

    def token_score(self, embedded, grad):
        """A token's value from its embedding and the gradient there: ``||grad||_2`` over the embedding axis."""
        return tf.norm(grad, axis=-1)


class InputTimesGradient(Gradient):
    """Input times gradient (Shrikumar et al. 2016): ``x * d y / d x``.

    On ReLU networks without biases it sums to the explained output and equals
    LRP-0. For token ids read by ``Embedding`` layers, ``x`` is the embedding
    vector: a token gets ``sum(e * d y / d e)`` over its embedding ``e``.
    """

    def relevance(self, xs, forward):
        grads = self.gradients(xs, forward)
        return [x * g if batched.is_float(x) else g for x, g in zip(xs, grads)]

    def token_score(self, embedded, grad):
        """Embedding times its gradient, summed over the embedding axis."""
        return rules.token_relevance(embedded * grad)


def embedding_lookups(view) -> dict:
    """Input index -> the ``Embedding`` nodes that read that (integer) model input directly."""
    lookups: dict = {}
    for node in view.nodes:
        if issubclass(node.op_type, keras.layers.Embedding) and node.inputs[0] in view.inputs:
            index = view.inputs.index(node.inputs[0])
            if view.input_dtypes[index].startswith(("int", "uint")):
                lookups.setdefault(index, []).append(node)
    return lookups


def check_token_inputs(view) -> None:
    """Raise where no input can be differentiated: only integer inputs, and no ``Embedding`` reads one.

    Gradients with respect to integer inputs do not exist; returning zeros
    for them would be a silent wrong answer.
    """
    if any(not d.startswith(("int", "uint", "bool")) for d in view.input_dtypes) or embedding_lookups(view):
        return
    raise ModelError(
        f"Model {view.name!r} takes only integer inputs ({', '.join(view.input_names)}) and no Embedding layer "
        "reads them where tfxai can see it, so gradient methods have nothing to differentiate. Use an LRP "
        "analyzer, or make the embedding visible (a layer tfxai captures, or keras.layers.Embedding)."
    )


def _fixed_selection(mask, chunk: int):
    """A ``select`` that marks, in every stacked variant, the neurons chosen on the clean input."""
    return lambda y: batched.repeat_variants(mask, chunk)


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
            raise ParameterTypeError(f"analyzer_params must be a dict or None. Received: analyzer_params={params!r}")
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
            raise ParameterTypeError(f"analyzer must be an analyzer name or an Analyzer. Received: {analyzer!r}")
        return factory.create_analyzer(analyzer, self.model, output_index=self.output_index, **dict(params or {}))

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
            relevance, _, _ = self.inner.explain_tensors(noisy, _fixed_selection(mask, chunk))
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


_RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def path_points(steps: int, method: str):
    """Positions ``alpha`` on the path and quadrature weights, as float64 arrays.

    ``steps`` is the number of gradient evaluations. The Riemann rules use
    ``alpha = k/n`` (left), ``(k+1)/n`` (right) or ``(k+1/2)/n`` (middle) with
    weights ``1/n``; the trapezoid rule uses ``alpha = k/(n-1)`` with weights
    ``1/(n-1)``, halved at both ends (``n >= 2``).
    """
    k = np.arange(steps, dtype=np.float64)
    if method == "riemann_trapezoid":
        if steps < 2:
            raise ParameterError(f"riemann_trapezoid needs steps >= 2. Received: steps={steps}")
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2.0
        return k / (steps - 1), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (k + offset) / steps, np.full(steps, 1.0 / steps)


class IntegratedGradients(Gradient):
    """Integrated Gradients (Sundararajan et al. 2017).

    ``R_i = (x_i - b_i) * integral_0^1 d f(b + alpha (x - b)) / d x_i d alpha``,
    the integral estimated by a quadrature rule over ``steps`` points on the
    straight path from the baseline ``b`` to ``x``. All points are evaluated
    inside the one ``tf.function``, ``chunk_size`` points per batched pass.

    Completeness: ``sum(R)`` approximates ``f(x) - f(b)`` for the explained
    neuron; the analyzer reports ``f(x) - f(b)`` as the explained value, so
    ``analyze(..., return_delta=True)`` returns the quadrature error.

    Parameters
    ----------
    model : keras.Model
        The model to explain.
    baseline : "zero", "blur", float, array-like, or list of those
        The path's start: zeros (default); the input blurred by a Gaussian of
        standard deviation ``blur_sigma`` samples along its spatial axes (every
        axis but the batch and the last, channels-last; Sturmfels et al. 2020);
        a number; or an array broadcastable to one sample. Multi-input
        models take one entry per input (or one entry for all). Token ids
        read by ``Embedding`` layers are interpolated in embedding space,
        from the zero vector to each token's embedding (the ``Embedding``
        outputs are replaced along the path; position and other embeddings
        that do not read a model input stay as they are); a token gets
        ``sum((e - 0) * mean gradient)`` over its embedding axis. Other
        integer inputs (masks) get zeros.
    steps : int
        Gradient evaluations (default 64).
    method : str
        ``"riemann_trapezoid"`` (default), ``"riemann_left"`` (iNNvestigate),
        ``"riemann_right"`` (zennit) or ``"riemann_middle"``; see
        :func:`path_points`.
    blur_sigma : float
        Standard deviation, in samples, of the blur baseline (default 5).
    chunk_size : int
        Path points per batched pass (default 8).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    References
    ----------
    Sundararajan, Taly, Yan (2017). Axiomatic attribution for deep networks. ICML.
    Sturmfels, Lundberg, Lee (2020). Visualizing the impact of feature
    attribution baselines. Distill.
    """

    def __init__(
        self,
        model,
        *,
        baseline="zero",
        steps: int = 64,
        method: str = "riemann_trapezoid",
        blur_sigma: float = 5.0,
        chunk_size: int = 8,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        self.method = validation.choice("method", method, _RULES)
        self.steps = validation.count("steps", steps, minimum=2 if method == "riemann_trapezoid" else 1)
        self.alphas, self.weights = path_points(self.steps, method)
        self.chunk_size = validation.count("chunk_size", chunk_size)
        self.blur_sigma = validation.number("blur_sigma", blur_sigma, minimum=0, exclusive=True)
        self.baselines = per_input(baseline, len(self.input_specs))
        for spec, base in zip(self.input_specs, self.baselines):
            check_baseline(spec, base)
        self.lookups = embedding_lookups(self.view)

    def baseline_tensors(self, xs):
        """The baseline of each input for a batch (``x`` itself for integer inputs)."""
        return baseline_tensors(xs, self.baselines, self.blur_sigma)

    def _token_paths(self, forward):
        """Embedding output key -> the embedded tokens, for every ``Embedding`` reading a token input."""
        return {node.outputs[0]: forward.values[node.outputs[0]] for nodes in self.lookups.values() for node in nodes}

    def relevance(self, xs, forward):
        mask = forward.mask
        bases = self.baseline_tensors(xs)
        embedded = self._token_paths(forward)
        chunk = min(self.chunk_size, self.steps)
        alphas, weights = tf.constant(self.alphas), tf.constant(self.weights)

        def step(indices, valid):
            alpha = tf.gather(alphas, indices)
            weight = tf.gather(weights, indices) * tf.cast(valid, tf.float64)
            path = []
            for x, base in zip(xs, bases):
                if not batched.is_float(x):
                    path.append(batched.repeat_variants(x, chunk))
                    continue
                a = batched.expand_like(tf.cast(alpha, x.dtype), x)
                path.append(batched.stack_variants(base[None] + a * (x - base)[None]))
            overrides = {
                key: batched.stack_variants(batched.expand_like(tf.cast(alpha, e.dtype), e) * e[None])
                for key, e in embedded.items()
            }
            grads = self._path_gradients(path, overrides, batched.repeat_variants(mask, chunk))
            return [batched.weighted_sum(weight, g, chunk) for g in grads]

        mean_grads = batched.fold(step, self.steps, chunk, batched.add)
        result = [
            (x - base) * g if batched.is_float(x) else tf.zeros(tf.shape(x), mask.dtype)
            for x, base, g in zip(xs, bases, mean_grads[: len(xs)])
        ]
        token_grads = dict(zip(embedded, mean_grads[len(xs) :]))
        for i, nodes in self.lookups.items():
            key_of = [node.outputs[0] for node in nodes]
            result[i] = tf.add_n([tf.reduce_sum(embedded[k] * token_grads[k], axis=-1) for k in key_of])
        return result

    def _path_gradients(self, path, overrides, mask):
        """Gradients of the selected outputs at the path points: per float input, then per overridden embedding."""
        sources = [x for x in path if batched.is_float(x)] + list(overrides.values())
        with tf.GradientTape() as tape:
            tape.watch(sources)
            y = reverse.forward(self.view, path, overrides)[0][self.explained_key()]
        float_grads = iter(
            tape.gradient(
                y, sources, output_gradients=mask, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
        )
        grads = [next(float_grads) if batched.is_float(x) else tf.zeros(tf.shape(x), mask.dtype) for x in path]
        return grads + list(float_grads)

    def explained(self, xs, forward):
        """``f(x) - f(baseline)`` of the explained neurons: what completeness says the relevance sums to.

        For token inputs the baseline replaces each token's embedding by the zero vector.
        """
        zeros = {key: tf.zeros_like(e) for key, e in self._token_paths(forward).items()}
        y_base = reverse.forward(self.view, self.baseline_tensors(xs), zeros)[0][self.explained_key()]
        return explained_value(forward.output, forward.mask) - explained_value(y_base, forward.mask)


def baseline_tensors(xs, baselines, blur_sigma: float) -> list:
    """Per input, its baseline for a batch: zeros, the blurred input or a constant (``x`` for integers).

    ``baselines`` holds one checked entry per input (see :func:`check_baseline`).
    """
    result = []
    for x, base in zip(xs, baselines):
        if not batched.is_float(x):
            result.append(x)
        elif isinstance(base, str) and base == "zero":
            result.append(tf.zeros_like(x))
        elif isinstance(base, str):
            result.append(gaussian_blur(x, blur_sigma))
        else:
            result.append(tf.broadcast_to(tf.cast(tf.constant(base), x.dtype), tf.shape(x)))
    return result


def per_input(value, n_inputs: int) -> list:
    """One entry per model input from a single entry or a list/tuple of them."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_inputs:
            raise ParameterError(
                f"The model has {n_inputs} input(s); give one baseline or one per input. "
                f"Received {len(value)} baselines."
            )
        return list(value)
    return [value] * n_inputs


def check_baseline(spec, base):
    """Raise a ValueError unless ``base`` is a valid baseline of the input ``spec``."""
    if isinstance(base, str):
        if base not in ("zero", "blur"):
            raise ParameterError(f"A baseline is 'zero', 'blur', a number or an array. Received: {base!r}")
        if base == "blur" and len(spec.shape) < 3 and np.dtype(spec.dtype).kind == "f":
            raise ParameterError(
                f"baseline='blur' needs spatial axes (shape (batch, ..., channels)); input {spec.name!r} "
                f"has shape {spec.shape}. Use 'zero' or an array for tabular inputs."
            )
        return
    sample = tuple(spec.shape[1:])
    array = validation.finite_array(f"baseline (of input {spec.name!r})", base)
    try:
        np.broadcast_shapes(array.shape, tuple(1 if d is None else d for d in sample))
    except ValueError:
        raise ParameterError(
            f"The baseline of input {spec.name!r} must broadcast to one sample of shape {sample}. "
            f"Received shape {array.shape}."
        ) from None


def gaussian_blur(x, sigma: float):
    """Gaussian blur of a channels-last batch along its spatial axes (edges repeated).

    Every axis except the batch axis and the last is blurred with a 1D kernel
    of standard deviation ``sigma`` samples, truncated at ``3 sigma``.
    """
    radius = max(1, int(math.ceil(3.0 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    for axis in range(1, x.shape.rank - 1):
        size = tf.shape(x)[axis]
        positions = tf.range(size)
        blurred = tf.zeros_like(x)
        for offset, weight in zip(offsets, kernel):
            source = tf.clip_by_value(positions + int(offset), 0, size - 1)
            blurred += tf.constant(weight, x.dtype) * tf.gather(x, source, axis=axis)
        x = blurred
    return x
