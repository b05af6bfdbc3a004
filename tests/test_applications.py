"""Every keras.applications architecture explains: the CI matrix.

Each model is built with ``weights=None`` at a small input size (the smallest
its architecture accepts, 32 px for most) with ``classes=10``, so the whole
matrix stays CI-affordable on two CPU cores. Keras's initial BatchNorm
statistics (mean 0, variance 1) do not normalise anything: activations vanish
through MobileNetV3 (logits ~1e-11, so LRP-epsilon's stabiliser absorbs all
relevance and the test would check zeros). So each model is first calibrated
as training on data like the explained inputs would leave it: every
BatchNorm's moving statistics are those of its input on a random batch that
contains the explained samples, and ConvNeXt's LayerScale factors (1e-6 at
initialisation) are drawn in [0.1, 1]. The canonizers then fold non-trivial
values and relevance has a meaningful scale.

For each model and each of ``lrp.epsilon``, ``lrp.epsilon_plus_flat`` and
``lrp.epsilon_gamma_box``: no error, finite relevance of the input's shape, the
conservation delta reported (finite, per sample), and the canonized graph's
outputs equal to the original model's. Equality is checked exactly in float64
(a twin of the model with the same weights: relative 1e-4 required, ~1e-12
measured). In float32, the canonized graph (BatchNorm folded into kernels)
and Keras round differently; after 100+ layers both differ from the float64
result by up to ~1e-3 relative, so the float32 outputs are required to be as
close to the float64 result as Keras's own float32 outputs are (within 4x, at
least 1e-4). ``tfxai.check`` prints its per-node table for each model, with
every node supported.

The slowest models (trace time dominates) are NASNetMobile, InceptionResNetV2
and DenseNet121; they run in CI like the others.
"""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import composites, reverse
from tfxai.canonizers import AFFINE_LAYERS, canonize
from tfxai.graph import build_view

A = keras.applications
L = keras.layers

SIZES = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}
"""Smallest input sizes of the architectures that need more than 32 px."""

IN_MODEL_PREPROCESSING = {
    "MobileNetV3Small",
    "MobileNetV3Large",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "ConvNeXtTiny",
}
"""Models that rescale raw [0, 255] pixels themselves; the others get inputs in [-1, 1]."""

APPLICATIONS = (
    "VGG16",
    "VGG19",
    "ResNet50",
    "ResNet50V2",
    "ResNet101",
    "InceptionV3",
    "InceptionResNetV2",
    "Xception",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Small",
    "MobileNetV3Large",
    "DenseNet121",
    "NASNetMobile",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "ConvNeXtTiny",
)

METHODS = ("lrp.epsilon", "lrp.epsilon_plus_flat", "lrp.epsilon_gamma_box")

BATCH = 2


def pixel_range(name):
    return (0.0, 255.0) if name in IN_MODEL_PREPROCESSING else (-1.0, 1.0)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def calibrate(model, x, seed):
    """Set every BatchNorm's moving statistics to those of its input on ``x``; draw LayerScale factors.

    With momentum 0, one training-mode pass replaces each BatchNorm's moving
    statistics by the statistics of its input on ``x``, layer after layer.
    """
    norms = [layer for layer in _all_layers(model) if isinstance(layer, L.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, AFFINE_LAYERS) and not isinstance(layer, L.BatchNormalization):
            layer.gamma.assign(rng.uniform(0.1, 1.0, layer.gamma.shape).astype(layer.gamma.dtype))


def architecture(input_shape):
    """Arguments of the application builders: no weights, 10 classes, logits out.

    With the softmax on, the calibrated models' outputs saturate to 0/1 and
    comparing them would say little; the softmax stripping is tested in
    ``test_models.py`` and on the transfer-learning models below.
    """
    return {"weights": None, "input_shape": input_shape, "classes": 10, "classifier_activation": None}


def relative(a, b):
    """Largest difference of two outputs, relative to the largest value of ``b``."""
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max() / np.abs(b).max())


def canonized_outputs(model, x):
    """The outputs of the canonized graph of ``model`` on ``x`` (what every analyzer computes)."""
    view = canonize(build_view(model))
    values, _ = reverse.forward(view, [tf.constant(x)])
    return [values[key].numpy() for key in view.outputs]


def float64_twin(name, model):
    """The same architecture in float64, with ``model``'s weights."""
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        twin = getattr(A, name)(**architecture(tuple(model.inputs[0].shape[1:])))
    finally:
        keras.config.set_dtype_policy(policy)
    twin.set_weights([w.astype("float64") for w in model.get_weights()])
    return twin


class Built:
    """One application, calibrated, with its inputs and its outputs in float64."""

    def __init__(self, name, seed=0):
        keras.utils.set_random_seed(seed)
        size = SIZES.get(name, 32)
        self.model = getattr(A, name)(**architecture((size, size, 3)))
        low, high = pixel_range(name)
        data = np.random.default_rng(seed).uniform(low, high, (16, size, size, 3)).astype("float32")
        calibrate(self.model, data, seed)
        self.x = data[:BATCH]
        twin = float64_twin(name, self.model)
        x64 = self.x.astype("float64")
        self.truth = np.asarray(twin(x64, training=False))
        self.float64_diff = relative(canonized_outputs(twin, x64)[0], self.truth)
        self.keras_float32_error = relative(self.model(self.x, training=False), self.truth)

    def float32_tolerance(self):
        """How far float32 outputs may be from the float64 ones: as far as Keras's own (x4), at least 1e-4."""
        return max(1e-4, 4 * self.keras_float32_error)


def first_layer_bounds(model, low, high):
    """Per-channel bounds of what the first weighted layer sees when the pixels lie in ``[low, high]``.

    The in-model preprocessing (Rescaling, Normalization, padding) is
    element-wise and monotone, so it maps the pixel bounds to these.
    """
    view = canonize(build_view(model))
    (first,) = composites.positions(view)["first"]
    shape = (1,) + tuple(model.inputs[0].shape[1:])
    seen = []
    for value in (low, high):
        _, states = reverse.forward(view, [tf.fill(shape, value)])
        seen.append(states[first].inputs[0].numpy())
    axes = tuple(range(seen[0].ndim - 1))
    return np.minimum(*seen).min(axis=axes), np.maximum(*seen).max(axis=axes)


def method_options(name, model, method):
    if method != "lrp.epsilon_gamma_box":
        return {}
    low, high = first_layer_bounds(model, *pixel_range(name))
    return {"low": low, "high": high}


class _LastModel:
    """Keeps only the most recently built application (memory stays at one model)."""

    def __init__(self):
        self.name, self.value = None, None

    def __call__(self, name):
        if name != self.name:
            self.name, self.value = None, None
            keras.backend.clear_session(free_memory=True)
            self.name, self.value = name, Built(name)
        return self.value


@pytest.fixture(scope="module")
def application():
    return _LastModel()


def explain(model, x, method, options):
    """Relevance, deltas, explained values and predictions of one analyzer."""
    analyzer = tfxai.create_analyzer(method, model, **options)
    relevance, delta = analyzer.analyze(x, return_delta=True)
    _, explained, predictions = analyzer.compiled("max_activation")(tf.constant(x))
    return relevance, delta, explained.numpy(), [p.numpy() for p in predictions]


def assert_explained(model, x, relevance, delta, explained, predictions):
    assert relevance.shape == x.shape
    assert np.all(np.isfinite(relevance))
    assert delta.shape == (len(x),) and np.all(np.isfinite(delta))
    want = model(x, training=False)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    for got, expected in zip(predictions, want):
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
    assert np.all(np.isfinite(explained))


@pytest.mark.parametrize(
    "name, step", [(name, step) for name in APPLICATIONS for step in ("check",) + METHODS]
)
def test_application(application, name, step):
    """One model, one step: its ``tfxai.check`` table and float64 equality, or one method's explanation."""
    built = application(name)
    model, x = built.model, built.x
    if step == "check":
        check_prints_every_node(model)
        assert built.float64_diff <= 1e-4
        print(f"{name}: float64 max |canonized - original| / max |original| = {built.float64_diff:.1e}")
        return
    relevance, delta, explained, predictions = explain(model, x, step, method_options(name, model, step))
    assert relevance.shape == x.shape and np.all(np.isfinite(relevance))
    assert delta.shape == (BATCH,) and np.all(np.isfinite(delta))
    assert explained.shape == (BATCH,) and np.all(np.isfinite(explained))
    np.testing.assert_allclose(explained, predictions[0].max(axis=1))
    float32_error = relative(predictions[0], built.truth)
    assert float32_error <= built.float32_tolerance()
    print(
        f"{name} {step}: delta {', '.join(f'{d:.3g}' for d in delta)} "
        f"explained {', '.join(f'{e:.3g}' for e in explained)} "
        f"float32 error {float32_error:.1e} (Keras's own {built.keras_float32_error:.1e})"
    )


def check_prints_every_node(model):
    out = io.StringIO()
    report = tfxai.check(model, "epsilon_gamma_box", file=out)
    table = out.getvalue()
    assert report.ok, report.unsupported
    assert len(report.nodes) == len(canonize(build_view(model)).nodes)
    assert len(table.splitlines()) == len(report.nodes) + 4
    for row in report.nodes:
        assert row.name in table
    assert "ZBox" in table  # the first weighted layer


# --------------------------------------------------------------------------- transfer learning


def _sequential_head():
    """The most common user model: a pretrained backbone as one layer of a Sequential."""
    keras.utils.set_random_seed(1)
    backbone = A.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            backbone,
            L.Dropout(0.2),
            L.Dense(10, activation="softmax", name="classifier"),
        ],
        name="transfer_sequential",
    )
    return model, (-1.0, 1.0)


def _functional_head():
    """The Keras transfer-learning guide's pattern: rescaling, ``backbone(x, training=False)``, a new head."""
    keras.utils.set_random_seed(2)
    backbone = A.EfficientNetB0(weights=None, include_top=False, input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 3), name="image")
    h = L.RandomFlip(name="augment")(inputs)
    h = backbone(h, training=False)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    h = L.Dropout(0.2, name="dropout")(h)
    outputs = L.Dense(10, name="classifier")(h)
    return keras.Model(inputs, outputs, name="transfer_functional"), (0.0, 255.0)


@pytest.mark.parametrize("builder", [_sequential_head, _functional_head], ids=["sequential", "functional"])
def test_backbone_nested_in_a_transfer_learning_head(builder):
    keras.backend.clear_session(free_memory=True)
    model, (low, high) = builder()
    data = np.random.default_rng(3).uniform(low, high, (16, 32, 32, 3)).astype("float32")
    calibrate(model, data, seed=3)
    x = data[:BATCH]
    report = tfxai.check(model, verbose=False)
    assert report.ok
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert any(row.name.startswith(backbone.name + "/") for row in report.nodes)
    for method in METHODS:
        options = {}
        if method == "lrp.epsilon_gamma_box":
            bounds = first_layer_bounds(model, low, high)
            options = {"low": bounds[0], "high": bounds[1]}
        assert_explained(model, x, *explain(model, x, method, options))


def test_model_with_two_outputs():
    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(4)
    backbone = A.MobileNetV3Small(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    inputs = keras.Input((32, 32, 3), name="image")
    features = backbone(inputs)
    classes = L.Dense(10, activation="softmax", name="classes")(features)
    box = L.Dense(4, name="box")(L.Dense(16, activation="relu", name="box_hidden")(features))
    model = keras.Model(inputs, [classes, box], name="two_outputs")
    data = np.random.default_rng(5).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    calibrate(model, data, seed=5)
    x = data[:BATCH]
    bounds = first_layer_bounds(model, 0.0, 255.0)
    for method in METHODS:
        options = {"low": bounds[0], "high": bounds[1]} if method == "lrp.epsilon_gamma_box" else {}
        per_output = []
        for output_index in (0, 1):
            analyzer = tfxai.create_analyzer(method, model, output_index=output_index, **options)
            relevance, delta = analyzer.analyze(x, return_delta=True)
            _, explained, predictions = analyzer.compiled("max_activation")(tf.constant(x))
            assert_explained(model, x, relevance, delta, explained.numpy(), [p.numpy() for p in predictions])
            per_output.append(relevance)
        assert not np.allclose(per_output[0], per_output[1], rtol=1e-3, atol=0.0)
