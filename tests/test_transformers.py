"""Transformers: capture of layers made of Keras layers and ops, CP-LRP / AttnLRP, KerasHub models."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import graph, rules
from tfxai.rules import transformer

L = keras.layers
SEQ = 8
VOCAB = 100


def _zero_biases(model):
    """The bias-free version: biases, LayerNorm betas, learned positions and class tokens set to 0."""
    for weight in model.weights:
        parts = weight.path.split("/")
        if parts[-1] in ("bias", "beta", "class_token") or "position_embedding" in parts[:-1]:
            weight.assign(np.zeros(weight.shape, weight.dtype))
    return model


def _tokens(seed=0, batch=3):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, VOCAB, (batch, SEQ)).astype("int32")
    padding = np.ones((batch, SEQ), "int32")
    padding[0, 5:] = 0
    tokens[0, 5:] = 0
    return tokens, padding


def _explained(model, x, target):
    y = np.asarray(model(x)).reshape(len(np.asarray(x["token_ids"] if isinstance(x, dict) else x)), -1)
    return y[:, target]


def _relative_error(model, method, x, target, **kwargs):
    analyzer = tfxai.create_analyzer(method, model, epsilon=0.0, **kwargs)
    relevance, delta = analyzer.analyze(x, neuron_selection=target, return_delta=True)
    return relevance, np.abs(delta / _explained(model, x, target))


# ------------------------------------------------------------------ KerasHub models, tiny random configs


def _bert():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=16,
    )
    return keras_hub.models.BertTextClassifier(backbone, num_classes=3, preprocessor=None)


def _bert_inputs():
    tokens, padding = _tokens()
    return {"token_ids": tokens, "segment_ids": np.zeros_like(tokens), "padding_mask": padding}


def _gpt2():
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=16,
    )
    return keras_hub.models.GPT2CausalLM(backbone, preprocessor=None)


def _gemma():
    keras.utils.set_random_seed(2)
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
        head_dim=8,
    )
    return keras_hub.models.GemmaCausalLM(backbone, preprocessor=None)


def _distil_bert():
    keras.utils.set_random_seed(3)
    backbone = keras_hub.models.DistilBertBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=16,
    )
    return keras_hub.models.DistilBertTextClassifier(backbone, 3, preprocessor=None)


def _roberta():
    keras.utils.set_random_seed(4)
    backbone = keras_hub.models.RobertaBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=16,
    )
    return keras_hub.models.RobertaTextClassifier(backbone, 3, preprocessor=None)


def _next_token(position, token):
    """Flat index of the logit of ``token`` at ``position`` in a causal LM's (batch, SEQ, VOCAB) output."""
    return position * VOCAB + token


TEXT_CLASSIFIERS = {
    "bert": (_bert, _bert_inputs),
    "distil_bert": (_distil_bert, None),
    "roberta": (_roberta, None),
}


def _inputs(name):
    make_inputs = TEXT_CLASSIFIERS[name][1]
    if make_inputs is not None:
        return make_inputs()
    tokens, padding = _tokens()
    return {"token_ids": tokens, "padding_mask": padding}


@pytest.mark.parametrize("name", sorted(TEXT_CLASSIFIERS))
@pytest.mark.slow
def test_text_classifiers_conserve_with_cp_lrp_and_give_padding_nothing(name):
    model = _zero_biases(TEXT_CLASSIFIERS[name][0]())
    counts = graph.count_inbound_nodes(model)
    x = _inputs(name)
    relevance, errors = _relative_error(model, "lrp.cp_lrp", x, 1)
    assert errors.max() < 1e-3
    tokens = relevance["token_ids"]
    assert tokens.shape == x["token_ids"].shape and tokens.dtype == np.float32
    assert np.all(tokens[0, 5:] == 0.0)
    assert np.abs(tokens[x["padding_mask"] == 1]).min() > 0.0
    assert graph.count_inbound_nodes(model) == counts


@pytest.mark.slow
def test_gpt2_next_token_conserves_and_future_tokens_get_nothing():
    model = _zero_biases(_gpt2())
    counts = graph.count_inbound_nodes(model)
    tokens, padding = _tokens(batch=2)
    padding[:] = 1
    x = {"token_ids": tokens, "padding_mask": padding}
    relevance, errors = _relative_error(model, "lrp.cp_lrp", x, _next_token(4, 7), sequence_length=SEQ)
    assert errors.max() < 1e-3
    assert np.all(relevance["token_ids"][:, 5:] == 0.0)  # causal mask: positions after 4 cannot matter
    assert np.abs(relevance["token_ids"][:, :5]).min() > 0.0
    assert graph.count_inbound_nodes(model) == counts


@pytest.mark.slow
def test_gpt2_padding_gets_nothing():
    """Left padding (positions 0-2 of the first sample) is masked as keys: the last position's logit ignores it."""
    model = _gpt2()
    tokens, padding = _tokens(batch=2)
    tokens, padding = tokens[:, ::-1].copy(), padding[:, ::-1].copy()
    x = {"token_ids": tokens, "padding_mask": padding}
    analyzer = tfxai.create_analyzer("lrp.cp_lrp", model, sequence_length=SEQ)
    relevance = analyzer.analyze(x, neuron_selection=_next_token(SEQ - 1, 3))["token_ids"]
    assert np.all(relevance[0, :3] == 0.0)
    assert np.abs(relevance[0, 3:]).min() > 0.0 and np.abs(relevance[1]).min() > 0.0


def test_a_layer_that_needs_fixed_shapes_says_so_without_a_length():
    with pytest.raises(tfxai.UnsupportedLayerError, match="sequence_length=16") as info:
        tfxai.create_analyzer("lrp.cp_lrp", _gpt2())
    assert sorted(name.split("/")[-1] for name, kind in info.value.nodes if kind == "TransformerDecoder") == [
        "transformer_layer_0",
        "transformer_layer_1",
    ]


@pytest.mark.slow
def test_gemma_next_token_conserves():
    model = _zero_biases(_gemma())
    tokens, padding = _tokens(batch=2)
    x = {"token_ids": tokens, "padding_mask": padding}
    relevance, errors = _relative_error(model, "lrp.cp_lrp", x, _next_token(4, 3), sequence_length=SEQ)
    assert errors.max() < 1e-3
    assert np.all(relevance["token_ids"][:, 5:] == 0.0)


@pytest.mark.slow
def test_vit_classifier_conserves():
    keras.utils.set_random_seed(5)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    model = _zero_biases(keras_hub.models.ViTImageClassifier(backbone, 3, preprocessor=None))
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    analyzer = tfxai.create_analyzer("lrp.cp_lrp", model, epsilon=0.0)
    relevance, delta = analyzer.analyze(x, neuron_selection=1, return_delta=True)
    assert relevance.shape == x.shape
    assert np.abs(delta / np.asarray(model(x))[:, 1]).max() < 1e-3


# ------------------------------------------------------------------ capture


class Residual(L.Layer):
    """A user's block: an inner Dense and a keras.ops residual sum (capturable)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.inner = L.Dense(units, use_bias=False)

    def call(self, x):
        return keras.ops.add(self.inner(x), x)


class Encoder(L.Layer):
    """A user's encoder block: MultiHeadAttention, LayerNorm, a GELU FFN, nested Residual."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attention = L.MultiHeadAttention(2, 4, use_bias=False)
        self.norm = L.LayerNormalization(center=False)
        self.ffn = L.Dense(8, activation="gelu", use_bias=False)
        self.residual = Residual(8)

    def call(self, x, padding_mask=None):
        mask = None if padding_mask is None else keras.ops.expand_dims(padding_mask, 1)
        h = self.norm(x + self.attention(x, x, attention_mask=mask))
        return self.residual(self.ffn(h))


def _encoder_model():
    keras.utils.set_random_seed(6)
    tokens = keras.Input((SEQ,), dtype="int32", name="token_ids")
    padding = keras.Input((SEQ,), dtype="int32", name="padding_mask")
    h = Encoder(name="encoder")(L.Embedding(VOCAB, 8, name="embed")(tokens), padding_mask=padding)
    y = L.Dense(3, use_bias=False, name="logits")(L.GlobalAveragePooling1D()(h))
    return keras.Model([tokens, padding], y)


def test_nested_user_layers_are_captured_conserve_and_stay_untouched():
    model = _encoder_model()
    counts = graph.count_inbound_nodes(model)
    assert any(k[0] > 0 for k in counts.values())
    analyzer = tfxai.create_analyzer("lrp.cp_lrp", model, epsilon=0.0)
    kinds = {(node.name.count("/"), node.op_type) for node in analyzer.view.nodes}
    assert (1, L.MultiHeadAttention) in kinds and (
        2,
        L.Dense,
    ) in kinds  # encoder/<mha>, encoder/<residual>/<dense>
    tokens, padding = _tokens()
    padding[0, 5:] = 1  # Embedding has no mask_zero: token 0 is real here
    relevance, delta = analyzer.analyze([tokens, padding], return_delta=True)
    assert np.abs(delta / np.asarray(model([tokens, padding])).max(axis=1)).max() < 1e-4
    assert graph.count_inbound_nodes(model) == counts


class Linear(L.Layer):
    """A captured block made of linear parts only: a Dense, an einsum with a constant, a residual sum."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = L.Dense(5, use_bias=False)
        self.mix = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(5, 5)).astype("float32"))

    def call(self, x):
        h = self.dense(x)
        return keras.ops.einsum("bf,fg->bg", h, self.mix) + h


def test_lrp_z_equals_input_times_gradient_on_a_linear_captured_block():
    keras.utils.set_random_seed(7)
    x = keras.Input((4,))
    model = keras.Model(x, L.Dense(2, use_bias=False)(Linear()(x)))
    data = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    lrp = tfxai.create_analyzer("lrp.cp_lrp", model, epsilon=0.0).analyze(data, neuron_selection=0)
    ixg = tfxai.create_analyzer("input_t_gradient", model).analyze(data, neuron_selection=0)
    np.testing.assert_allclose(lrp, ixg, rtol=1e-4, atol=1e-6)


class RawTF(L.Layer):
    def call(self, x):
        return tf.math.scalar_mul(2.0, x)


def test_an_uncapturable_layer_is_named_with_the_reason_and_a_registered_rule_wins():
    x = keras.Input((4,))
    model = keras.Model(x, L.Dense(2)(RawTF(name="raw")(x)))
    with pytest.raises(tfxai.UnsupportedLayerError, match="'raw' \\(RawTF\\): not captured") as info:
        tfxai.create_analyzer("lrp.epsilon", model)
    assert "tfxai.register_rule(RawTF" in str(info.value) and info.value.nodes == [("raw", "RawTF")]
    try:
        tfxai.register_rule(RawTF, rules.Pass())
        analyzer = tfxai.create_analyzer("lrp.epsilon", model)
        assert [node.name for node in analyzer.view.nodes][0] == "raw"
        tfxai.register_rule(Residual, rules.Pass())  # a capturable layer with a rule stays one node
        y = keras.Input((4,))
        wrapped = keras.Model(y, L.Dense(2)(Residual(4, name="res")(y)))
        view_names = [node.name for node in tfxai.create_analyzer("lrp.epsilon", wrapped).view.nodes]
        assert view_names[0] == "res"
    finally:
        tfxai.unregister_rule(RawTF)
        tfxai.unregister_rule(Residual)


# ------------------------------------------------------------------ rules against literal formulas


def test_attn_softmax_and_bilinear_match_their_formulas():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(2, 3, 4)).astype("float32")
    weights = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    r = rng.normal(size=scores.shape).astype("float32")
    layer = L.Softmax()
    node = graph.Node("s", layer, type(layer), ("in",), ("out",), lambda v, p=None: [layer(v[0])])
    state = rules.NodeState([tf.constant(scores)], [tf.constant(weights)])
    (got,) = transformer.AttnSoftmax().backward(node, state, [tf.constant(r)])
    expected = scores * (r - weights * r.sum(-1, keepdims=True))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    a, b = rng.normal(size=(2, 3, 4)).astype("float32"), rng.normal(size=(2, 4, 5)).astype("float32")
    z = np.einsum("bij,bjk->bik", a, b)
    r = rng.normal(size=z.shape).astype("float32")
    mul = lambda v, p=None: [tf.einsum("bij,bjk->bik", v[0], v[1])]  # noqa: E731
    node = graph.Node("m", None, object, ("a", "b"), ("z",), mul)
    got_a, got_b = transformer.Bilinear(0.0).backward(
        node, rules.NodeState([tf.constant(a), tf.constant(b)], [tf.constant(z)]), [tf.constant(r)]
    )
    share = r / z  # literal: R_ij,k split by contributions a_ij b_jk / z_ik, half to each factor
    expected_a = 0.5 * np.einsum("bij,bjk,bik->bij", a, b, share)
    expected_b = 0.5 * np.einsum("bij,bjk,bik->bjk", a, b, share)
    np.testing.assert_allclose(got_a, expected_a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_b, expected_b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.sum(got_a) + np.sum(got_b), np.sum(r), rtol=1e-4)


class OpsAttention(L.Layer):
    """Single-head attention written with keras.ops (as Gemma's is): captured, no MHA rule involved."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.q, self.k, self.v = (L.Dense(3, use_bias=False) for _ in range(3))
        self.softmax = L.Softmax()

    def call(self, x):
        weights = self.softmax(keras.ops.einsum("btd,bsd->bts", self.q(x), self.k(x)))
        return keras.ops.einsum("bts,bsd->btd", weights, self.v(x))


def _lrp0(x, kernel, relevance, z):
    """Literal LRP-0 through ``z = x @ kernel``: ``R_i = sum_j x_i w_ij R_j / z_j``."""
    return np.einsum("ti,ij,tj->ti", x, kernel, relevance / z)


def numpy_attn_lrp(x, wq, wk, wv, head, target):
    """AttnLRP (epsilon 0) of one sample through OpsAttention + Flatten + bias-free Dense, loop-free NumPy."""
    q, k, v = x @ wq, x @ wk, x @ wv
    s = q @ k.T
    a = np.exp(s) / np.exp(s).sum(-1, keepdims=True)
    o = a @ v
    y = o.ravel() @ head
    r_o = (o.ravel() * head[:, target] * y[target] / y[target]).reshape(o.shape)
    r_a = 0.5 * np.einsum("ts,sd,td->ts", a, v, r_o / o)
    r_v = 0.5 * np.einsum("ts,sd,td->sd", a, v, r_o / o)
    r_s = s * (r_a - a * r_a.sum(-1, keepdims=True))
    r_q = 0.5 * np.einsum("td,sd,ts->td", q, k, r_s / s)
    r_k = 0.5 * np.einsum("td,sd,ts->sd", q, k, r_s / s)
    return _lrp0(x, wq, r_q, q) + _lrp0(x, wk, r_k, k) + _lrp0(x, wv, r_v, v)


def test_attn_lrp_through_captured_ops_attention_matches_numpy():
    keras.utils.set_random_seed(8)
    x = keras.Input((4, 3))
    block = OpsAttention(name="att")
    model = keras.Model(x, L.Dense(2, use_bias=False, name="head")(L.Flatten()(block(x))))
    data = np.random.default_rng(3).normal(size=(3, 4, 3)).astype("float32")
    got = tfxai.create_analyzer("lrp.attn_lrp", model, epsilon=0.0).analyze(data, neuron_selection=1)
    weights = [w.numpy().astype("float64") for w in (block.q.kernel, block.k.kernel, block.v.kernel)]
    head = model.get_layer("head").kernel.numpy().astype("float64")
    expected = np.stack([numpy_attn_lrp(d.astype("float64"), *weights, head, 1) for d in data])
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)
    cp, delta = tfxai.create_analyzer("lrp.cp_lrp", model, epsilon=0.0).analyze(
        data, neuron_selection=1, return_delta=True
    )
    assert np.abs(delta).max() < 1e-4 * np.abs(cp).sum(axis=(1, 2)).max()


# ------------------------------------------------------------------ token-level gradient methods


@pytest.mark.slow
def test_gradient_methods_explain_tokens_inside_custom_embedding_layers():
    model = _distil_bert()  # its embedding sits inside TokenAndPositionEmbedding
    tokens, padding = _tokens()
    x = {"token_ids": tokens, "padding_mask": padding}
    for method in ("gradient", "input_t_gradient", "smoothgrad"):
        relevance = tfxai.create_analyzer(method, model).analyze(x, neuron_selection=1)["token_ids"]
        assert relevance.dtype == np.float32 and np.abs(relevance[padding == 1]).min() > 0.0, method
        assert np.all(relevance[0, 5:] == 0.0), method


@pytest.mark.slow
def test_integrated_gradients_on_tokens_is_complete():
    model = _bert()
    x = _bert_inputs()
    analyzer = tfxai.create_analyzer("integrated_gradients", model, steps=32)
    relevance, delta = analyzer.analyze(x, neuron_selection=2, return_delta=True)
    explained = relevance["token_ids"].sum(axis=1) + relevance["segment_ids"].sum(axis=1) + delta
    assert np.abs(delta).max() < 2e-2 * np.abs(explained).max()
    assert np.all(relevance["token_ids"][0, 5:] == 0.0) and np.abs(relevance["token_ids"][1]).min() > 0


def test_gradient_refuses_a_model_with_no_visible_embedding():
    class OpaqueEmbedding(L.Layer):
        def build(self, shape):
            self.table = self.add_weight(shape=(VOCAB, 4))

        def call(self, ids):
            return tf.gather(self.table, ids)

    tokens = keras.Input((SEQ,), dtype="int32")
    model = keras.Model(tokens, L.Dense(2)(L.GlobalAveragePooling1D()(OpaqueEmbedding()(tokens))))
    with pytest.raises(tfxai.ModelError, match="nothing to differentiate"):
        tfxai.create_analyzer("gradient", model)


# ------------------------------------------------------------------ export


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_export_round_trip_equals_analyze(name, tmp_path):
    if name == "bert":
        model, x, kwargs, target = _bert(), _bert_inputs(), {}, 1
    else:
        tokens, padding = _tokens(batch=2)
        model, x, kwargs, target = (
            _gpt2(),
            {"token_ids": tokens, "padding_mask": padding},
            {"sequence_length": SEQ},
            7,
        )
    analyzer = tfxai.create_analyzer("lrp.cp_lrp", model, **kwargs)
    expected = analyzer.analyze(x)
    analyzer.export(str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    outputs = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in x.items()})
    got = {k: v.numpy() for k, v in outputs.items() if k.startswith("relevance")}
    assert got, sorted(outputs)
    flat = np.concatenate([np.ravel(expected[k]) for k in sorted(expected)])
    np.testing.assert_allclose(
        np.sort(np.concatenate([np.ravel(v) for v in got.values()])), np.sort(flat), atol=1e-5
    )
    del target


# ------------------------------------------------------------------ a planted token decides the label


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lrp.cp_lrp", "lrp.attn_lrp"])
def test_planted_token_ranks_first_in_a_trained_kerashub_bert(method):
    """A 1-layer KerasHub BERT trained on sentences where one planted word is the only evidence (~20 s)."""
    from tfxai import datasets

    keras.utils.set_random_seed(0)
    tokens, labels, _ = datasets.make_sentiment(2000, seed=0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(datasets.SENTIMENT_VOCABULARY),
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=16,
        dropout=0.0,
    )
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None, dropout=0.0)

    def features(ids):
        return {
            "token_ids": ids,
            "segment_ids": np.zeros_like(ids),
            "padding_mask": (ids != 0).astype("int32"),
        }

    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(features(tokens), labels, epochs=4, batch_size=32, verbose=0)
    test_tokens, test_labels, planted = datasets.make_sentiment(300, seed=1)
    assert model.evaluate(features(test_tokens), test_labels, verbose=0)[1] > 0.95
    relevance = tfxai.create_analyzer(method, model).analyze(
        features(test_tokens), neuron_selection=test_labels
    )
    assert np.mean(relevance["token_ids"].argmax(axis=1) == planted) >= 0.95


def test_generation_heatmap_colours_only_what_each_prediction_saw():
    from tfxai import visualize

    tokens = ["a", "b", "c", "d"]
    relevance = np.array([[1.0, -1.0, 0.0, 0.0], [0.5, 0.0, 2.0, 0.0]])
    figure = visualize.generation_heatmap(tokens, ["c", "d"], relevance)
    grid = figure.axes[0].images[0].get_array()
    assert grid.shape == (2, 4, 3)
    np.testing.assert_allclose(grid[0, 2:], 1.0)  # the first generated token saw "a", "b" only
    np.testing.assert_allclose(grid[1, 3], 1.0)
    assert grid[0, 0, 0] > grid[0, 0, 2] and grid[0, 1, 2] > grid[0, 1, 0]  # red for +, blue for -
    with pytest.raises(ValueError, match="len\\(generated\\), len\\(tokens\\)"):
        visualize.generation_heatmap(tokens, ["d"], relevance)


def test_select_gives_each_branch_the_relevance_of_its_positions():
    condition = tf.constant([[True, False, True]])
    a, b = tf.constant([[1.0, 2.0, 3.0]]), tf.constant([[0.5]])  # b broadcast, as where(mask, x, zeros_like)
    state = rules.NodeState([condition, a, b], [tf.where(condition, a, b)])
    r = tf.constant([[1.0, 2.0, 4.0]])
    none, r_a, r_b = transformer.Select().backward(None, state, [r])
    assert none is None
    np.testing.assert_allclose(r_a, [[1.0, 0.0, 4.0]])
    np.testing.assert_allclose(r_b, [[2.0]])
