"""Class activation maps: Grad-CAM and Grad-CAM++.

The explanation lives on a convolutional feature map ``A`` (channels ``c``,
spatial positions ``ij``) and is upsampled to the input's spatial size:

* Grad-CAM (Selvaraju et al. 2017): ``w_c = mean_ij dy/dA_cij``,
  ``L = ReLU(sum_c w_c A_c)``.
* Grad-CAM++ (Chattopadhyay et al. 2018): ``w_c = sum_ij a_cij ReLU(dy/dA_cij)``
  with ``a_cij = g^2 / (2 g^2 + sum_ij A_cij g^3)``, ``g = dy/dA_cij`` (the
  closed form for an exponential of the score, as the reference
  implementations use it).

By default the feature map is the output of the model's last convolution (in
forward order, nested models included), taken after the activation and
BatchNormalization layers that directly follow it; ``layer=`` names another
layer, whose output is then used as it is. 1D (time series), 2D and 3D
feature maps are supported.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf

from tfxai.analyzers import batched
from tfxai.analyzers.base import Analyzer
from tfxai.canonizers import KEEP_INTERMEDIATES, activation_name
from tfxai.errors import EmptyMapWarning, ModelError, ParameterError, ParameterTypeError
from tfxai.graph import build_view, raw_op_classes

L = keras.layers

CONV_LAYERS = (
    L.Conv1D,
    L.Conv2D,
    L.Conv3D,
    L.SeparableConv1D,
    L.SeparableConv2D,
    L.DepthwiseConv1D,
    L.DepthwiseConv2D,
    L.Conv1DTranspose,
    L.Conv2DTranspose,
    L.Conv3DTranspose,
)
"""Layers whose output is a convolutional feature map."""


class GradCAM(Analyzer):
    """Grad-CAM (Selvaraju et al. 2017).

    The map is upsampled (linear interpolation with half-pixel centres, as
    ``tf.image.resize(..., "bilinear")``) to the spatial size of every model
    input the feature map depends on and that has as many axes as the
    feature map; each channel of such an input carries the same map. Inputs
    the map does not depend on get zeros. Values are not normalised (divide
    by the per-sample maximum for display).

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    layer : str, optional
        Name of the layer whose output is the feature map (a node name such as
        ``"backbone/conv5"`` or ``"shared@1"`` picks one call of a nested or
        shared layer). Default: the last convolution of the model, after the
        activation / BatchNormalization layers that directly follow it.
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    Attributes
    ----------
    feature_map : str
        Name of the node whose output is the feature map.

    References
    ----------
    Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra (2017). Grad-CAM: visual
    explanations from deep networks via gradient-based localization. ICCV.
    """

    canonizers = KEEP_INTERMEDIATES  # the feature map must stay a tensor of the view

    def __init__(self, model, *, layer: str | None = None, **kwargs):
        if layer is not None and not isinstance(layer, str):
            raise ParameterTypeError(f"layer must be a layer name (str) or None. Received: layer={layer!r}")
        super().__init__(model, **kwargs)
        node, self.key = _feature_map(model, self.view, layer)
        self.feature_map = node.name
        rank = len(self.view.shapes[self.key])
        if rank < 3:
            raise ModelError(
                f"Grad-CAM needs a feature map with spatial axes; the output of {node.name!r} has shape "
                f"{self.view.shapes[self.key]}. Name a convolutional layer with layer=."
            )
        channels_first = getattr(node.layer, "data_format", "channels_last") == "channels_first"
        self.channel_axis = 1 if channels_first else rank - 1
        self.spatial_axes = [a for a in range(1, rank) if a != self.channel_axis]
        sources = _source_inputs(self.view, self.key)
        self.targets = [
            key in sources and len(spec.shape) == rank and tf.as_dtype(spec.dtype).is_floating
            for key, spec in zip(self.view.inputs, self.input_specs)
        ]
        if not any(self.targets):
            raise ModelError(
                f"Grad-CAM found no model input with the feature map's {rank - 2} spatial axes that "
                f"{node.name!r} depends on. Name another layer with layer=."
            )

    def channel_weights(self, grads, feature_map):
        """``w_c`` of each channel, keeping the spatial axes (size 1)."""
        return tf.reduce_mean(grads, axis=self.spatial_axes, keepdims=True)

    def watched(self, xs):
        return [x for x in xs if batched.is_float(x)]

    def relevance(self, xs, forward):
        feature_map = forward.values[self.key]
        grads = forward.tape.gradient(forward.output, feature_map, output_gradients=forward.mask)
        weights = self.channel_weights(grads, feature_map)
        cam = tf.nn.relu(tf.reduce_sum(weights * feature_map, axis=self.channel_axis))
        return [
            self._to_input(cam, x) if target else tf.zeros(tf.shape(x), cam.dtype)
            for x, target in zip(xs, self.targets)
        ]

    def review(self, relevance):
        """Warn (:class:`~tfxai.errors.EmptyMapWarning`) about samples whose map is zero everywhere."""
        maps = [r for r, target in zip(relevance, self.targets) if target]
        empty = np.flatnonzero(np.logical_and.reduce([~np.any(m.reshape(len(m), -1), axis=1) for m in maps]))
        if len(empty):
            shown = empty[:20].tolist() + (["..."] if len(empty) > 20 else [])
            warnings.warn(
                f"{type(self).__name__} map is zero everywhere for {len(empty)} of {len(maps[0])} samples "
                f"(indices {shown}): at {self.feature_map!r} no position has positive weighted evidence "
                "for the explained output. Try an earlier layer with layer=, or another method.",
                EmptyMapWarning,
                stacklevel=3,
            )

    def _to_input(self, cam, x):
        """Upsample ``cam`` (batch + spatial axes) to ``x``'s spatial size; repeat over channels."""
        for position, axis in enumerate(self.spatial_axes):
            cam = resize_linear(cam, position + 1, tf.shape(x)[axis])
        cam = tf.expand_dims(cam, self.channel_axis)
        return tf.broadcast_to(tf.cast(cam, x.dtype), tf.shape(x))


class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018).

    Same parameters as :class:`GradCAM`; only the channel weights differ.

    References
    ----------
    Chattopadhyay, Sarkar, Howlader, Balasubramanian (2018). Grad-CAM++:
    generalized gradient-based visual explanations for deep convolutional
    networks. WACV.
    """

    def channel_weights(self, grads, feature_map):
        g2 = tf.square(grads)
        sums = tf.reduce_sum(feature_map, axis=self.spatial_axes, keepdims=True)
        alpha = tf.math.divide_no_nan(g2, 2.0 * g2 + sums * g2 * grads)
        alpha = tf.where(tf.equal(grads, 0.0), tf.zeros_like(alpha), alpha)
        return tf.reduce_sum(alpha * tf.nn.relu(grads), axis=self.spatial_axes, keepdims=True)


def resize_linear(x, axis: int, size):
    """Linear interpolation of ``x`` along ``axis`` to ``size`` samples.

    Half-pixel centres with clamped edges, the convention of
    ``tf.image.resize(..., method="bilinear")`` without antialiasing; applied
    axis by axis it is bilinear (2D) or trilinear (3D) resizing.
    """
    in_size = tf.shape(x)[axis]
    scale = tf.cast(in_size, tf.float64) / tf.cast(size, tf.float64)
    source = (tf.cast(tf.range(size), tf.float64) + 0.5) * scale - 0.5
    source = tf.clip_by_value(source, 0.0, tf.cast(in_size - 1, tf.float64))
    low = tf.cast(tf.floor(source), tf.int32)
    high = tf.minimum(low + 1, in_size - 1)
    shape = [1] * x.shape.rank
    shape[axis] = -1
    fraction = tf.reshape(tf.cast(source - tf.floor(source), x.dtype), shape)
    return tf.gather(x, low, axis=axis) * (1 - fraction) + tf.gather(x, high, axis=axis) * fraction


def _feature_map(model, view, layer):
    """``(node, tensor key)`` of the feature map in the canonized ``view``."""
    raw = build_view(model)
    if layer is None:
        convs = [node for node in raw.nodes if isinstance(node.layer, CONV_LAYERS)]
        if not convs:
            raise ModelError(
                f"Grad-CAM found no convolutional layer in model {model.name!r}. "
                "Name the layer whose output is the feature map with layer=."
            )
        node = _through_elementwise(raw, convs[-1])
    else:
        node = _node_named(raw, layer)
    key = node.outputs[0]
    if key in view.producers():
        return node, key
    # A BatchNormalization folded into the layer: its output is the feature map.
    folded = [n for n in view.nodes if node.name in n.origin and n.params is not None]
    if folded:
        return node, folded[0].outputs[0]
    raise ModelError(f"The output of {node.name!r} is not a tensor of the analysed graph.")


ELEMENTWISE = (
    L.Activation,
    L.ReLU,
    L.LeakyReLU,
    L.ELU,
    L.PReLU,
    L.BatchNormalization,
) + raw_op_classes("Relu", "Relu6")
"""Layers that may follow a convolution inside its feature map (activation, normalisation)."""


def _through_elementwise(raw, node):
    """The last node of the chain ``conv -> activation/BatchNorm ...`` that starts at ``node``."""
    consumers = raw.consumers()
    while True:
        following = consumers.get(node.outputs[0], [])
        if len(following) != 1 or not isinstance(following[0].layer, ELEMENTWISE):
            return node
        layer = following[0].layer
        if isinstance(layer, L.Activation) and activation_name(layer.activation) == "softmax":
            return node
        node = following[0]


def _node_named(raw, layer: str):
    """The node of a layer called once, or the node named exactly ``layer``."""
    matches = [node for node in raw.nodes if node.layer.name == layer]
    if not matches:
        matches = [node for node in raw.nodes if node.name == layer]
    if not matches:
        names = ", ".join(node.name for node in raw.nodes)
        raise ParameterError(f"Model {raw.name!r} has no layer named {layer!r}. Layers: {names}")
    if len(matches) > 1:
        calls = ", ".join(node.name for node in matches)
        raise ParameterError(
            f"Layer {layer!r} is called {len(matches)} times ({calls}); pass one of these names."
        )
    return matches[0]


def _source_inputs(view, key) -> set:
    """Model input keys that ``key`` depends on."""
    producers = view.producers()
    needed, seen = {key}, set()
    while needed:
        current = needed.pop()
        seen.add(current)
        node = producers.get(current)
        if node is not None:
            needed.update(k for k in node.inputs if k not in seen)
    return seen.intersection(view.inputs)
