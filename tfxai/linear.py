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

from tfxai.errors import ParameterTypeError


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


def add_channel_bias(layer, z, bias):
    """``z + bias`` with ``bias`` broadcast along the channel axis of ``layer``'s data format."""
    if bias is None:
        return z
    rank = z.shape.rank - 2
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
    shape = (1,) * (rank + 1) + (-1,) if channels_last else (1, -1) + (1,) * rank
    return z + tf.reshape(bias, shape)


def _conv_forward(layer) -> Callable:
    channels_last = layer.data_format == "channels_last"
    padding = layer.padding
    grouped = getattr(layer, "groups", 1) > 1

    def forward(x, kernel, bias):
        conv_padding = padding
        if padding == "causal":
            left = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
            pads = [[0, 0], [left, 0], [0, 0]] if channels_last else [[0, 0], [0, 0], [left, 0]]
            x = tf.pad(x, pads)
            conv_padding = "valid"
        if grouped:
            # keras.ops.conv compiles grouped convolutions with XLA on CPU; TensorFlow's own
            # kernel computes them (and their gradient) directly.
            z = tf.nn.convolution(
                x,
                kernel,
                strides=list(layer.strides),
                padding=conv_padding.upper(),
                dilations=list(layer.dilation_rate),
                data_format=_tf_data_format(layer.data_format, x.shape.rank),
            )
        else:
            z = keras.ops.conv(
                x,
                kernel,
                strides=list(layer.strides),
                padding=conv_padding,
                dilation_rate=layer.dilation_rate,
                data_format=layer.data_format,
            )
        return add_channel_bias(layer, z, bias)

    return forward


def _tf_data_format(data_format: str, rank: int) -> str:
    spatial = "DHW"[3 - (rank - 2) :]
    return f"N{spatial}C" if data_format == "channels_last" else f"NC{spatial}"


def _kernel_and_bias(layer) -> Callable:
    def weights():
        bias = layer.bias if layer.use_bias else None
        return tf.convert_to_tensor(layer.kernel), None if bias is None else tf.convert_to_tensor(bias)

    return weights


def dense_map(layer) -> LinearMap:
    """LinearMap of a ``keras.layers.Dense``."""
    return LinearMap(forward=dense_forward, weights=_kernel_and_bias(layer))


def einsum_dense_map(layer) -> LinearMap:
    """LinearMap of a ``keras.layers.EinsumDense``: ``einsum(equation, x, kernel) + bias``."""

    def forward(x, kernel, bias):
        z = tf.einsum(layer.equation, x, kernel)
        return z if bias is None else z + bias

    def weights():
        bias = getattr(layer, "bias", None)
        return tf.convert_to_tensor(layer.kernel), None if bias is None else tf.convert_to_tensor(bias)

    return LinearMap(forward=forward, weights=weights)


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


def depthwise_forward(layer) -> Callable:
    """``forward(x, kernel, bias)`` of a depthwise convolution with ``layer``'s geometry.

    ``kernel`` has shape ``(*kernel_size, channels, depth_multiplier)``.
    """

    def forward(x, kernel, bias):
        z = keras.ops.depthwise_conv(
            x,
            kernel,
            strides=layer.strides,
            padding=layer.padding,
            dilation_rate=layer.dilation_rate,
            data_format=layer.data_format,
        )
        return add_channel_bias(layer, z, bias)

    return forward


def depthwise_map(layer) -> LinearMap:
    """LinearMap of a ``keras.layers.DepthwiseConv1D/2D``."""
    return LinearMap(forward=depthwise_forward(layer), weights=_kernel_and_bias(layer))


def separable_kernel(depthwise_kernel, pointwise_kernel):
    """The kernel of the one convolution a separable convolution computes.

    ``W[..., c, f] = sum_m depthwise[..., c, m] * pointwise[c * M + m, f]`` for
    a depthwise kernel ``(*kernel_size, C, M)`` and a pointwise kernel
    ``(1, ..., C * M, F)``: the result has shape ``(*kernel_size, C, F)``.
    """
    channels, multiplier = depthwise_kernel.shape[-2:]
    pointwise = tf.reshape(pointwise_kernel, (channels, multiplier, -1))
    return tf.einsum("...cm,cmf->...cf", depthwise_kernel, pointwise)


def separable_map(layer) -> LinearMap:
    """LinearMap of a ``keras.layers.SeparableConv1D/2D`` as ONE convolution.

    The depthwise and the pointwise convolution are consecutive linear maps
    with nothing between them, so, like a BatchNorm after a convolution, they
    are one linear layer for LRP: a convolution with the layer's strides,
    padding and dilation and the kernel :func:`separable_kernel`. Every rule
    then propagates relevance through both convolutions at once, with the
    signs of their combined weights. (Propagating through each half in turn
    would hand rules such as z+ and gamma the depthwise half's signed output,
    although they assume a ReLU after each linear layer: z+ then loses
    relevance and gamma amplifies it.)
    """

    def forward(x, kernel, bias):
        z = keras.ops.conv(
            x,
            kernel,
            strides=layer.strides,
            padding=layer.padding,
            dilation_rate=layer.dilation_rate,
            data_format=layer.data_format,
        )
        return add_channel_bias(layer, z, bias)

    def weights():
        depthwise = tf.convert_to_tensor(layer.depthwise_kernel)
        kernel = separable_kernel(depthwise, tf.convert_to_tensor(layer.pointwise_kernel))
        return kernel, tf.convert_to_tensor(layer.bias) if layer.use_bias else None

    return LinearMap(forward=forward, weights=weights)


def conv_transpose_map(layer) -> LinearMap:
    """LinearMap of a ``keras.layers.Conv1DTranspose/2DTranspose/3DTranspose``.

    Its kernel has shape ``(*kernel_size, filters, input_channels)``.
    """

    def forward(x, kernel, bias):
        z = keras.ops.conv_transpose(
            x,
            kernel,
            strides=list(layer.strides),
            padding=layer.padding,
            output_padding=layer.output_padding,
            data_format=layer.data_format,
            dilation_rate=layer.dilation_rate,
        )
        return add_channel_bias(layer, z, bias)

    return LinearMap(forward=forward, weights=_kernel_and_bias(layer))


def layer_scale_map(layer) -> LinearMap:
    """A ConvNeXt ``LayerScale`` (``x * gamma`` per channel) as an element-wise LinearMap."""

    def forward(x, kernel, bias):
        z = x * kernel
        return z if bias is None else z + bias

    return LinearMap(forward=forward, weights=lambda: (tf.convert_to_tensor(layer.gamma), None))


def _frozen_layer_norm(layer) -> Callable:
    def function(x):
        rank = x.shape.rank
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        axes = sorted(a % rank for a in axes)
        broadcast = [1] * rank
        for a in axes:
            broadcast[a] = x.shape[a]
        mean, variance = tf.nn.moments(x, axes, keepdims=True)
        inv = tf.stop_gradient(tf.math.rsqrt(variance + layer.epsilon))
        y = x * inv if layer.rms_scaling else (x - mean) * inv
        if layer.gamma is not None:
            y = y * tf.reshape(tf.cast(layer.gamma, x.dtype), broadcast)
        if layer.beta is not None and not layer.rms_scaling:
            y = y + tf.reshape(tf.cast(layer.beta, x.dtype), broadcast)
        return y

    return function


def _frozen_group_norm(layer) -> Callable:
    def function(x):
        rank = x.shape.rank
        dynamic = tf.shape(x)
        group_shape = [dynamic[i] if d is None else d for i, d in enumerate(x.shape)]
        group_shape[0] = -1
        group_shape[layer.axis] = x.shape[layer.axis] // layer.groups
        group_shape.insert(layer.axis, layer.groups)
        grouped = tf.reshape(x, group_shape)
        reduction = list(range(1, rank + 1))
        reduction.pop(-2 if layer.axis == -1 else layer.axis - 1)
        broadcast = [1] * rank
        broadcast[layer.axis] = x.shape[layer.axis] // layer.groups
        broadcast.insert(layer.axis, layer.groups)
        mean, variance = tf.nn.moments(grouped, reduction, keepdims=True)
        y = (grouped - mean) * tf.stop_gradient(tf.math.rsqrt(variance + layer.epsilon))
        if layer.scale:
            y = y * tf.reshape(tf.cast(layer.gamma, x.dtype), broadcast)
        if layer.center:
            y = y + tf.reshape(tf.cast(layer.beta, x.dtype), broadcast)
        return tf.reshape(y, dynamic)

    return function


FROZEN_SCALE_FUNCTIONS = {
    keras.layers.LayerNormalization: _frozen_layer_norm,
    keras.layers.GroupNormalization: _frozen_group_norm,
}
"""Normalisation layers tfxai can evaluate with their scale held constant."""


def frozen_scale_function(layer) -> Callable:
    """``f(x)``: the normalisation ``layer`` with its scale ``1 / sigma`` held constant.

    ``f`` computes the layer's output, but ``sigma`` (the standard deviation
    over the normalised axes) is a constant for differentiation, so ``f`` is
    linear in ``x`` around the point it is evaluated at: mean subtraction,
    then a fixed per-element scale (Ali et al. 2022).
    """
    for layer_type in type(layer).__mro__:
        if layer_type in FROZEN_SCALE_FUNCTIONS:
            return FROZEN_SCALE_FUNCTIONS[layer_type](layer)
    raise ParameterTypeError(
        f"No constant-scale form of {type(layer).__name__}; expected one of "
        f"{[t.__name__ for t in FROZEN_SCALE_FUNCTIONS]}."
    )


def output_channel_axis(layer) -> int:
    """Axis of a Dense/Conv layer's output that holds its units/filters."""
    if isinstance(layer, keras.layers.Dense):
        return -1
    return -1 if layer.data_format == "channels_last" else 1


def scale_output_channels(op_type: type, kernel, scale):
    """The kernel of a linear node of type ``op_type`` with output channel ``c`` scaled by ``scale[c]``.

    Folding a per-channel affine map that follows a linear node (BatchNorm,
    LayerScale) multiplies the kernel along its output channels: the last axis
    for Dense and Conv, ``(channels, depth_multiplier)`` for depthwise
    convolutions, the second-to-last axis for transposed convolutions.
    """
    if issubclass(op_type, DEPTHWISE):
        return kernel * tf.reshape(scale, kernel.shape[-2:])
    if issubclass(op_type, TRANSPOSED):
        return kernel * tf.reshape(scale, (-1, 1))
    return kernel * scale


def normalization_scale_shift(layer):
    """``(scale, shift)`` of a per-channel affine layer (inference BatchNorm or LayerScale)."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return batch_norm_scale_shift(layer)
    return tf.convert_to_tensor(layer.gamma), None


DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
"""Depthwise convolutions (kernel ``(*kernel_size, channels, depth_multiplier)``)."""

TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
"""Transposed convolutions (kernel ``(*kernel_size, filters, input_channels)``)."""

LINEAR_MAPS = {
    keras.layers.Dense: dense_map,
    keras.layers.EinsumDense: einsum_dense_map,
    keras.layers.Conv1D: conv_map,
    keras.layers.Conv2D: conv_map,
    keras.layers.Conv3D: conv_map,
    keras.layers.DepthwiseConv1D: depthwise_map,
    keras.layers.DepthwiseConv2D: depthwise_map,
    keras.layers.SeparableConv1D: separable_map,
    keras.layers.SeparableConv2D: separable_map,
    keras.layers.Conv1DTranspose: conv_transpose_map,
    keras.layers.Conv2DTranspose: conv_transpose_map,
    keras.layers.Conv3DTranspose: conv_transpose_map,
}
"""Weighted layer types whose linear part tfxai computes itself."""


def linear_map(layer) -> LinearMap | None:
    """The LinearMap of ``layer``, or ``None`` if its type has none."""
    for layer_type in type(layer).__mro__:
        if layer_type in LINEAR_MAPS:
            return LINEAR_MAPS[layer_type](layer)
    return None
