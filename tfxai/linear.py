"""The linear part of Keras layers, as functions of substitutable weights.

LRP rules evaluate a layer's pre-activation ``z = W a + b`` with modified
inputs and weights (``rho(W)``, ``W**2``, ones...). This module gives, for every
supported weighted layer type, a :class:`LinearMap`: a pure function
``forward(x, kernel, bias)`` plus a way to read the layer's current weights. It
only uses public layer attributes (``kernel``, ``bias``, ``strides``...), so
LoRA- and quantization-aware ``kernel`` properties are respected.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class LinearMap:
    """``z = forward(x, kernel, bias)``, with the layer's weights as default.

    Attributes
    ----------
    forward : callable
        ``forward(x, kernel, bias) -> z``; ``bias`` may be ``None``.
    weights : callable
        ``weights() -> (kernel, bias or None)`` reading the layer's variables.
    """

    forward: Callable
    weights: Callable


def dense_forward(x, kernel, bias):
    """``x @ kernel + bias`` over the last axis (any input rank)."""
    z = tf.tensordot(x, kernel, axes=[[x.shape.rank - 1], [0]])
    if x.shape.rank > 2:
        z.set_shape(x.shape[:-1].concatenate(kernel.shape[-1:]))
    return z if bias is None else z + bias


def _conv_forward(layer) -> Callable:
    rank = len(layer.kernel_size)
    channels_last = layer.data_format == "channels_last"
    padding = layer.padding

    def forward(x, kernel, bias):
        conv_padding = padding
        if padding == "causal":
            left = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
            pads = [[0, 0], [left, 0], [0, 0]] if channels_last else [[0, 0], [0, 0], [left, 0]]
            x = tf.pad(x, pads)
            conv_padding = "valid"
        z = keras.ops.conv(
            x,
            kernel,
            strides=list(layer.strides),
            padding=conv_padding,
            dilation_rate=layer.dilation_rate,
            data_format=layer.data_format,
        )
        if bias is None:
            return z
        shape = (1,) * (rank + 1) + (-1,) if channels_last else (1, -1) + (1,) * rank
        return z + tf.reshape(bias, shape)

    return forward


def _kernel_and_bias(layer) -> Callable:
    def weights():
        bias = layer.bias if layer.use_bias else None
        return tf.convert_to_tensor(layer.kernel), None if bias is None else tf.convert_to_tensor(bias)

    return weights


def dense_map(layer) -> LinearMap:
    """LinearMap of a ``keras.layers.Dense``."""
    return LinearMap(forward=dense_forward, weights=_kernel_and_bias(layer))


def conv_map(layer) -> LinearMap:
    """LinearMap of a ``keras.layers.Conv1D/2D/3D``."""
    return LinearMap(forward=_conv_forward(layer), weights=_kernel_and_bias(layer))


def batch_norm_scale_shift(layer):
    """Inference-mode BatchNormalization as ``x * scale + shift`` (per channel)."""
    variance = tf.convert_to_tensor(layer.moving_variance)
    scale = tf.math.rsqrt(variance + layer.epsilon)
    if layer.gamma is not None:
        scale = scale * tf.convert_to_tensor(layer.gamma)
    shift = -tf.convert_to_tensor(layer.moving_mean) * scale
    if layer.beta is not None:
        shift = shift + tf.convert_to_tensor(layer.beta)
    return scale, shift


def channel_broadcast(layer, rank: int) -> Callable:
    """Reshape a per-channel vector of a normalisation layer to broadcast on inputs."""
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
    axis = axis % rank

    def reshape(vector):
        shape = [1] * rank
        shape[axis] = -1
        return tf.reshape(vector, shape)

    return reshape


def batch_norm_map(layer) -> LinearMap:
    """A standalone BatchNormalization as an element-wise affine LinearMap.

    The "kernel" is the per-channel scale, the "bias" the per-channel shift;
    rules modify them like any weights.
    """

    def forward(x, kernel, bias):
        broadcast = channel_broadcast(layer, x.shape.rank)
        z = x * broadcast(kernel)
        return z if bias is None else z + broadcast(bias)

    return LinearMap(forward=forward, weights=lambda: batch_norm_scale_shift(layer))


def output_channel_axis(layer) -> int:
    """Axis of a Dense/Conv layer's output that holds its units/filters."""
    if isinstance(layer, keras.layers.Dense):
        return -1
    return -1 if layer.data_format == "channels_last" else 1


LINEAR_MAPS = {
    keras.layers.Dense: dense_map,
    keras.layers.Conv1D: conv_map,
    keras.layers.Conv2D: conv_map,
    keras.layers.Conv3D: conv_map,
}
"""Weighted layer types whose linear part tfxai computes itself."""


def linear_map(layer) -> LinearMap | None:
    """The LinearMap of ``layer``, or ``None`` if its type has none."""
    for layer_type in type(layer).__mro__:
        if layer_type in LINEAR_MAPS:
            return LINEAR_MAPS[layer_type](layer)
    return None
