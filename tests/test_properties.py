"""Mathematical properties every LRP analyzer must have, on the whole model zoo.

Tolerances: the models run in float32 (unit round-off ~6e-8). The zoo nets are
shallow (< 10 layers, < 300 terms per sum), so the accumulated round-off of a
relevance sum is ~1e-6 relative to the largest logit of the batch; 1e-5 leaves a
10x margin while a real leak (a dropped branch, a bias, a double-counted fan-out)
shows up at 1e-2 or more. Errors are measured relative to the batch's largest
|logit| so that a sample whose logit happens to be ~0 does not divide by zero.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai.analyzers.base import selection_mask
from conftest import ZOO_NAMES, input_shapes, make_inputs, predict, summed

RTOL = 1e-5


def _explained_output(model, name, x):
    y = predict(model, x)
    return y[1] if name == "multi_output" else y


def _options(name):
    return {"output_index": 1} if name == "multi_output" else {}


def _as_list(relevance):
    return relevance if isinstance(relevance, list) else [relevance]


def _reference_input_times_gradient(model, name, x, index):
    """``x * d y[index] / d x`` computed by differentiating the Keras model itself."""
    xs = [tf.constant(a) for a in _as_list(x)]
    with tf.GradientTape() as tape:
        tape.watch(xs)
        y = model(xs if len(xs) > 1 else xs[0], training=False)
        if name == "multi_output":
            y = y[1]
        picked = tf.reduce_sum(y * tf.one_hot(index, y.shape[-1]))
    grads = tape.gradient(picked, xs)
    return [a * g.numpy() for a, g in zip(_as_list(x), grads)]


# --------------------------------------------------------------------------- conservation


CONSERVATIVE = [("lrp.z", {}), ("lrp.epsilon", {"epsilon": 1e-9})]


@pytest.mark.parametrize("signs", ["positive", "both"])
@pytest.mark.parametrize("method,params", CONSERVATIVE, ids=[m for m, _ in CONSERVATIVE])
@pytest.mark.parametrize("name", ZOO_NAMES)
def test_conservation_on_bias_free_relu_nets(zoo, name, method, params, signs):
    model = zoo(name, use_bias=False)
    x = make_inputs(model, 6, signs, seed=1)
    analyzer = tfxai.create_analyzer(method, model, **params, **_options(name))

    relevance, delta = analyzer.analyze(x, return_delta=True)

    y = _explained_output(model, name, x)
    explained = y[np.arange(len(y)), y.argmax(axis=1)].astype(np.float64)
    scale = np.abs(explained).max()
    assert scale > 1e-2, "degenerate fixture: all explained logits are ~0"

    # One relevance array per input, of the input's shape, finite and not trivially zero.
    relevance_list = _as_list(relevance)
    assert len(relevance_list) == len(model.inputs)
    for r, shape in zip(relevance_list, input_shapes(model)):
        assert isinstance(r, np.ndarray)
        assert r.shape == (6,) + shape
        assert np.all(np.isfinite(r))
        assert np.abs(r).max() > 1e-4 * scale

    total = summed(relevance)
    np.testing.assert_allclose(total, explained, rtol=RTOL, atol=RTOL * scale)

    # The reported delta is the explained output minus the summed relevance ...
    assert delta.shape == (6,)
    np.testing.assert_allclose(delta, explained - total, rtol=0, atol=RTOL * scale)
    # ... and is ~0 here.
    assert np.abs(delta).max() <= RTOL * scale


def test_conservation_multi_input_splits_relevance_over_both_inputs(zoo):
    model = zoo("multi_input")
    xa, xb = make_inputs(model, 5, "positive", seed=2)
    analyzer = tfxai.create_analyzer("lrp.epsilon", model, epsilon=1e-9)
    ra, rb = analyzer.analyze([xa, xb])
    y = predict(model, [xa, xb])
    explained = y.max(axis=1)
    scale = np.abs(explained).max()
    sum_a = ra.reshape(5, -1).sum(1)
    sum_b = rb.reshape(5, -1).sum(1)
    # Each input carries a real share; only together do they add up to the logit.
    assert np.abs(sum_a).max() > 1e-2 * scale
    assert np.abs(sum_b).max() > 1e-2 * scale
    np.testing.assert_allclose(sum_a + sum_b, explained, rtol=RTOL, atol=RTOL * scale)


@pytest.mark.parametrize("output_index", [0, 1])
def test_conservation_for_each_output_of_a_multi_output_model(zoo, output_index):
    model = zoo("multi_output")
    x = make_inputs(model, 5, "both", seed=3)
    analyzer = tfxai.create_analyzer("lrp.z", model, output_index=output_index)
    relevance, delta = analyzer.analyze(x, return_delta=True)
    y = predict(model, x)[output_index]
    explained = y.max(axis=1)
    scale = np.abs(explained).max()
    np.testing.assert_allclose(relevance.reshape(5, -1).sum(1), explained, rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(delta, 0.0, atol=RTOL * scale)


def test_multi_output_explanations_differ_per_output(zoo):
    model = zoo("multi_output")
    x = make_inputs(model, 4, "both", seed=3)
    r0 = tfxai.create_analyzer("lrp.z", model, output_index=0).analyze(x)
    r1 = tfxai.create_analyzer("lrp.z", model, output_index=1).analyze(x)
    assert not np.allclose(r0, r1, atol=1e-3)


def test_epsilon_absorbs_relevance_as_epsilon_grows(zoo):
    """A large epsilon loses relevance; the loss is exactly the reported delta."""
    model = zoo("mlp")
    x = make_inputs(model, 6, "positive", seed=4)
    _, delta_small = tfxai.create_analyzer("lrp.epsilon", model, epsilon=1e-9).analyze(x, return_delta=True)
    large, delta_large = tfxai.create_analyzer("lrp.epsilon", model, epsilon=1.0).analyze(
        x, return_delta=True
    )
    explained = predict(model, x).max(axis=1)
    assert np.abs(delta_large).max() > 1e-2 * np.abs(explained).max()
    assert np.all(np.abs(delta_large) >= np.abs(delta_small))
    np.testing.assert_allclose(delta_large, explained - summed(large), atol=1e-5 * np.abs(explained).max())


# --------------------------------------------------------------------------- LRP-0 == x * grad


@pytest.mark.parametrize("use_bias", [False, True], ids=["no_bias", "bias"])
@pytest.mark.parametrize("name", ZOO_NAMES)
@pytest.mark.slow
def test_lrp_z_equals_input_times_gradient_on_relu_nets(zoo, name, use_bias):
    model = zoo(name, use_bias=use_bias)
    x = make_inputs(model, 5, "both", seed=5)
    index = _explained_output(model, name, x).argmax(axis=1)

    lrp = _as_list(tfxai.create_analyzer("lrp.z", model, **_options(name)).analyze(x))
    ixg = _as_list(tfxai.create_analyzer("input_t_gradient", model, **_options(name)).analyze(x))
    reference = _reference_input_times_gradient(model, name, x, index)

    scale = max(np.abs(r).max() for r in reference)
    assert scale > 1e-3
    for got_lrp, got_ixg, want in zip(lrp, ixg, reference):
        np.testing.assert_allclose(got_ixg, want, rtol=RTOL, atol=RTOL * scale)
        np.testing.assert_allclose(got_lrp, want, rtol=RTOL, atol=RTOL * scale)


def test_biases_break_conservation_by_the_reported_delta(zoo):
    """With biases LRP-0 is not conservative; delta says by how much, honestly."""
    model = zoo("mlp", use_bias=True)
    x = make_inputs(model, 6, "both", seed=6)
    relevance, delta = tfxai.create_analyzer("lrp.z", model).analyze(x, return_delta=True)
    explained = predict(model, x).max(axis=1)
    assert np.abs(delta).max() > 1e-3
    np.testing.assert_allclose(delta, explained - summed(relevance), atol=1e-5 * np.abs(explained).max())


# --------------------------------------------------------------------------- batching


BATCH_METHODS = [("lrp.epsilon", {}), ("lrp.epsilon_gamma_box", {"low": -3.0, "high": 3.0}), ("gradient", {})]


@pytest.mark.parametrize("method,params", BATCH_METHODS, ids=[m for m, _ in BATCH_METHODS])
def test_batch_equals_samples_one_by_one(zoo, method, params):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 7, "both", seed=7)
    analyzer = tfxai.create_analyzer(method, model, **params)
    batch = analyzer.analyze(x)
    single = np.concatenate([analyzer.analyze(x[i : i + 1]) for i in range(len(x))])
    scale = np.abs(batch).max()
    assert scale > 0
    np.testing.assert_allclose(batch, single, rtol=RTOL, atol=RTOL * scale)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 100])
def test_batch_size_chunking_gives_the_same_result(zoo, batch_size):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 7, "both", seed=8)
    targets = np.array([0, 2, 1, 1, 0, 2, 2])
    analyzer = tfxai.create_analyzer("lrp.epsilon", model)
    whole, delta_whole = analyzer.analyze(x, return_delta=True)
    chunked, delta_chunked = analyzer.analyze(x, batch_size=batch_size, return_delta=True)
    scale = np.abs(whole).max()
    np.testing.assert_allclose(chunked, whole, rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(delta_chunked, delta_whole, rtol=RTOL, atol=RTOL * scale)
    # Per-sample targets must stay aligned with their samples across chunks.
    by_index = analyzer.analyze(x, neuron_selection=targets)
    by_index_chunked = analyzer.analyze(x, neuron_selection=targets, batch_size=batch_size)
    np.testing.assert_allclose(by_index_chunked, by_index, rtol=RTOL, atol=RTOL * scale)


def test_multi_input_batch_size_chunking(zoo):
    model = zoo("multi_input", use_bias=True)
    x = make_inputs(model, 5, "both", seed=9)
    analyzer = tfxai.create_analyzer("lrp.epsilon", model)
    whole = analyzer.analyze(x)
    chunked = analyzer.analyze(x, batch_size=2)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=RTOL * np.abs(a).max())


@pytest.mark.parametrize(
    "mode,selection", [("max_activation", "max_activation"), ("all", "all"), ("index", 1)]
)
def test_no_retracing_per_batch_size(zoo, mode, selection):
    model = zoo("cnn", use_bias=True)
    analyzer = tfxai.create_analyzer("lrp.epsilon", model)
    for n in (1, 3, 7, 2):
        analyzer.analyze(make_inputs(model, n, "both", seed=n), neuron_selection=selection)
    function = analyzer.compiled(mode)
    assert function.experimental_get_tracing_count() == 1


def test_chunking_does_not_retrace(zoo):
    model = zoo("mlp", use_bias=True)
    analyzer = tfxai.create_analyzer("lrp.epsilon", model)
    analyzer.analyze(make_inputs(model, 10, "both"), batch_size=3)  # chunks of 3, 3, 3, 1
    assert analyzer.compiled("max_activation").experimental_get_tracing_count() == 1


# --------------------------------------------------------------------------- eager / graph / XLA


EAGER_CASES = [
    ("cnn", "lrp.epsilon", {}),
    ("cnn", "lrp.epsilon_gamma_box", {"low": -3.0, "high": 3.0}),
    ("cnn", "lrp.alpha_2_beta_1", {}),
    ("residual", "lrp.epsilon_plus_flat", {}),
    ("multi_input", "lrp.z", {}),
    ("nested_functional", "input_t_gradient", {}),
]


def _close_lists(got, want):
    for g, w in zip(_as_list(got), _as_list(want)):
        g, w = np.asarray(g), np.asarray(w)
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=RTOL * max(np.abs(w).max(), 1e-12))


@pytest.mark.parametrize("name,method,params", EAGER_CASES, ids=[f"{n}-{m}" for n, m, _ in EAGER_CASES])
def test_eager_equals_tf_function(zoo, name, method, params):
    model = zoo(name, use_bias=True)
    x = make_inputs(model, 4, "both", seed=10)
    analyzer = tfxai.create_analyzer(method, model, **params)
    graph_result, graph_delta = analyzer.analyze(x, return_delta=True)

    xs = [tf.constant(a) for a in _as_list(x)]
    relevance, explained, predictions = analyzer.explain_tensors(
        xs, lambda y: selection_mask(y, "max_activation")
    )
    assert all(hasattr(r, "numpy") for r in relevance)  # eager tensors, not symbolic ones
    _close_lists([r.numpy() for r in relevance], graph_result)
    eager_delta = explained.numpy() - summed([r.numpy() for r in relevance])
    np.testing.assert_allclose(eager_delta, graph_delta, atol=1e-5 * np.abs(explained.numpy()).max())
    _close_lists([p.numpy() for p in predictions], _as_list(predict(model, x)))

    tf.config.run_functions_eagerly(True)
    try:
        eager_result = analyzer.analyze(x)
    finally:
        tf.config.run_functions_eagerly(False)
    _close_lists(eager_result, graph_result)


@pytest.mark.parametrize(
    "name,method,params", EAGER_CASES[:4], ids=[f"{n}-{m}" for n, m, _ in EAGER_CASES[:4]]
)
@pytest.mark.slow
def test_jit_compile_gives_the_same_numbers(zoo, name, method, params):
    model = zoo(name, use_bias=True)
    x = make_inputs(model, 4, "both", seed=11)
    plain = tfxai.create_analyzer(method, model, **params).analyze(x)
    xla_analyzer = tfxai.create_analyzer(method, model, jit_compile=True, **params)
    assert xla_analyzer.compiled("max_activation")._jit_compile is True
    _close_lists(xla_analyzer.analyze(x), plain)
