"""Mixed precision: ``mixed_float16``, ``mixed_bfloat16`` and layers with their own dtype.

The global policy is process-wide state: the ``policy`` fixture sets it only while a
model is BUILT and always restores ``"float32"`` (in ``finally``), so no other test sees it.
Keras layers built under a mixed policy keep float32 variables and compute in the
policy's compute dtype; that is what the replay must reproduce.

Tolerances. With unit roundoff ``u`` (float16: ``2**-11``; bfloat16: ``2**-8``) every layer
output is rounded once to the compute dtype, and the only difference between the replay and
``model(x)`` is where a folded BatchNorm rounds (Keras computes the convolution, rounds, then
normalises in float32 and rounds again; the folded node rounds once): at most one rounding
per linear layer, so ``|replay - model(x)| <= 2 * depth * u * max|y|``. Relevance is
propagated in float32 from the half-precision activations the forward pass stored; LRP-0
recomputes ``z`` in float32 and divides by the stored (rounded) ``z``, which perturbs each
layer's total by at most ``u`` relative: ``|sum R - y| <= 2 * depth * u * max|y|`` on a
bias-free ReLU network (``depth`` counts linear and pooling layers).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai.analyzers import analyzer_names

L = keras.layers
UNIT_ROUNDOFF = {"mixed_float16": 2.0**-11, "mixed_bfloat16": 2.0**-8}
COMPUTE = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
DEPTH = 5  # conv, conv, global pooling, dense, dense


def built_under(policy, build):
    """``build()`` with the global policy set to ``policy``; ``"float32"`` restored whatever happens."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        return build()
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(autouse=True)
def _policy_is_restored():
    yield
    assert keras.mixed_precision.global_policy().name == "float32"


def bias_free_cnn(last_dtype=None):
    """Conv(relu) -> BN -> Conv -> BN -> ReLU -> GAP -> Dense(relu) -> Dense, no biases, ``t = 0``.

    The second BatchNorm folds backward into its conv, the first forward into the second conv
    is impossible ('same' padding) and into nothing else: it stays element-wise (Pass).
    """
    keras.utils.set_random_seed(0)
    x = keras.Input((8, 8, 2), name="x")
    h = L.Conv2D(4, 3, padding="same", activation="relu", use_bias=False, name="c1")(x)
    h = L.BatchNormalization(center=False, name="bn1")(h)
    h = L.Conv2D(4, 3, padding="same", use_bias=False, name="c2")(h)
    h = L.BatchNormalization(center=False, name="bn2")(h)
    h = L.GlobalAveragePooling2D()(L.ReLU()(h))
    h = L.Dense(6, activation="relu", use_bias=False, name="d1")(h)
    y = L.Dense(3, use_bias=False, dtype=last_dtype, name="logits")(h)
    model = keras.Model(x, y, name="mixed_cnn")
    rng = np.random.default_rng(0)
    for name in ("bn1", "bn2"):
        layer = model.get_layer(name)
        layer.moving_variance.assign(rng.uniform(0.2, 3.0, 4).astype("float32"))
        layer.gamma.assign((rng.uniform(0.5, 2.0, 4) * rng.choice([-1, 1], 4)).astype("float32"))
    return model


def twins(policy, **kwargs):
    """The model built under ``policy`` and its float32 twin with the same weights."""
    mixed = built_under(policy, lambda: bias_free_cnn(**kwargs))
    reference = bias_free_cnn()
    reference.set_weights(mixed.get_weights())
    return mixed, reference


DATA = np.random.default_rng(1).normal(size=(3, 8, 8, 2)).astype("float32")


def cosine(a, b):
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module", params=sorted(UNIT_ROUNDOFF))
def policy(request):
    return request.param


@pytest.fixture(scope="module")
def mixed_pair(policy):
    return twins(policy)


def test_variables_stay_float32_and_the_model_computes_in_half_precision(mixed_pair, policy):
    mixed, _ = mixed_pair
    assert all(v.dtype == "float32" for v in mixed.weights)
    assert mixed(DATA).dtype == COMPUTE[policy]


def test_replay_matches_the_model_in_its_compute_dtype(mixed_pair, policy):
    mixed, _ = mixed_pair
    analyzer = tfxai.create_analyzer("lrp.epsilon", mixed)
    _, _, predictions = analyzer.compiled()(tf.constant(DATA))
    want = mixed(DATA)
    assert predictions[0].dtype == want.dtype
    got, want = np.asarray(predictions[0], np.float64), np.asarray(want, np.float64)
    tolerance = 2 * DEPTH * UNIT_ROUNDOFF[policy] * np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)


@pytest.mark.parametrize("name", ["lrp.z", "lrp.epsilon", "lrp.epsilon_gamma_box", "input_t_gradient"])
@pytest.mark.slow
def test_conservation_on_the_bias_free_mixed_model(mixed_pair, policy, name):
    mixed, _ = mixed_pair
    relevance, delta = tfxai.create_analyzer(name, mixed).analyze(DATA, return_delta=True)
    assert relevance.dtype == np.float32
    logits = np.asarray(mixed(DATA), np.float64).max(axis=1)
    tolerance = 2 * DEPTH * UNIT_ROUNDOFF[policy] * np.abs(logits).max()
    assert np.abs(delta).max() <= tolerance, (np.abs(delta).max(), tolerance)


AGREEMENT = {"mixed_float16": 0.99, "mixed_bfloat16": 0.9}
"""Least cosine to the float32 twin. bfloat16 keeps 8 significant bits: its forward pass alone moves
the plain gradient to cosine 0.988 and LRP-gamma to 0.92 on this model (measured), so it gets a
looser bound than float16."""


@pytest.mark.slow
def test_every_analyzer_runs_and_agrees_with_the_float32_twin(mixed_pair, policy):
    mixed, reference = mixed_pair
    failures = {}
    for name in analyzer_names():
        kwargs = {"background": np.zeros_like(DATA[:1])} if name in ("deep_shap", "gradient_shap") else {}
        got = tfxai.create_analyzer(name, mixed, **kwargs).analyze(DATA)
        want = tfxai.create_analyzer(name, reference, **kwargs).analyze(DATA)
        if not np.all(np.isfinite(got)) or got.shape != DATA.shape:
            failures[name] = "non-finite or wrong shape"
        elif np.abs(want).max() > 0 and cosine(got, want).min() < AGREEMENT[policy]:
            failures[name] = f"cosine {cosine(got, want).min():.4f}"
    assert not failures, failures


@pytest.mark.slow
def test_a_float32_layer_inside_a_mixed_model(policy):
    """``Dense(dtype="float32")`` under a mixed policy computes (and outputs) in float32."""
    mixed, reference = twins(policy, last_dtype="float32")
    assert mixed(DATA).dtype == "float32"
    analyzer = tfxai.create_analyzer("lrp.epsilon", mixed)
    _, _, predictions = analyzer.compiled()(tf.constant(DATA))
    assert predictions[0].dtype == tf.float32
    got = analyzer.analyze(DATA)
    assert cosine(got, tfxai.create_analyzer("lrp.epsilon", reference).analyze(DATA)).min() >= 0.99


def test_a_float16_layer_inside_a_float32_model():
    keras.utils.set_random_seed(3)
    x = keras.Input((6,), name="x")
    h = L.Dense(8, activation="relu", use_bias=False, dtype="mixed_float16", name="half")(x)
    model = keras.Model(x, L.Dense(3, use_bias=False, name="logits")(h))
    data = np.random.default_rng(2).normal(size=(4, 6)).astype("float32")
    relevance, delta = tfxai.create_analyzer("lrp.z", model).analyze(data, return_delta=True)
    logits = np.asarray(model(data), np.float64).max(axis=1)
    assert np.abs(delta).max() <= 2 * 2 * UNIT_ROUNDOFF["mixed_float16"] * np.abs(logits).max()


@pytest.mark.slow
def test_mixed_sequence_model_runs_and_agrees_with_float32():
    def build():
        keras.utils.set_random_seed(5)
        tokens = keras.Input((7,), dtype="int32", name="tokens")
        h = L.Embedding(20, 8, name="emb")(tokens)
        h = L.LSTM(6, return_sequences=True, name="lstm")(h)
        h = L.MultiHeadAttention(2, 4, name="mha")(h, h)
        y = L.Dense(3, name="logits")(L.GlobalAveragePooling1D()(h))
        return keras.Model(tokens, y, name="mixed_sequence")

    mixed = built_under("mixed_float16", build)
    reference = build()
    reference.set_weights(mixed.get_weights())
    data = np.random.default_rng(3).integers(0, 20, size=(3, 7)).astype("int32")
    for name in ("lrp.epsilon", "lrp.z", "gradient", "input_t_gradient"):
        got = tfxai.create_analyzer(name, mixed).analyze(data)
        want = tfxai.create_analyzer(name, reference).analyze(data)
        assert np.all(np.isfinite(got)) and cosine(got, want).min() >= 0.99, name


@pytest.mark.slow
def test_export_of_a_mixed_model_equals_eager(tmp_path):
    mixed, _ = twins("mixed_float16")
    analyzer = tfxai.create_analyzer("lrp.epsilon_plus", mixed)
    path = str(tmp_path / "mixed")
    analyzer.export(path)
    loaded = tf.saved_model.load(path)
    serving = loaded.signatures["serving_default"]
    outputs = serving(**{serving.structured_input_signature[1].popitem()[0]: tf.constant(DATA)})
    relevance_key = next(k for k in outputs if "relevance" in k)
    want = analyzer.analyze(DATA)
    np.testing.assert_allclose(np.asarray(outputs[relevance_key], np.float32), want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_mixed_kerashub_bert_agrees_with_float32():
    """A captured transformer (tiny KerasHub BERT) under ``mixed_float16``: CP-LRP, AttnLRP and IG."""
    import keras_hub  # noqa: PLC0415 -- the optional extra, needed by this test only

    def build():
        keras.utils.set_random_seed(0)
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=50,
            num_layers=1,
            num_heads=2,
            hidden_dim=8,
            intermediate_dim=16,
            max_sequence_length=8,
        )
        return keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None)

    mixed = built_under("mixed_float16", build)
    assert mixed.backbone.get_layer("token_embedding").compute_dtype == "float16"
    reference = build()
    reference.set_weights(mixed.get_weights())
    tokens = np.random.default_rng(4).integers(1, 50, (2, 8)).astype("int32")
    data = {"token_ids": tokens, "segment_ids": np.zeros_like(tokens), "padding_mask": np.ones_like(tokens)}
    for name in ("lrp.cp_lrp", "lrp.attn_lrp", "integrated_gradients"):
        got = tfxai.create_analyzer(name, mixed).analyze(data, neuron_selection=0)["token_ids"]
        want = tfxai.create_analyzer(name, reference).analyze(data, neuron_selection=0)["token_ids"]
        assert got.dtype == np.float32 and np.all(np.isfinite(got)), name
        assert cosine(got, want).min() >= 0.99, (name, cosine(got, want))
