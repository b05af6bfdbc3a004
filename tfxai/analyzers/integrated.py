"""Integrated Gradients (Sundararajan et al. 2017) and the baselines of path and reference methods.

:func:`baseline_tensors`, :func:`check_baseline` and :func:`per_input` also
serve DeepLIFT and the SHAP family.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfxai import reverse, validation
from tfxai.analyzers import batched
from tfxai.analyzers.base import explained_value
from tfxai.analyzers.gradient import Gradient, embedding_lookups
from tfxai.errors import ParameterError

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
        return {
            node.outputs[0]: forward.values[node.outputs[0]]
            for nodes in self.lookups.values()
            for node in nodes
        }

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
        grads = [
            next(float_grads) if batched.is_float(x) else tf.zeros(tf.shape(x), mask.dtype) for x in path
        ]
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
