"""Groups of Keras layer classes that several modules reason about.

Plain tuples with no rules attached: :mod:`tfxai.registry` gives each group its
default rule, :mod:`tfxai.folding` folds affine maps through some of them and
:mod:`tfxai.signs` knows which keep a tensor non-negative.
"""

from __future__ import annotations

import keras

from tfxai.graph import application_layer_classes

L = keras.layers

NO_OPS = (
    L.Dropout,
    L.SpatialDropout1D,
    L.SpatialDropout2D,
    L.SpatialDropout3D,
    L.GaussianNoise,
    L.GaussianDropout,
    L.AlphaDropout,
    L.ActivityRegularization,
    L.Identity,
) + application_layer_classes(("convnext", "StochasticDepth"))
"""Layers that are the identity at inference."""

ROUTING_LAYERS = (
    L.Flatten,
    L.Reshape,
    L.Permute,
    L.RepeatVector,
    L.ZeroPadding1D,
    L.ZeroPadding2D,
    L.ZeroPadding3D,
    L.Cropping1D,
    L.Cropping2D,
    L.Cropping3D,
    L.Concatenate,
    L.MaxPooling1D,
    L.MaxPooling2D,
    L.MaxPooling3D,
    L.GlobalMaxPooling1D,
    L.GlobalMaxPooling2D,
    L.GlobalMaxPooling3D,
    L.Maximum,
    L.Minimum,
)
"""Layers whose every output is one of their input values (moved, padded with zeros, or selected)."""

AVERAGE_POOLING = (
    L.AveragePooling1D,
    L.AveragePooling2D,
    L.AveragePooling3D,
    L.GlobalAveragePooling1D,
    L.GlobalAveragePooling2D,
    L.GlobalAveragePooling3D,
)
"""Average poolings (linear maps with weights 1/n)."""

UPSAMPLING = (L.UpSampling1D, L.UpSampling2D, L.UpSampling3D)
"""Upsampling by repetition (each output is one input value)."""
