"""Slow, literal NumPy versions of the LRP rules, used as test oracles.

Nothing here uses TensorFlow. Every computation is float64 NumPy written with
explicit loops or explicit ``z_jk`` matrices, straight from the rule formulas:

* A weighted layer is first turned into an explicit connection matrix
  ``W[j, k]`` (input unit ``j``, output unit ``k``, both flattened in C order
  over the non-batch axes) by looping over every kernel position of every
  output position, plus a boolean ``connected[j, k]`` (``j`` lies in the
  receptive field of ``k``; zero-padding positions are not inputs, so they
  are never connected).
* Each rule then builds, per sample, its ``z_jk`` matrix and its denominator
  ``z_k`` and redistributes ``R_j = sum_k z_jk / z_k * R_k``.

Besides the relevance, every rule returns a ``scale`` array of the same shape:
a first-order bound of how much floating-point rounding in the implementation
under test can move each ``R_j`` (large where a denominator is nearly
cancelled). Tests use it to set tolerances that hold for float32 as well as
float64 without hiding real differences.

Layout conventions: inputs ``a`` have shape ``(batch, n_in)``, relevance ``R``
``(batch, n_out)``; outputs are ``(batch, n_in)``.
"""

from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------
# Geometry of 'valid' / 'same' windows (TensorFlow's conventions)
# --------------------------------------------------------------------------


def output_size_and_pad(size: int, window: int, stride: int, padding: str):
    """Number of output positions along one axis and the padding before it.

    'valid': ``floor((size - window) / stride) + 1`` outputs, no padding.
    'same': ``ceil(size / stride)`` outputs; the total padding
    ``max((out - 1) * stride + window - size, 0)`` is split with the smaller
    half before (TensorFlow puts the extra element at the end).
    """
    if padding == "valid":
        return (size - window) // stride + 1, 0
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + window - size, 0)
        return out, total // 2
    raise ValueError(padding)


def windows_2d(in_hw, window_hw, strides, padding):
    """For each output position ``(oi, oj)``: the in-bounds input positions.

    Returns ``(out_hw, windows)`` where ``windows[(oi, oj)]`` is a list of
    ``(i, j, di, dj)``: input row/column and the offset inside the window.
    Positions that fall into the padding are left out.
    """
    (h, w), (kh, kw), (sh, sw) = in_hw, window_hw, strides
    oh, pad_top = output_size_and_pad(h, kh, sh, padding)
    ow, pad_left = output_size_and_pad(w, kw, sw, padding)
    windows = {}
    for oi in range(oh):
        for oj in range(ow):
            positions = []
            for di in range(kh):
                for dj in range(kw):
                    i = oi * sh - pad_top + di
                    j = oj * sw - pad_left + dj
                    if 0 <= i < h and 0 <= j < w:
                        positions.append((i, j, di, dj))
            windows[(oi, oj)] = positions
    return (oh, ow), windows


# --------------------------------------------------------------------------
# Weighted layers as explicit matrices
# --------------------------------------------------------------------------


def dense_matrix(kernel, input_shape):
    """Explicit ``W[j, k]`` of a Dense layer applied to inputs of ``input_shape``.

    ``input_shape`` excludes the batch axis; Dense acts on the last axis, so
    for rank > 1 inputs the matrix is block diagonal over the leading axes.

    Returns ``(W, connected, output_shape)``.
    """
    kernel = np.asarray(kernel, np.float64)
    n_features, units = kernel.shape
    lead = tuple(input_shape[:-1])
    assert input_shape[-1] == n_features
    n_lead = int(np.prod(lead)) if lead else 1
    W = np.zeros((n_lead * n_features, n_lead * units))
    connected = np.zeros(W.shape, bool)
    for t in range(n_lead):
        for j in range(n_features):
            for k in range(units):
                W[t * n_features + j, t * units + k] = kernel[j, k]
                connected[t * n_features + j, t * units + k] = True
    return W, connected, lead + (units,)


def conv2d_matrix(kernel, input_shape, strides, padding):
    """Explicit ``W[j, k]`` of a channels-last Conv2D (dilation 1).

    ``kernel`` has Keras' shape ``(kh, kw, in_channels, filters)``. Built by
    extracting every patch: output unit ``(oi, oj, f)`` is connected to input
    unit ``(i, j, c)`` with weight ``kernel[di, dj, c, f]``.

    Returns ``(W, connected, output_shape)``.
    """
    kernel = np.asarray(kernel, np.float64)
    kh, kw, channels, filters = kernel.shape
    h, w, c_in = input_shape
    assert c_in == channels
    (oh, ow), windows = windows_2d((h, w), (kh, kw), strides, padding)
    W = np.zeros((h, w, channels, oh, ow, filters))
    connected = np.zeros(W.shape, bool)
    for (oi, oj), positions in windows.items():
        for i, j, di, dj in positions:
            for c in range(channels):
                for f in range(filters):
                    W[i, j, c, oi, oj, f] = kernel[di, dj, c, f]
                    connected[i, j, c, oi, oj, f] = True
    n_in, n_out = h * w * channels, oh * ow * filters
    return W.reshape(n_in, n_out), connected.reshape(n_in, n_out), (oh, ow, filters)


def expand_bias(bias, output_shape):
    """The bias of every output unit (the per-filter/unit bias tiled)."""
    if bias is None:
        return np.zeros(int(np.prod(output_shape)))
    return np.broadcast_to(np.asarray(bias, np.float64), output_shape).reshape(-1).copy()


def linear_forward(a, W, b):
    """``z_k = sum_j a_j W_jk + b_k`` with an explicit loop over output units."""
    a = np.asarray(a, np.float64)
    z = np.zeros((a.shape[0], W.shape[1]))
    for n in range(a.shape[0]):
        for k in range(W.shape[1]):
            z[n, k] = np.sum(a[n] * W[:, k]) + b[k]
    return z


# --------------------------------------------------------------------------
# The redistribution step shared by all rules
# --------------------------------------------------------------------------


def redistribute(zjk, denominator, relevance, magnitude):
    """``R_j = sum_k zjk[j, k] / denominator[k] * relevance[k]``.

    Output units whose denominator is exactly 0 pass no relevance on (the
    documented convention of the rules). ``magnitude[k]`` is the sum of the
    absolute values of all terms that make up ``denominator[k]``; it sets how
    badly rounding may perturb a nearly cancelled denominator.

    Returns ``(R_in, scale)``.
    """
    n_in, n_out = zjk.shape
    result = np.zeros(n_in)
    scale = np.zeros(n_in)
    for k in range(n_out):
        if denominator[k] == 0:
            continue
        contribution = zjk[:, k] / denominator[k] * relevance[k]
        result += contribution
        condition = 1.0 + magnitude[k] / abs(denominator[k])
        scale += np.abs(contribution) * condition
    return result, scale


def _per_sample(function, batch_size, *arrays):
    """Apply ``function(sample_0, sample_1, ...) -> (r, s)`` to every sample."""
    results, scales = [], []
    for n in range(batch_size):
        r, s = function(*(array[n] for array in arrays))
        results.append(r)
        scales.append(s)
    return np.stack(results), np.stack(scales)


def _f64(*arrays):
    return [None if x is None else np.asarray(x, np.float64) for x in arrays]


# --------------------------------------------------------------------------
# Linear rules (Dense / Conv via their explicit matrices)
# --------------------------------------------------------------------------


def lrp_z(a, W, b, R):
    """LRP-0: ``z_jk = a_j w_jk``, ``z_k = sum_j z_jk + b_k``."""
    a, W, b, R = _f64(a, W, b, R)

    def one(a_n, R_n):
        zjk = a_n[:, None] * W
        z = zjk.sum(axis=0) + b
        return redistribute(zjk, z, R_n, np.abs(zjk).sum(axis=0) + np.abs(b))

    return _per_sample(one, a.shape[0], a, R)


def lrp_epsilon(a, W, b, R, epsilon):
    """LRP-epsilon: denominator ``z_k + epsilon * sign(z_k)`` with ``sign(0) = +1``."""
    a, W, b, R = _f64(a, W, b, R)

    def one(a_n, R_n):
        zjk = a_n[:, None] * W
        z = zjk.sum(axis=0) + b
        sign = np.where(z >= 0, 1.0, -1.0)
        return redistribute(zjk, z + epsilon * sign, R_n, np.abs(zjk).sum(axis=0) + np.abs(b) + epsilon)

    return _per_sample(one, a.shape[0], a, R)


def lrp_gamma(a, W, b, R, gamma):
    """LRP-gamma: ``w' = w + gamma * max(0, w)``, ``b' = b + gamma * max(0, b)``."""
    a, W, b, R = _f64(a, W, b, R)
    W_mod = W + gamma * np.maximum(W, 0.0)
    b_mod = b + gamma * np.maximum(b, 0.0)

    def one(a_n, R_n):
        zjk = a_n[:, None] * W_mod
        z = zjk.sum(axis=0) + b_mod
        return redistribute(zjk, z, R_n, np.abs(zjk).sum(axis=0) + np.abs(b_mod))

    return _per_sample(one, a.shape[0], a, R)


def lrp_alpha_beta(a, W, b, R, alpha, beta):
    """LRP-alpha-beta on inputs of any sign.

    ``z_jk = a_j w_jk`` is split by its own sign: ``z_jk^+ = max(z_jk, 0)`` (which
    equals ``a^+ w^+ + a^- w^-``) and ``z_jk^- = min(z_jk, 0)``;
    ``z_k^+ = sum_j z_jk^+ + max(b_k, 0)``, ``z_k^- = sum_j z_jk^- + min(b_k, 0)``;
    ``R_j = sum_k (alpha z_jk^+ / z_k^+ - beta z_jk^- / z_k^-) R_k``.
    """
    a, W, b, R = _f64(a, W, b, R)

    def one(a_n, R_n):
        zjk = a_n[:, None] * W
        z_pos = np.maximum(zjk, 0.0)
        z_neg = np.minimum(zjk, 0.0)
        d_pos = z_pos.sum(axis=0) + np.maximum(b, 0.0)
        d_neg = z_neg.sum(axis=0) + np.minimum(b, 0.0)
        r_pos, s_pos = redistribute(z_pos, d_pos, R_n, np.abs(d_pos))
        r_neg, s_neg = redistribute(z_neg, d_neg, R_n, np.abs(d_neg))
        return alpha * r_pos - beta * r_neg, alpha * s_pos + beta * s_neg

    return _per_sample(one, a.shape[0], a, R)


def lrp_zbox(a, W, R, low, high):
    """z^B: ``z_jk = a_j w_jk - l_j max(w_jk, 0) - h_j min(w_jk, 0)``, no bias.

    ``low`` and ``high`` have the shape of ``a`` (one bound per input unit).
    """
    a, W, R, low, high = _f64(a, W, R, low, high)

    def one(a_n, R_n, l_n, h_n):
        zjk = a_n[:, None] * W - l_n[:, None] * np.maximum(W, 0.0) - h_n[:, None] * np.minimum(W, 0.0)
        z = zjk.sum(axis=0)
        magnitude = (
            np.abs(a_n[:, None] * W).sum(axis=0)
            + np.abs(l_n[:, None] * W).sum(axis=0)
            + np.abs(h_n[:, None] * W).sum(axis=0)
        )
        return redistribute(zjk, z, R_n, magnitude)

    return _per_sample(one, a.shape[0], a, R, low, high)


def lrp_wsquare(W, R):
    """W-square: ``z_jk = w_jk^2`` (independent of the input), no bias."""
    W, R = _f64(W, R)
    zjk = W**2

    def one(R_n):
        return redistribute(zjk, zjk.sum(axis=0), R_n, zjk.sum(axis=0))

    return _per_sample(one, R.shape[0], R)


def lrp_flat(connected, R):
    """Flat: ``z_jk = 1`` for every input ``j`` in the receptive field of ``k``."""
    (R,) = _f64(R)
    zjk = np.asarray(connected, np.float64)

    def one(R_n):
        return redistribute(zjk, zjk.sum(axis=0), R_n, zjk.sum(axis=0))

    return _per_sample(one, R.shape[0], R)


# --------------------------------------------------------------------------
# Weightless layers
# --------------------------------------------------------------------------


def pool2d_windows(input_shape, pool_size, strides, padding):
    """Windows of a channels-last 2D pooling as lists of flat input indices.

    Returns ``(output_shape, windows)`` with ``windows[k]`` the in-bounds input
    indices pooled into flat output index ``k``.
    """
    h, w, channels = input_shape
    (oh, ow), positions = windows_2d((h, w), pool_size, strides, padding)
    windows = []
    for oi in range(oh):
        for oj in range(ow):
            for c in range(channels):
                windows.append([(i * w + j) * channels + c for i, j, _, _ in positions[(oi, oj)]])
    return (oh, ow, channels), windows


def global_pool_windows(input_shape):
    """Windows of a channels-last global 2D pooling: all positions of one channel."""
    h, w, channels = input_shape
    windows = [[(i * w + j) * channels + c for i in range(h) for j in range(w)] for c in range(channels)]
    return (channels,), windows


def norm_pooling(a, windows, R):
    """Average pooling as a linear layer with weights ``1 / n_k`` (LRP-0).

    ``z_jk = a_j / n_k`` for the ``n_k`` inputs ``j`` of window ``k``.
    """
    a, R = _f64(a, R)
    n_in = a.shape[1]

    def one(a_n, R_n):
        zjk = np.zeros((n_in, len(windows)))
        for k, window in enumerate(windows):
            for j in window:
                zjk[j, k] = a_n[j] / len(window)
        return redistribute(zjk, zjk.sum(axis=0), R_n, np.abs(zjk).sum(axis=0))

    return _per_sample(one, a.shape[0], a, R)


def max_route(a, windows, R):
    """Winner-take-all: each window's relevance goes to its largest input."""
    a, R = _f64(a, R)
    result = np.zeros_like(a)
    for n in range(a.shape[0]):
        for k, window in enumerate(windows):
            winner = max(window, key=lambda j: a[n, j])
            result[n, winner] += R[n, k]
    return result


def norm_add(inputs, R):
    """``Add``: ``R_i = x_i / sum_i' x_i' * R`` element-wise (0 where the sum is 0).

    ``inputs`` is a list of arrays of one shape; returns ``(list of R_i, scale)``.
    """
    inputs = [np.asarray(x, np.float64).reshape(-1) for x in inputs]
    shape = np.shape(R)
    R = np.asarray(R, np.float64).reshape(-1)
    results = [np.zeros_like(R) for _ in inputs]
    scales = [np.zeros_like(R) for _ in inputs]
    for e in range(R.size):
        total = sum(x[e] for x in inputs)
        if total == 0:
            continue
        magnitude = sum(abs(x[e]) for x in inputs)
        for i, x in enumerate(inputs):
            results[i][e] = x[e] / total * R[e]
            scales[i][e] = abs(results[i][e]) * (1.0 + magnitude / abs(total))
    return [r.reshape(shape) for r in results], [s.reshape(shape) for s in scales]


def concatenate_split(input_shapes, R, axis):
    """``Concatenate``: each input gets its own slice of the relevance."""
    R = np.asarray(R, np.float64)
    axis = axis % R.ndim
    pieces, start = [], 0
    for shape in input_shapes:
        size = shape[axis]
        index = [slice(None)] * R.ndim
        index[axis] = slice(start, start + size)
        pieces.append(R[tuple(index)].copy())
        start += size
    assert start == R.shape[axis]
    return pieces
