"""Text and time-series models: Embedding, recurrent layers, attention; their pictures."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.figure import Figure

import tfxai
from tfxai import attention, datasets, graph, recurrent, rules, visualize

L = keras.layers
TOKENS = np.array([[1, 2, 3, 4, 0, 0, 0], [4, 5, 6, 7, 8, 9, 10], [3, 3, 0, 0, 0, 0, 0]], "int32")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _epsilon_split(contributions, total, relevance, epsilon):
    """Literal LRP-epsilon: ``R_j = sum_k z_jk / (z_k + eps sign(z_k)) R_k`` for ``z_jk`` (J, K)."""
    denominator = total + epsilon * np.where(total >= 0, 1.0, -1.0)
    return (contributions / denominator[None, :] * relevance[None, :]).sum(axis=1)


def numpy_lstm_lrp(x, kernel, recurrent_kernel, bias, head, target, epsilon):
    """Arras et al.'s LSTM rules, one sample, loop by loop: relevance of ``x`` (T, D).

    Model: Keras LSTM (gates i, f, c, o), then a bias-free Dense ``head``.
    """
    steps, n = len(x), recurrent_kernel.shape[0]
    h, c, gates = np.zeros((steps + 1, n)), np.zeros((steps + 1, n)), []
    for t in range(steps):
        z = x[t] @ kernel + h[t] @ recurrent_kernel + bias
        i, f, g, o = _sigmoid(z[:n]), _sigmoid(z[n : 2 * n]), np.tanh(z[2 * n : 3 * n]), _sigmoid(z[3 * n :])
        c[t + 1] = f * c[t] + i * g
        h[t + 1] = o * np.tanh(c[t + 1])
        gates.append((i, f, g))
    y = h[steps] @ head
    r_y = np.zeros_like(y)
    r_y[target] = y[target]
    r_h = _epsilon_split(h[steps][:, None] * head, y, r_y, epsilon)
    r_c, r_x = np.zeros(n), np.zeros_like(x)
    for t in reversed(range(steps)):
        i, f, g = gates[t]
        r_c = r_c + r_h  # h = o * tanh(c): everything to c, none to the gate o
        denominator = c[t + 1] + epsilon * np.where(c[t + 1] >= 0, 1.0, -1.0)
        r_c_prev, r_g = f * c[t] / denominator * r_c, i * g / denominator * r_c
        w, u, b = kernel[:, 2 * n : 3 * n], recurrent_kernel[:, 2 * n : 3 * n], bias[2 * n : 3 * n]
        z_g = x[t] @ w + h[t] @ u + b
        r_x[t] = _epsilon_split(x[t][:, None] * w, z_g, r_g, epsilon)
        r_h = _epsilon_split(h[t][:, None] * u, z_g, r_g, epsilon)
        r_c = r_c_prev
    return r_x


def test_lstm_matches_numpy_reference():
    keras.utils.set_random_seed(3)
    lstm = L.LSTM(3, bias_initializer="random_normal")
    model = keras.Sequential([keras.Input((5, 2)), lstm, L.Dense(2, use_bias=False)])
    x = np.random.default_rng(0).normal(size=(4, 5, 2)).astype("float32")
    relevance = tfxai.create_analyzer("lrp.epsilon", model, epsilon=1e-3).analyze(x, neuron_selection=0)
    weights = [w.numpy().astype("float64") for w in lstm.cell.weights]
    head = model.layers[-1].kernel.numpy().astype("float64")
    expected = np.stack([numpy_lstm_lrp(s.astype("float64"), *weights, head, 0, 1e-3) for s in x])
    np.testing.assert_allclose(relevance, expected, atol=1e-6, rtol=1e-4)


def test_lstm_with_constant_gates_is_input_times_gradient():
    """Gates independent of the data and a linear activation make the LSTM linear: LRP-0 = x * grad."""
    keras.utils.set_random_seed(1)
    n = 3
    lstm = L.LSTM(n, activation="linear")
    model = keras.Sequential([keras.Input((6, 2)), lstm, L.Dense(1, use_bias=False)])
    kernel, recurrent_kernel, bias = [w.numpy() for w in lstm.cell.weights]
    for gate in (0, 1, 3):
        kernel[:, gate * n : (gate + 1) * n] = 0.0
        recurrent_kernel[:, gate * n : (gate + 1) * n] = 0.0
    bias[2 * n : 3 * n] = 0.0
    lstm.cell.set_weights([kernel, recurrent_kernel, bias])
    x = np.random.default_rng(1).normal(size=(3, 6, 2)).astype("float32")
    lrp = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.0).analyze(x, neuron_selection=0)
    ixg = tfxai.create_analyzer("input_t_gradient", model).analyze(x, neuron_selection=0)
    np.testing.assert_allclose(lrp, ixg, atol=1e-6)


def _text_model(body, seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((TOKENS.shape[1],), dtype="int32")
    h = body(L.Embedding(12, 5, mask_zero=True)(x))
    return keras.Model(x, L.Dense(3, use_bias=False)(h))


RECURRENT_BODIES = {
    "lstm": lambda e: L.LSTM(4, use_bias=False)(e),
    "gru": lambda e: L.GRU(4, use_bias=False)(e),
    "gru_reset_before": lambda e: L.GRU(4, use_bias=False, reset_after=False)(e),
    "simple_rnn": lambda e: L.SimpleRNN(4, use_bias=False)(e),
    "go_backwards": lambda e: L.LSTM(4, use_bias=False, go_backwards=True)(e),
    "return_sequences": lambda e: L.GlobalAveragePooling1D()(
        L.LSTM(4, use_bias=False, return_sequences=True)(e)
    ),
    "stacked": lambda e: L.GRU(3, use_bias=False)(L.LSTM(4, use_bias=False, return_sequences=True)(e)),
    "bidirectional_concat": lambda e: L.Bidirectional(L.LSTM(4, use_bias=False))(e),
    "bidirectional_sum_sequences": lambda e: L.GlobalAveragePooling1D()(
        L.Bidirectional(L.GRU(4, use_bias=False, return_sequences=True), merge_mode="sum")(e)
    ),
    "bidirectional_ave": lambda e: L.Bidirectional(L.SimpleRNN(4, use_bias=False), merge_mode="ave")(e),
    "time_distributed": lambda e: L.LSTM(4, use_bias=False)(L.TimeDistributed(L.Dense(4, use_bias=False))(e)),
}


def _relative_errors(model, name="lrp.epsilon", **params):
    relevance, delta = tfxai.create_analyzer(name, model, **params).analyze(TOKENS, return_delta=True)
    logits = model(TOKENS).numpy().max(axis=1)
    return relevance, np.abs(delta / logits)


@pytest.mark.parametrize("body", sorted(RECURRENT_BODIES))
@pytest.mark.slow
def test_recurrent_lrp_conserves_and_ignores_padding(body):
    model = _text_model(RECURRENT_BODIES[body])
    if body == "time_distributed":  # TD(Dense) under a mask is not unwrapped; feed the LSTM unmasked here
        keras.utils.set_random_seed(0)
        x = keras.Input((7, 3))
        model = keras.Model(x, L.Dense(3, use_bias=False)(RECURRENT_BODIES[body](x)))
        relevance, delta = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.0).analyze(
            np.random.default_rng(0).normal(size=(3, 7, 3)).astype("float32"), return_delta=True
        )
        assert np.abs(delta).max() < 1e-4 * np.abs(relevance).sum(axis=(1, 2)).max()
        return
    relevance, errors = _relative_errors(model, epsilon=0.0)
    assert relevance.shape == TOKENS.shape and relevance.dtype == np.float32
    assert errors.max() < 1e-4
    assert np.all(relevance[TOKENS == 0] == 0.0)
    assert np.abs(relevance[TOKENS != 0]).min() > 0.0


def test_default_epsilon_absorbs_little():
    _, errors = _relative_errors(_text_model(RECURRENT_BODIES["lstm"]))
    assert errors.max() < 0.05


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.LSTM(4, return_sequences=True, bias_initializer="random_normal"),
        lambda: L.GRU(4, return_sequences=True, go_backwards=True, bias_initializer="random_normal"),
        lambda: L.GRU(4, reset_after=False, bias_initializer="random_normal"),
        lambda: L.SimpleRNN(4, return_sequences=True, zero_output_for_mask=True),
    ],
)
def test_recurrence_rerun_matches_keras(make):
    keras.utils.set_random_seed(0)
    layer = make()
    x = tf.random.normal((3, 7, 2))
    mask = tf.constant(TOKENS != 0)
    expected = layer(x, mask=mask)
    np.testing.assert_allclose(recurrent.outputs(layer, x, mask), expected, atol=1e-5)


def _block(causal=False, use_bias=False, seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((TOKENS.shape[1],), dtype="int32")
    e = L.Embedding(12, 8, mask_zero=True)(x)
    a = L.MultiHeadAttention(2, 4, use_bias=use_bias)(e, e, use_causal_mask=causal)
    h = L.LayerNormalization(center=use_bias)(L.Add()([e, a]))
    f = L.Dense(16, activation="gelu", use_bias=use_bias)(h)
    f = L.Dense(8, use_bias=use_bias)(f)
    h = L.LayerNormalization(center=use_bias)(L.Add()([h, f]))
    return keras.Model(x, L.Dense(3, use_bias=use_bias)(L.GlobalAveragePooling1D()(h)))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.slow
def test_transformer_block_conserves_and_ignores_padding(causal):
    model = _block(causal)
    counts = graph.count_inbound_nodes(model)
    relevance, errors = _relative_errors(model, epsilon=0.0)
    assert errors.max() < 1e-4
    assert np.all(relevance[TOKENS == 0] == 0.0)
    assert graph.count_inbound_nodes(model) == counts


def test_attnlrp_differs_and_reaches_queries():
    keras.utils.set_random_seed(0)
    q_in, v_in = keras.Input((5, 6), name="q"), keras.Input((4, 6), name="v")
    y = L.Flatten()(L.MultiHeadAttention(2, 3, use_bias=False)(q_in, v_in))
    model = keras.Model([q_in, v_in], L.Dense(2, use_bias=False)(y))
    x = [np.random.default_rng(1).normal(size=(2,) + s).astype("float32") for s in ((5, 6), (4, 6))]
    conservative, delta = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.0).analyze(
        x, return_delta=True
    )
    assert np.all(conservative[0] == 0.0) and np.abs(delta).max() < 1e-4
    attn = tfxai.create_analyzer(
        "lrp", model, rules=[(L.MultiHeadAttention, rules.AttnLRP(rules.Z()))]
    ).analyze(x)
    assert np.abs(attn[0]).sum() > 0 and np.all(np.isfinite(attn[0])) and np.all(np.isfinite(attn[1]))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("scores", [False, True])
def test_attention_recompute_matches_keras(causal, scores):
    keras.utils.set_random_seed(0)
    layer = L.MultiHeadAttention(2, 3)
    query, value = tf.random.normal((2, 5, 6)), tf.random.normal((2, 5, 6))
    query_mask = tf.constant([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]) > 0
    value_mask = tf.constant([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0]]) > 0
    query._keras_mask, value._keras_mask = query_mask, value_mask
    expected = layer(query, value, use_causal_mask=causal, return_attention_scores=scores)
    got = attention.compute(layer, query, value, None, (query_mask, value_mask, None), causal, scores)
    if scores:
        np.testing.assert_allclose(got.weights, expected[1], atol=1e-6)
        expected = expected[0]
    np.testing.assert_allclose(got.output, expected, atol=1e-5)


def test_token_relevance_of_gradient_methods():
    keras.utils.set_random_seed(0)
    x = keras.Input((7,), dtype="int32")
    h = L.GlobalAveragePooling1D()(L.Embedding(12, 5, mask_zero=True)(x))
    model = keras.Model(x, L.Dense(3, use_bias=False)(h))
    ixg = tfxai.create_analyzer("input_t_gradient", model).analyze(TOKENS)
    np.testing.assert_allclose(ixg, tfxai.create_analyzer("lrp.z", model).analyze(TOKENS), atol=1e-6)
    grad = tfxai.create_analyzer("gradient", model).analyze(TOKENS)
    assert grad.shape == TOKENS.shape and grad.dtype == np.float32 and np.all(grad[TOKENS == 0] == 0.0)
    assert tfxai.create_analyzer("gradient", _block()).analyze(TOKENS).shape == TOKENS.shape


def test_recurrent_rule_takes_linear_rules_only():
    with pytest.raises(TypeError, match="linear rule"):
        rules.Recurrent(rules.ZPlus())


@pytest.fixture(scope="module")
def sentiment_model():
    keras.utils.set_random_seed(0)
    tokens, labels, _ = datasets.make_sentiment(3000, seed=0)
    model = keras.Sequential(
        [
            keras.Input((tokens.shape[1],), dtype="int32"),
            L.Embedding(len(datasets.SENTIMENT_VOCABULARY), 16, mask_zero=True),
            L.LSTM(16),
            L.Dense(2),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(tokens, labels, epochs=4, batch_size=64, verbose=0)
    return model


# The planted word is the only evidence of the label, so a model that classifies well must use it;
# chance (the top token picked at random) is about 1/11 for sentences of 6 to 16 tokens. Measured:
# 300/300 test sentences with LRP-epsilon and input x gradient; 0.9 leaves room for training noise.
PLANTED_WORD_THRESHOLD = 0.9


@pytest.mark.parametrize("method", ["lrp.epsilon", "input_t_gradient"])
@pytest.mark.slow
def test_planted_words_rank_first(sentiment_model, method):
    tokens, labels, planted = datasets.make_sentiment(300, seed=1)
    assert np.mean(sentiment_model.predict(tokens, verbose=0).argmax(1) == labels) > 0.95
    relevance = tfxai.create_analyzer(method, sentiment_model).analyze(tokens)
    assert np.mean(relevance.argmax(axis=1) == planted) >= PLANTED_WORD_THRESHOLD
    assert np.all(relevance[tokens == 0] == 0.0)


def _forecaster(layer, epochs=15):
    keras.utils.set_random_seed(1)
    windows, targets = datasets.make_lag_series(4000, seed=0)
    model = keras.Sequential([keras.Input(windows.shape[1:]), layer, L.Dense(1)])
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    model.fit(windows, targets, epochs=epochs, batch_size=128, verbose=0)
    return model


def planted_lag_share(model, method):
    """Mean share of |relevance| on the planted lags over 200 test windows."""
    windows, _ = datasets.make_lag_series(200, seed=1)
    relevance = np.abs(tfxai.create_analyzer(method, model).analyze(windows, neuron_selection=0)[..., 0])
    lags = [-lag for lag in datasets.PLANTED_LAGS]
    return float(np.mean(relevance[:, lags].sum(axis=1) / relevance.sum(axis=1)))


# 2 of 16 lags hold the evidence: a uniform explanation gives them 1/8 of the relevance; "most" is > 1/2.
@pytest.mark.slow
def test_planted_lags_carry_most_relevance_gru_lrp():
    assert planted_lag_share(_forecaster(L.GRU(16)), "lrp.epsilon") > 0.5


@pytest.mark.slow
def test_planted_lags_carry_most_relevance_lstm_input_times_gradient():
    assert planted_lag_share(_forecaster(L.LSTM(16)), "input_t_gradient") > 0.5


def test_text_pictures():
    tokens = ["a", "<b>great</b>", "film", "&"]
    relevance = np.array([0.1, 2.0, -0.5, 0.0, 9.0])  # an extra (padding) value is ignored
    assert isinstance(visualize.text_heatmap(tokens, relevance), Figure)
    html = visualize.text_html(tokens, relevance)
    assert "&lt;b&gt;great&lt;/b&gt;" in html and "<b>" not in html and "&amp;" in html
    assert html.count("<span") == 4
    with pytest.raises(ValueError, match="one relevance value per token"):
        visualize.text_html(tokens, relevance[:2])


def test_series_picture():
    series = np.sin(np.arange(16.0))
    assert isinstance(visualize.series_plot(series, series * 0.1, times=-np.arange(16, 0, -1)), Figure)
    assert isinstance(visualize.series_plot(series[:, None], series[:, None]), Figure)
    with pytest.raises(ValueError, match="same shape"):
        visualize.series_plot(series, series[:5])
