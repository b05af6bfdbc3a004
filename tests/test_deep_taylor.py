"""Deep Taylor decomposition against the literal NumPy rules, and its conservation."""

from __future__ import annotations

import numpy as np
import pytest

import tfxai
from tfxai import rules
import numpy_reference as ref
from conftest import make_inputs, predict, summed


def _dense_weights(model):
    layers = [model.get_layer(name) for name in ("d1", "d2", "logits")]
    return [(np.asarray(layer.kernel, np.float64), np.asarray(layer.bias, np.float64)) for layer in layers]


def _reference(model, x, first_layer):
    """Deep Taylor on the zoo MLP: z+ (bias ignored) per layer, ``first_layer`` at the input."""
    weights = _dense_weights(model)
    activations = [np.asarray(x, np.float64)]
    for kernel, bias in weights[:-1]:
        activations.append(np.maximum(activations[-1] @ kernel + bias, 0.0))
    kernel, bias = weights[-1]
    y = activations[-1] @ kernel + bias
    relevance = y * np.eye(y.shape[1])[y.argmax(axis=1)]
    for a, (kernel, _) in zip(reversed(activations[1:]), reversed(weights[1:])):
        relevance, _ = ref.lrp_alpha_beta(a, kernel, np.zeros(kernel.shape[1]), relevance, 1.0, 0.0)
    return first_layer(activations[0], weights[0][0], relevance)


def _z_plus(a, kernel, relevance):
    return ref.lrp_alpha_beta(a, kernel, np.zeros(kernel.shape[1]), relevance, 1.0, 0.0)[0]


def test_deep_taylor_matches_the_numpy_rules(zoo):
    model = zoo("mlp", use_bias=True)
    x = make_inputs(model, 6, "positive", seed=1)
    want = _reference(model, x, _z_plus)
    got = tfxai.create_analyzer("deep_taylor", model).analyze(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_bounded_deep_taylor_matches_the_numpy_rules(zoo):
    model = zoo("mlp", use_bias=True)
    x = make_inputs(model, 6, "both", seed=2)
    low = np.full(x.shape, -3.0)
    high = np.linspace(3.0, 4.0, x.shape[1])[None].repeat(len(x), axis=0)
    want = _reference(model, x, lambda a, kernel, r: ref.lrp_zbox(a, kernel, r, low, high)[0])
    analyzer = tfxai.create_analyzer("deep_taylor.bounded", model, low=-3.0, high=high[0])
    got = analyzer.analyze(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    first = [node for node in analyzer.view.nodes if node.params is not None][0]
    assert isinstance(analyzer.assignment[first.name], rules.ZBox)
    weighted = [n.name for n in analyzer.view.nodes if n.params is not None and n.name != first.name]
    assert weighted and all(isinstance(analyzer.assignment[name], rules.ZPlus) for name in weighted)


@pytest.mark.parametrize(
    "method,params", [("deep_taylor", {}), ("deep_taylor.bounded", {"low": 0.0, "high": 1.0})]
)
@pytest.mark.parametrize("name", ["mlp", "cnn", "nested_functional", "concat"])
@pytest.mark.slow
def test_deep_taylor_conserves_on_bias_free_relu_nets(zoo, name, method, params):
    """Positive inputs (in the bounds), no biases: every z+ / z^B denominator is positive."""
    model = zoo(name, use_bias=False)
    x = make_inputs(model, 5, "positive", seed=3)
    relevance, delta = tfxai.create_analyzer(method, model, **params).analyze(x, return_delta=True)
    explained = predict(model, x).max(axis=1)
    assert np.abs(summed(relevance)).max() > 1e-3
    np.testing.assert_allclose(delta, 0.0, atol=1e-5 * np.abs(explained).max())
