"""Every keras.applications architecture explains, with the values LRP promises: the CI matrix.

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

Per model, four steps:

* ``check``: ``tfxai.check`` prints its per-node table with every node
  supported, and the canonized graph computes the model's outputs. Equality is
  checked exactly in float64 (a twin of the model with the same weights:
  relative 1e-4 required, ~1e-12 measured). In float32, the canonized graph
  (BatchNorm folded into kernels) and Keras round differently; after 100+
  layers both differ from the float64 result by up to ~1e-3 relative, so the
  float32 outputs are required to be as close to the float64 result as
  Keras's own float32 outputs are (within 4x, at least 1e-4).
* ``lrp.z`` and the three methods ``lrp.epsilon``, ``lrp.epsilon_plus_flat``,
  ``lrp.epsilon_gamma_box`` run on a bias-free copy of the calibrated model
  (:func:`bias_free_copy`: ``clone_model`` + ``set_weights``, then every bias,
  BatchNorm/LayerNorm shift and BatchNorm mean set to 0; the cached model is
  never changed), where LRP's values are known. ``lrp.z`` runs on the float64
  twin of that copy: it conserves relevance (``|logit - sum R|`` at most
  :data:`FLOAT64_TOLERANCE` of the logit), its predictions equal Keras's, and
  on networks of ReLUs, max pooling and linear merges (:data:`HOMOGENEOUS`) it
  equals input x gradient computed with a ``tf.GradientTape`` on the Keras
  twin. The methods run in float32 and conserve relevance up to the measured,
  explained bounds of :data:`CONSERVATION`. Every step also checks that the
  reported delta is the explained logit minus the summed relevance. An
  all-zero heatmap fails all of these.

All models but those in :data:`QUICK` (VGG16, ResNet50) and the
transfer-learning models are marked ``slow``: ``pytest`` (CI) runs them,
``pytest -m "not slow"`` the two representative ones.
"""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import assignment, reverse
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

QUICK = {"VGG16", "ResNet50"}
"""The models the quick subset (-m "not slow") keeps: a plain ReLU stack and a residual net with folded
BatchNorm (about 30 s together on two cores). Every other model is marked slow and runs in the full suite."""

HOMOGENEOUS = {
    "VGG16",
    "VGG19",
    "ResNet50",
    "ResNet50V2",
    "ResNet101",
    "InceptionV3",
    "InceptionResNetV2",
    "Xception",
    "DenseNet121",
    "NASNetMobile",
}
"""Models made only of linear layers, ReLU, max pooling and linear merges (``Add``, ``Concatenate``,
InceptionResNetV2's scaled sum). On them LRP-0 equals input x gradient: with ``R_k = a_k g_k`` at a
ReLU output and ``a_k / z_k = 1`` where it is active, ``R_j = a_j sum_k w_jk g_k 1[z_k > 0] = a_j g_j``.
Not on the others: ReLU6 saturates (MobileNet, MobileNetV2: relevance passes a saturated unit whose
gradient is 0; measured |LRP-0 - IxG| up to 3.5 x max |IxG|), swish / hard-swish / GELU are not
positively homogeneous, and squeeze-and-excitation gates get no relevance but a gradient."""

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
    """The same architecture in float64 (its input too), with ``model``'s weights."""
    policy, floatx = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_dtype_policy("float64")
    keras.config.set_floatx("float64")  # the Input layer's dtype: tfxai does not cast inputs to the layers' dtype
    try:
        twin = getattr(A, name)(**architecture(tuple(model.inputs[0].shape[1:])))
    finally:
        keras.config.set_dtype_policy(policy)
        keras.config.set_floatx(floatx)
    twin.set_weights([w.astype("float64") for w in model.get_weights()])
    return twin


def bias_free_copy(model):
    """A copy of ``model`` with its weights, every bias and shift set to 0; ``model`` is not changed.

    Built with ``keras.models.clone_model`` and ``set_weights``. Dense / convolution biases, BatchNorm's
    beta and moving mean and LayerNormalization's beta become 0: BatchNorm then only scales
    (``gamma / sqrt(var + eps)``) and still folds into the layer before it, and every linear map is
    bias-free, so LRP conserves relevance. In-model preprocessing (Rescaling, Normalization) stays:
    relevance passes it unchanged.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    originals = {id(v) for v in model.weights}
    zeroed = []
    for layer in _all_layers(copy):
        if isinstance(layer, L.BatchNormalization):
            zeroed += [layer.moving_mean] + ([layer.beta] if layer.center else [])
        elif isinstance(layer, (L.LayerNormalization, L.GroupNormalization)):
            zeroed += [layer.beta] if layer.center else []
        elif getattr(layer, "bias", None) is not None:
            zeroed.append(layer.bias)
    assert zeroed and not any(id(v) in originals for v in zeroed), "the copy must not share weights"
    for variable in zeroed:
        variable.assign(np.zeros(variable.shape, variable.dtype))
    return copy


def input_times_gradient(model, x):
    """``x * d y_c / d x`` of the largest logit ``y_c`` of each sample, by ``tf.GradientTape`` on Keras."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, training=False)
        selected = tf.gather(y, tf.argmax(y, axis=1), axis=1, batch_dims=1)
    return (x * tape.gradient(selected, x)).numpy()


class Built:
    """One application, calibrated, with its inputs, its outputs in float64 and a bias-free copy."""

    def __init__(self, name, seed=0):
        keras.utils.set_random_seed(seed)
        size = SIZES.get(name, 32)
        self.model = getattr(A, name)(**architecture((size, size, 3)))
        low, high = pixel_range(name)
        data = np.random.default_rng(seed).uniform(low, high, (16, size, size, 3)).astype("float32")
        calibrate(self.model, data, seed)
        self.x = data[:BATCH]
        self.twin = float64_twin(name, self.model)
        x64 = self.x.astype("float64")
        self.truth = np.asarray(self.twin(x64, training=False))
        self.float64_diff = relative(canonized_outputs(self.twin, x64)[0], self.truth)
        self.keras_float32_error = relative(self.model(self.x, training=False), self.truth)
        self.bias_free = bias_free_copy(self.model)
        self._bias_free64 = None

    def bias_free64(self):
        """The float64 twin of :attr:`bias_free` (built on first use)."""
        if self._bias_free64 is None:
            self._bias_free64 = bias_free_copy(self.twin)
        return self._bias_free64

    def float32_tolerance(self):
        """How far float32 outputs may be from the float64 ones: as far as Keras's own (x4), at least 1e-4."""
        return max(1e-4, 4 * self.keras_float32_error)


def first_layer_bounds(model, low, high):
    """Per-channel bounds of what the first weighted layer sees when the pixels lie in ``[low, high]``.

    The in-model preprocessing (Rescaling, Normalization, padding) is
    element-wise and monotone, so it maps the pixel bounds to these.
    """
    view = canonize(build_view(model))
    (first,) = assignment.positions(view)["first"]
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


def assert_delta_is_explained_minus_sum(relevance, delta, explained):
    """``delta == explained - sum(R)`` up to the rounding of summing ``R`` in its dtype.

    tfxai sums in the relevance's dtype; recursive summation of ``n`` terms errs by at most
    ``n * eps * sum |R|`` (Higham), which the float32 relevances of residual nets, whose terms of both
    signs cancel, do reach 1e-3 of the logit.
    """
    flat = relevance.reshape(len(relevance), -1)
    total = flat.astype(np.float64).sum(axis=1)
    bound = flat.shape[1] * np.finfo(flat.dtype).eps * np.abs(flat).astype(np.float64).sum(axis=1)
    assert np.all(np.abs(delta - (explained - total)) <= bound + 1e-12 * np.abs(explained))
    return total


def assert_explained(model, x, relevance, delta, explained, predictions, output_index=0, logits=False):
    """The analyzer's outputs equal the model's, its delta is the explained logit minus the summed
    relevance (the biased models here conserve nothing in particular) and, for an output of ``logits``,
    the explained value is the largest output."""
    assert relevance.shape == x.shape
    assert np.all(np.isfinite(relevance))
    assert delta.shape == (len(x),) and np.all(np.isfinite(delta))
    want = model(x, training=False)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    for got, expected in zip(predictions, want):
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
    assert np.all(np.isfinite(explained))
    if logits:
        np.testing.assert_allclose(explained, predictions[output_index].max(axis=1))
    assert_delta_is_explained_minus_sum(relevance, delta, explained)


STEPS = ("check", "lrp.z") + METHODS

FLOAT64_TOLERANCE = 1e-10
"""LRP-0 on the float64 bias-free twin: largest ``|delta| / |logit|`` and
``max |LRP-0 - IxG| / max |IxG|``. Both are exact in exact arithmetic (see :data:`HOMOGENEOUS`);
measured at most 1.3e-14 (conservation, MobileNetV2) and 2.9e-15 (IxG, ResNet101) over the 17 models.
In float32 the same comparison says little: on the bias-free Xception Keras's own input x gradient is
6e-3 (relative to its max) away from the float64 one. 1e-10 leaves a factor of 7000 over the measured
float64 error and lies far below any real difference (a wrong rule moves LRP-0 by more than 1e-3)."""

PREDICTION64_TOLERANCE = 1e-6
"""The float64 analyzer's predictions against Keras on the bias-free twin (the float64 check of the
calibrated model requires 1e-4). Measured at most 5e-9: the bias-free EfficientNetB0, whose squeeze-and-
excitation gates amplify rounding about 1e7-fold (in float32 its canonized and Keras outputs differ by
50%); at most 1e-14 on models without such gates."""

LRP0_FLOAT32_CONSERVATION = 1e-4
"""lrp.z conservation in float32, for :data:`NO_FLOAT64_GRADIENT`: measured 1.9e-6 on ConvNeXtTiny
(at most 7.7e-6, MobileNetV2, when every model ran in float32)."""

NO_FLOAT64_GRADIENT = {"ConvNeXtTiny"}
"""TensorFlow has no float64 gradient of grouped convolutions on CPU ("Gradients for grouped
convolutions are not supported on CPU"), which ConvNeXt's depthwise 7x7 convolutions are; its LRP-0
step runs in float32 and checks conservation only (ConvNeXt is not homogeneous)."""

CONSERVATION = {
    "lrp.z": LRP0_FLOAT32_CONSERVATION,
    "lrp.epsilon": 2e-2,
    "lrp.epsilon_plus_flat": 0.2,
    "lrp.epsilon_gamma_box": 0.2,
}
"""Largest ``|logit - sum R| / |logit|`` of a float32 method on the bias-free copy.

Bias-free, every rule here conserves relevance exactly except for (measured on the 17 models, batch 2):

* epsilon's stabiliser, which absorbs ``eps / (|z| + eps)`` of each unit's relevance. It matters only
  where activations are tiny: the bias-free VGGs have no BatchNorm to keep their scale, so their logits
  are 1e-3 (VGG16) and 8e-5 (VGG19). lrp.epsilon (eps 1e-7): 4.7e-3 on VGG19, 6.6e-4 on VGG16, at most
  1.5e-5 elsewhere; bound 2e-2 (4x the largest).
* relevance the first layer's Flat / ZBox rule gives to the positions an explicit ``ZeroPadding2D`` adds
  in front of it, which the padding's backward then drops (a leak of tfxai, reported; the same network
  with ``padding="same"`` conserves): 7.4e-2 on ResNet50V2 and 7.3e-2 / 7.2e-2 (ResNet50 / ResNet101),
  5.6e-2 on DenseNet121 (lrp.epsilon_plus_flat; lrp.epsilon_gamma_box 6.0e-2 at most), plus the
  absorption of epsilon 1e-6 on the VGGs (3.6e-2 on VGG19). Others: MobileNetV2 2.8e-2, EfficientNetB0
  2.1e-2 (lrp.epsilon_gamma_box), at most 1e-5 on the rest. Bound 0.2 (2.7x the largest): still fails an
  all-zero map (1), a sign flip (2) or relevance doubled.

lrp.epsilon_plus_flat on :data:`SIGNED` models has no bound: z+ is the rule for layers whose inputs are
ReLU outputs (LRP_REFERENCE.md); on signed inputs its denominators vanish where no contribution is
positive and relevance is lost there: MobileNetV3Small 0.13, MobileNetV3Large 8.4e-2, EfficientNetB0 and
EfficientNetV2B0 4e-2, and on ConvNeXtTiny, whose LayerNorms make relevances of both signs cancel in
large amounts, sum R came out 1.5e3 x the logit. There only the consistency of the outputs is checked.
"""

SIGNED = {"MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "EfficientNetV2B0", "ConvNeXtTiny"}
"""Models whose convolutions read signed activations (hard-swish, swish, GELU / LayerNorm)."""


@pytest.mark.parametrize(
    "name, step",
    [
        pytest.param(name, step, marks=[] if name in QUICK else [pytest.mark.slow])
        for name in APPLICATIONS
        for step in STEPS
    ],
)
def test_application(application, name, step):
    """One model, one step: its ``tfxai.check`` table and canonized outputs, or one method's values."""
    built = application(name)
    x = built.x
    if step == "check":
        check_prints_every_node(built.model)
        assert built.float64_diff <= 1e-4
        float32_error = relative(canonized_outputs(built.model, x)[0], built.truth)
        assert float32_error <= built.float32_tolerance()
        print(
            f"{name}: float64 max |canonized - original| / max |original| = {built.float64_diff:.1e}; "
            f"float32 {float32_error:.1e} (Keras's own {built.keras_float32_error:.1e})"
        )
        return
    in_float64 = step == "lrp.z" and name not in NO_FLOAT64_GRADIENT
    if in_float64:
        model, x = built.bias_free64(), x.astype("float64")
    else:
        model = built.bias_free
    relevance, delta, explained, predictions = explain(model, x, step, method_options(name, model, step))
    assert relevance.shape == x.shape
    np.testing.assert_allclose(explained, predictions[0].max(axis=1))
    total = assert_delta_is_explained_minus_sum(relevance, delta, explained)
    conservation = float(np.max(np.abs(explained - total) / np.abs(explained)))
    print(f"{name} {step}: explained {explained}, |logit - sum R| / |logit| = {conservation:.1e}")
    if not in_float64:
        if not (step == "lrp.epsilon_plus_flat" and name in SIGNED):
            assert conservation <= CONSERVATION[step]
        return
    prediction_error = relative(predictions[0], np.asarray(model(x, training=False)))
    print(f"{name}: float64 max |predictions - Keras| / max |Keras| = {prediction_error:.1e}")
    assert prediction_error <= PREDICTION64_TOLERANCE
    assert conservation <= FLOAT64_TOLERANCE
    if name in HOMOGENEOUS:
        ixg = input_times_gradient(model, x)
        ixg_error = float(np.abs(relevance - ixg).max() / np.abs(ixg).max())
        print(f"{name}: max |LRP-0 - input x gradient| / max |input x gradient| = {ixg_error:.1e}")
        assert ixg_error <= FLOAT64_TOLERANCE


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


@pytest.mark.slow
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
        # the Sequential head ends in a softmax, the functional one in logits
        assert_explained(model, x, *explain(model, x, method, options), logits=builder is _functional_head)


@pytest.mark.slow
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
            outputs = [p.numpy() for p in predictions]
            assert_explained(  # output 0 is a softmax, output 1 the box logits
                model, x, relevance, delta, explained.numpy(), outputs, output_index, logits=output_index == 1
            )
            per_output.append(relevance)
        assert not np.allclose(per_output[0], per_output[1], rtol=1e-3, atol=0.0)
