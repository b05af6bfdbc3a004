"""Evaluating many variants of one batch inside a ``tf.function``.

SmoothGrad (noisy copies), Integrated Gradients (points on a path) and
Occlusion (occluded copies) each evaluate the model on ``n`` variants of every
sample. The variants are stacked into one large batch of ``c * B`` rows,
variant-major (row ``j * B + b`` is variant ``j`` of sample ``b``), ``c``
variants at a time, and the partial results are combined in a
``tf.while_loop``: memory stays bounded by ``chunk_size`` and the graph holds
one copy of the model, whatever ``n`` is.
"""

from __future__ import annotations

import tensorflow as tf


def fold(step, total: int, chunk_size: int, combine):
    """Run ``step`` over ``range(total)`` in chunks and combine the results.

    Parameters
    ----------
    step : callable
        ``step(indices, valid) -> result`` for an int32 vector of
        ``chunk_size`` indices (the last chunk is padded by repeating the last
        index) and a 0/1 float vector marking the real ones.
    total : int
        Number of variants.
    chunk_size : int
        Variants per call of ``step``.
    combine : callable
        ``combine(state, result) -> state``, e.g. a sum.

    Returns
    -------
    The combined result (a list of tensors).
    """
    chunk = min(int(chunk_size), int(total))
    n_chunks = -(-int(total) // chunk)

    def call(i):
        indices = i * chunk + tf.range(chunk)
        valid = tf.cast(indices < total, tf.float32)
        return list(step(tf.minimum(indices, total - 1), valid))

    state = call(tf.constant(0))
    if n_chunks == 1:
        return state

    def body(i, current):
        merged = combine(current, call(i))
        for new, old in zip(merged, current):
            new.set_shape(old.shape)
        return i + 1, merged

    _, state = tf.while_loop(lambda i, _: i < n_chunks, body, (tf.constant(1), state))
    return list(state)


def add(state, result):
    """``combine`` for :func:`fold` that sums element-wise."""
    return [a + b for a, b in zip(state, result)]


def weighted_sum(weights, rows, chunk: int):
    """``sum_j weights[j] * variant_j`` of stacked rows ``(chunk * B, ...)`` -> ``(B, ...)``."""
    variants = split_variants(rows, chunk)
    return tf.tensordot(tf.cast(weights, rows.dtype), variants, axes=[[0], [0]])


def stack_variants(variants):
    """``(c, B, ...)`` -> ``(c * B, ...)``, variant-major."""
    shape = tf.shape(variants)
    return tf.reshape(variants, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))


def split_variants(rows, chunk: int):
    """``(c * B, ...)`` -> ``(c, B, ...)``; the inverse of :func:`stack_variants`."""
    shape = tf.shape(rows)
    return tf.reshape(rows, tf.concat([[chunk, shape[0] // chunk], shape[1:]], axis=0))


def repeat_variants(x, chunk: int):
    """``chunk`` copies of a batch, stacked: ``(B, ...)`` -> ``(chunk * B, ...)``."""
    return stack_variants(tf.broadcast_to(x[None], tf.concat([[chunk], tf.shape(x)], axis=0)))


def expand_like(vector, x):
    """Reshape a per-variant vector ``(c,)`` to broadcast against ``(c, B, ...)``."""
    return tf.reshape(vector, [-1] + [1] * x.shape.rank)


def is_float(x) -> bool:
    """Whether a tensor holds real numbers (integer inputs are token ids, not varied)."""
    return x.dtype.is_floating


def scatter_rows(values, indices, valid, total: int):
    """Rows ``values`` ``(c, B)`` of variants ``indices`` placed in a ``(total, B)`` zero tensor.

    Padded entries (``valid == 0``) contribute nothing, so summing the results
    of :func:`fold`'s chunks with :func:`add` collects every variant's row once.
    """
    placement = tf.one_hot(indices, total, dtype=values.dtype) * tf.cast(valid, values.dtype)[:, None]
    return tf.tensordot(placement, values, axes=[[0], [0]])


def fixed_selection(mask, chunk: int):
    """A ``select`` that marks, in every stacked variant, the neurons chosen on the clean input."""
    return lambda y: repeat_variants(mask, chunk)
