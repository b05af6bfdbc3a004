"""Reference "explanations" to compare real ones against: the input itself and noise.

iNNvestigate offers both (``"input"`` and ``"random"``); evaluation metrics
such as pixel flipping need them as lower bounds.
"""

from __future__ import annotations

import tensorflow as tf

from tfxai import validation
from tfxai.analyzers import batched
from tfxai.analyzers.base import Analyzer


class InputAnalyzer(Analyzer):
    """The input as its own explanation (iNNvestigate's ``Input``).

    Integer inputs are returned as floats of the model output's type.
    """

    def relevance(self, xs, forward):
        return [x if batched.is_float(x) else tf.cast(x, forward.output.dtype) for x in xs]


class RandomAnalyzer(Analyzer):
    """Gaussian noise as the explanation (iNNvestigate's ``Random``).

    The noise of a sample is drawn with stateless random ops seeded by
    ``seed`` and a fingerprint of the sample's values, so it is reproducible
    and independent of the batch the sample is in; equal samples get equal
    noise.

    Parameters
    ----------
    model : keras.Model
        The model whose inputs are "explained".
    stddev : float
        Standard deviation of the noise (default 1, as iNNvestigate).
    seed : int
        Seed of the noise (default 0).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.
    """

    def __init__(self, model, *, stddev: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(model, **kwargs)
        self.stddev = validation.number("stddev", stddev, minimum=0)
        self.seed = validation.integer("seed", seed)

    def relevance(self, xs, forward):
        keys = tf.bitwise.bitwise_xor(fingerprint(xs), tf.constant(self.seed, tf.int64))
        relevance = []
        for index, x in enumerate(xs):
            dtype = x.dtype if batched.is_float(x) else forward.output.dtype
            sample_shape = tf.shape(x)[1:]

            def draw(key, index=index, dtype=dtype, sample_shape=sample_shape):
                seed = tf.stack([key, tf.constant(index, tf.int64)])
                return tf.random.stateless_normal(sample_shape, seed=seed, dtype=dtype, alg="philox")

            noise = tf.map_fn(draw, keys, fn_output_signature=tf.TensorSpec(x.shape[1:], dtype))
            relevance.append(tf.constant(self.stddev, dtype) * noise)
        return relevance


def fingerprint(xs):
    """An int64 per sample that depends on every bit of its values (exact, order-free).

    Each value's 32-bit pattern is split into two 16-bit halves, weighted by
    position-dependent factors below 2**16 and summed in int64: no overflow
    for samples of fewer than 2**30 values, so the result is the same on every
    device and in every batch.
    """
    total = None
    for index, x in enumerate(xs):
        flat = tf.reshape(tf.cast(x, tf.float32), (tf.shape(x)[0], -1))
        bits = tf.cast(tf.bitcast(flat, tf.uint32), tf.int64)
        position = tf.range(tf.shape(flat)[1], dtype=tf.int64)
        weight_low = (position * 40503 + 1) % 65521 + 1
        weight_high = (position * 9973 + 7) % 65519 + 1
        part = tf.reduce_sum((bits % 65536) * weight_low + (bits // 65536) * weight_high, axis=1)
        total = part if total is None else tf.bitwise.bitwise_xor(total, part + index * 1000003)
    return total
