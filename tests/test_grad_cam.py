"""Grad-CAM and Grad-CAM++: localisation on planted evidence, a Keras-tutorial
reference, the choice of the feature map and the upsampling."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai.analyzers.cam import resize_linear
from conftest import make_inputs, predict

L = keras.layers
CAMS = ["grad_cam", "grad_cam_plus_plus"]


def _set(layer, kernel, bias):
    layer.set_weights([np.asarray(kernel, "float32"), np.asarray(bias, "float32")])


@pytest.fixture(scope="module")
def quadrant_model():
    """Class 0 detects bright blobs, class 1 horizontal bars; both anywhere in a 16x16 image.

    detect (3x3, ReLU): channel 0 = mean brightness - 0.7 (only inside a blob),
    channel 1 = middle row minus the rows above and below - 0.5 (only on a bar);
    2x2 max pooling; mix (1x1, ReLU) = identity, giving an 8x8 map to upsample;
    global average pooling; logits = 10 x each channel.
    """
    x = keras.Input((16, 16, 1), name="image")
    h = L.Conv2D(2, 3, padding="same", activation="relu", name="detect")(x)
    h = L.MaxPooling2D(2, name="pool")(h)
    h = L.Conv2D(2, 1, activation="relu", name="mix")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    y = L.Dense(2, activation="softmax", name="probs")(h)
    model = keras.Model(x, y, name="quadrants")
    kernel = np.zeros((3, 3, 1, 2))
    kernel[:, :, 0, 0] = 1.0 / 9.0
    kernel[:, :, 0, 1] = -1.0 / 3.0
    kernel[1, :, 0, 1] = 1.0 / 3.0
    _set(model.get_layer("detect"), kernel, [-0.7, -0.5])
    _set(model.get_layer("mix"), np.eye(2).reshape(1, 1, 2, 2), [0.0, 0.0])
    _set(model.get_layer("probs"), 10.0 * np.eye(2), [0.0, 0.0])
    return model


QUADRANTS = [(0, 0), (0, 8), (8, 0), (8, 8)]


def _planted_images():
    """Sample i: a 4x4 blob in quadrant i, a 5-pixel bar in quadrant (i + 1) % 4."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 0.05, (4, 16, 16, 1)).astype("float32")
    for i, (r, c) in enumerate(QUADRANTS):
        images[i, r + 2 : r + 6, c + 2 : c + 6, 0] = 1.0
        rb, cb = QUADRANTS[(i + 1) % 4]
        images[i, rb + 4, cb + 1 : cb + 6, 0] = 1.0
    return images


def _quadrant_mass(heatmap, quadrant):
    r, c = QUADRANTS[quadrant]
    return heatmap[r : r + 8, c : c + 8].sum() / heatmap.sum()


@pytest.mark.parametrize("method", CAMS)
def test_the_map_falls_on_the_quadrant_holding_the_class_evidence(quadrant_model, method):
    x = _planted_images()
    analyzer = tfxai.create_analyzer(method, quadrant_model)
    assert analyzer.feature_map == "mix"
    blobs = analyzer.analyze(x, neuron_selection=0)[..., 0]
    bars = analyzer.analyze(x, neuron_selection=1)[..., 0]
    for i in range(4):
        assert blobs[i].sum() > 0 and bars[i].sum() > 0
        assert _quadrant_mass(blobs[i], i) > 0.95
        assert _quadrant_mass(bars[i], (i + 1) % 4) > 0.95
    # the guard: both classes are really present in every image
    logits = np.log(predict(quadrant_model, x))
    assert np.all(np.abs(logits[:, 0] - logits[:, 1]) < 5)


@pytest.fixture(scope="module")
def pulse_model():
    """A 1D conv net on 32-step series: class 0 = a pulse of height ~1, anywhere."""
    x = keras.Input((32, 1), name="series")
    h = L.Conv1D(1, 3, padding="same", activation="relu", name="detect")(x)
    h = L.MaxPooling1D(2, name="pool")(h)
    h = L.Conv1D(1, 1, activation="relu", name="mix")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    y = L.Dense(2, name="logits")(h)
    model = keras.Model(x, y, name="pulses")
    _set(model.get_layer("detect"), np.full((3, 1, 1), 1.0 / 3.0), [-0.5])
    _set(model.get_layer("mix"), np.ones((1, 1, 1)), [0.0])
    _set(model.get_layer("logits"), [[10.0, -10.0]], [0.0, 0.0])
    return model


@pytest.mark.parametrize("method", CAMS)
def test_grad_cam_on_a_time_series_finds_the_pulse(pulse_model, method):
    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 0.05, (4, 32, 1)).astype("float32")
    for segment in range(4):
        x[segment, segment * 8 + 2 : segment * 8 + 6, 0] = 1.0
    heat = tfxai.create_analyzer(method, pulse_model).analyze(x)
    assert heat.shape == x.shape
    for segment in range(4):
        series = heat[segment, :, 0]
        assert series[segment * 8 : segment * 8 + 8].sum() > 0.95 * series.sum() > 0


def _reference_cam(model, layer_name, x, index, plus_plus=False):
    """Grad-CAM as the Keras tutorial computes it, running a Sequential's layers one by one."""
    with tf.GradientTape() as tape:
        y = tf.constant(x)
        for layer in model.layers:
            y = layer(y, training=False)
            if layer.name == layer_name:
                features = y
        picked = tf.reduce_sum(y * tf.one_hot(index, y.shape[-1]))
    grads = tape.gradient(picked, features).numpy().astype(np.float64)
    features = features.numpy().astype(np.float64)
    if plus_plus:
        g2, g3 = grads**2, grads**3
        denominator = 2 * g2 + features.sum(axis=(1, 2), keepdims=True) * g3
        alpha = np.where(grads != 0, g2 / np.where(denominator != 0, denominator, 1.0), 0.0)
        weights = (alpha * np.maximum(grads, 0)).sum(axis=(1, 2), keepdims=True)
    else:
        weights = grads.mean(axis=(1, 2), keepdims=True)
    cam = np.maximum((weights * features).sum(axis=-1), 0.0)
    return tf.image.resize(cam[..., None], x.shape[1:3], method="bilinear").numpy()[..., 0]


@pytest.mark.parametrize("method", CAMS)
def test_matches_the_keras_tutorial_computation(zoo, method):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 6, "both", seed=2)
    index = np.array([0, 1, 2, 0, 1, 2])
    analyzer = tfxai.create_analyzer(method, model)
    assert analyzer.feature_map == "relu2"  # conv2, then its ReLU layer
    got = analyzer.analyze(x, neuron_selection=index)
    want = _reference_cam(model, "relu2", x, index, plus_plus=method == "grad_cam_plus_plus")
    assert want.max() > 0
    np.testing.assert_allclose(got[..., 0], want, rtol=1e-5, atol=1e-5 * want.max())
    np.testing.assert_array_equal(got[..., 1], got[..., 0])  # every channel carries the map


def test_feature_map_by_name_nested_and_shared():
    keras.utils.set_random_seed(3)
    inner_in = keras.Input((8, 8, 2))
    h = L.Conv2D(3, 3, padding="same", activation="relu", name="c1")(inner_in)
    backbone = keras.Model(inner_in, L.Conv2D(3, 3, padding="same", name="c2")(h), name="backbone")
    shared = L.Conv2D(3, 3, padding="same", name="shared")
    x = keras.Input((8, 8, 2))
    h = backbone(x)
    h = L.BatchNormalization(name="bn")(shared(shared(L.Activation("relu", name="act")(h))))
    y = L.Dense(2, name="logits")(L.GlobalAveragePooling2D()(h))
    model = keras.Model(x, y)
    assert tfxai.create_analyzer("grad_cam", model).feature_map == "bn"  # shared@1, then its BatchNorm
    assert tfxai.create_analyzer("grad_cam", model, layer="backbone/c1").feature_map == "backbone/c1"
    assert tfxai.create_analyzer("grad_cam", model, layer="c2").feature_map == "backbone/c2"
    assert tfxai.create_analyzer("grad_cam", model, layer="shared@1").feature_map == "shared@1"
    with pytest.raises(ValueError, match="called 2 times"):
        tfxai.create_analyzer("grad_cam", model, layer="shared")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        tfxai.create_analyzer("grad_cam", model, layer="nope")
    with pytest.raises(tfxai.ModelError, match="spatial axes"):
        tfxai.create_analyzer("grad_cam", model, layer="logits")
    x_in = make_inputs(model, 3, "both", seed=3)
    for layer in ("backbone/c1", "shared@1", "bn"):
        heat = tfxai.create_analyzer("grad_cam", model, layer=layer).analyze(x_in)
        assert heat.shape == x_in.shape and np.all(np.isfinite(heat))


@pytest.mark.parametrize(
    "shape,size", [((2, 4, 5, 3), (8, 10)), ((2, 8, 8, 1), (3, 5)), ((1, 3, 7, 2), (16, 7))]
)
def test_resize_linear_is_tf_bilinear_resize(shape, size):
    x = tf.constant(np.random.default_rng(4).normal(size=shape).astype("float32"))
    got = resize_linear(resize_linear(x, 1, size[0]), 2, size[1])
    want = tf.image.resize(x, size, method="bilinear")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_a_sample_without_positive_evidence_gets_a_zero_map_and_a_warning():
    """conv (1x1, weight 1, ReLU) -> global average -> logit = mean of the map.

    For a positive image the feature map is A = x and dy/dA = 1/16 everywhere,
    so Grad-CAM = ReLU(A / 16) = x / 16; for a negative image A = ReLU(x) = 0,
    so the map is provably zero.
    """
    x = keras.Input((4, 4, 1))
    h = L.Conv2D(1, 1, activation="relu", name="conv")(x)
    model = keras.Model(x, L.Dense(1, name="logit")(L.GlobalAveragePooling2D()(h)))
    _set(model.get_layer("conv"), np.ones((1, 1, 1, 1)), [0.0])
    _set(model.get_layer("logit"), np.ones((1, 1)), [0.0])
    rng = np.random.default_rng(0)
    images = np.stack([rng.uniform(0.1, 1.0, (4, 4, 1)), -rng.uniform(0.1, 1.0, (4, 4, 1))]).astype("float32")
    for name in CAMS:
        with pytest.warns(tfxai.EmptyMapWarning, match=r"for 1 of 2 samples \(indices \[1\]\): at 'conv'"):
            maps = tfxai.create_analyzer(name, model).analyze(images)
        assert np.all(maps[1] == 0.0)
    gradcam = tfxai.create_analyzer("grad_cam", model)
    with pytest.warns(tfxai.EmptyMapWarning):
        np.testing.assert_allclose(gradcam.analyze(images)[0], images[0] / 16.0, rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tfxai.EmptyMapWarning)
        np.testing.assert_allclose(gradcam.analyze(images[:1]), images[:1] / 16.0, rtol=1e-6)  # no warning
