"""DeepLIFT (rescale, reveal-cancel) and DeepSHAP: summation-to-delta, a literal NumPy DeepLIFT, averages."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import make_inputs, predict, summed

import tfxai
from tfxai.errors import ModelError, UnsupportedLayerError

L = keras.layers


def _scale(values):
    return max(1.0, float(np.abs(values).max()))


@pytest.mark.parametrize("name", ["mlp", "cnn", "residual", "concat", "nested_functional", "shared", "rawop"])
@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("method", ["deeplift", "deeplift.reveal_cancel"])
@pytest.mark.slow
def test_summation_to_delta(zoo, name, use_bias, method):
    """sum(R) == f(x) - f(baseline) of the explained logit, to float32 precision."""
    model = zoo(name, use_bias)
    x = make_inputs(model, 6, seed=3)
    analyzer = tfxai.create_analyzer(method, model, baseline=0.25)
    relevance, delta = analyzer.analyze(x, return_delta=True)
    baseline = np.full_like(x, 0.25)
    y, y_ref = predict(model, x), predict(model, baseline)
    index = y.argmax(axis=1)
    expected = y[np.arange(6), index] - y_ref[np.arange(6), index]
    scale = _scale(expected)
    np.testing.assert_allclose(summed(relevance), expected, atol=2e-6 * scale)
    np.testing.assert_allclose(delta, 0.0, atol=2e-6 * scale)


def test_summation_to_delta_multi_input_and_index_selection(zoo):
    model = zoo("multi_input", True)
    x = make_inputs(model, 4, seed=5)
    analyzer = tfxai.create_analyzer("deeplift", model)
    target = [2, 0, 1, 1]
    relevance = analyzer.analyze(x, neuron_selection=target)
    y, y_ref = predict(model, x), predict(model, [np.zeros_like(v) for v in x])
    expected = y[np.arange(4), target] - y_ref[np.arange(4), target]
    np.testing.assert_allclose(summed(relevance), expected, atol=2e-6 * _scale(expected))


# --------------------------------------------------------------------------- literal NumPy DeepLIFT


def _dense_layers(model):
    return [
        (layer.kernel.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64))
        for layer in model.layers
    ]


def _forward(layers, x):
    """Pre-activations and activations of a ReLU MLP (last layer linear)."""
    zs, acts, a = [], [x], x
    for k, (w, b) in enumerate(layers):
        z = a @ w + b
        zs.append(z)
        a = np.maximum(z, 0.0) if k < len(layers) - 1 else z
        acts.append(a)
    return zs, acts


def _rescale(m, dz, dy, grad):
    out = np.empty_like(m)
    far = np.abs(dz) > 1e-6
    out[far] = (m * dy)[far] / dz[far]
    out[~far] = (m * grad)[~far]
    return out


def numpy_deeplift(layers, x, ref, target, reveal_cancel):
    """DeepLIFT of a ReLU MLP written out neuron by neuron (Shrikumar et al. 2017, eqs. of sec. 3)."""
    relu = lambda v: np.maximum(v, 0.0)
    zs, acts = _forward(layers, x)
    zr, actr = _forward(layers, ref)
    m = np.zeros_like(zs[-1])
    m[np.arange(len(x)), target] = 1.0  # multiplier at the explained logit
    for k in range(len(layers) - 1, -1, -1):
        w, _ = layers[k]
        if k < len(layers) - 1 and not reveal_cancel:  # m is at the ReLU output; rescale to its input
            m = _rescale(m, zs[k] - zr[k], acts[k + 1] - actr[k + 1], (zs[k] > 0).astype(float))
        if k < len(layers) - 1 and reveal_cancel:
            da = acts[k] - actr[k]
            terms = da[:, :, None] * w[None]  # (B, in, out): contribution of input i to dz_j
            dpos, dneg = np.where(terms > 0, terms, 0).sum(1), np.where(terms < 0, terms, 0).sum(1)
            base = zr[k]
            ypos = 0.5 * (relu(base + dpos) - relu(base)) + 0.5 * (
                relu(base + dpos + dneg) - relu(base + dneg)
            )
            yneg = 0.5 * (relu(base + dneg) - relu(base)) + 0.5 * (
                relu(base + dpos + dneg) - relu(base + dpos)
            )
            grad = (zs[k] > 0).astype(float)
            mpos, mneg = _rescale(m, dpos, ypos, grad), _rescale(m, dneg, yneg, grad)
            # an input with da == 0 has no term of either sign: the mean of both multipliers
            chosen = np.where(terms > 0, mpos[:, None, :], mneg[:, None, :])
            chosen = np.where(da[:, :, None] == 0, 0.5 * (mpos + mneg)[:, None, :], chosen)
            m = (w[None] * chosen).sum(axis=2)
            continue
        m = m @ w.T
    return (x - ref) * m


@pytest.mark.parametrize("reveal_cancel", [False, True])
def test_deeplift_equals_a_literal_numpy_deeplift(zoo, reveal_cancel):
    model = zoo("mlp", True)
    x = make_inputs(model, 8, seed=11).astype(np.float64)
    ref = np.linspace(-0.5, 0.5, x.shape[1])[None].repeat(len(x), 0)
    target = predict(model, x.astype(np.float32)).argmax(axis=1)
    expected = numpy_deeplift(_dense_layers(model), x, ref, target, reveal_cancel)
    analyzer = tfxai.create_analyzer("deeplift", model, baseline=ref[0], reveal_cancel=reveal_cancel)
    got = analyzer.analyze(x.astype(np.float32))
    np.testing.assert_allclose(got, expected, atol=1e-5 * _scale(expected))


def test_reveal_cancel_differs_from_rescale_where_contributions_cancel(zoo):
    """Guard that the two rules are not the same computation on this network."""
    model = zoo("mlp", True)
    x = make_inputs(model, 8, seed=11)
    rescale = tfxai.create_analyzer("deeplift", model).analyze(x)
    reveal = tfxai.create_analyzer("deeplift.reveal_cancel", model).analyze(x)
    assert np.abs(rescale - reveal).max() > 1e-3


def test_feature_equal_to_its_reference_gets_zero(zoo):
    """Where x == x_ref the multiplier falls back to the gradient: zero relevance, no NaN."""
    model = zoo("cnn", True)
    x = make_inputs(model, 1, seed=2)
    partly = x[0].copy()
    partly[:4] = 0.0  # the upper half of the image differs from x, the rest equals it
    relevance, delta = tfxai.create_analyzer("deeplift", model, baseline=partly).analyze(x, return_delta=True)
    assert np.all(np.isfinite(relevance))
    np.testing.assert_array_equal(relevance[0, 4:], 0.0)
    assert np.abs(delta).max() < 2e-6 * _scale(relevance.sum())


def test_deeplift_on_a_linear_model_is_weight_times_difference():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((5,)), L.Dense(3, bias_initializer="random_normal")])
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    relevance = tfxai.create_analyzer("deeplift", model, baseline=1.0).analyze(x, neuron_selection=1)
    np.testing.assert_allclose(
        relevance, (x - 1.0) * model.layers[0].kernel.numpy()[:, 1], rtol=1e-6, atol=1e-6
    )


def test_unsupported_layers_are_named():
    x = keras.Input((4,), name="x")
    h = L.Dense(4, name="d")(x)
    y = L.Dense(2, name="out")(L.LayerNormalization(name="norm")(h))
    with pytest.raises(UnsupportedLayerError, match="norm"):
        tfxai.create_analyzer("deeplift", keras.Model(x, y))


def test_integer_inputs_are_refused():
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    y = L.Dense(2)(L.Flatten()(L.Embedding(10, 3)(tokens)))
    with pytest.raises(ModelError, match="token ids"):
        tfxai.create_analyzer("deeplift", keras.Model(tokens, y))


# --------------------------------------------------------------------------- DeepSHAP


@pytest.mark.parametrize("name", ["mlp", "cnn", "residual"])
@pytest.mark.slow
def test_deep_shap_is_the_mean_of_deeplift_over_the_background(zoo, name):
    model = zoo(name, True)
    x = make_inputs(model, 3, seed=1)
    background = make_inputs(model, 5, seed=2)
    analyzer = tfxai.create_analyzer("deep_shap", model, background=background, chunk_size=2)
    got, delta = analyzer.analyze(x, return_delta=True)
    each = [tfxai.create_analyzer("deeplift", model, baseline=b).analyze(x) for b in background]
    expected = np.mean(each, axis=0)
    np.testing.assert_allclose(got, expected, atol=1e-6 * _scale(expected))
    y = predict(model, x)
    index = y.argmax(axis=1)
    target = y[np.arange(3), index] - predict(model, background).mean(axis=0)[index]
    # five references averaged and f(b_k) from Keras' own forward pass: a few float32 roundings more
    np.testing.assert_allclose(summed(got), target, atol=1e-5 * _scale(target))
    np.testing.assert_allclose(delta, 0.0, atol=1e-5 * _scale(target))


def test_deep_shap_background_shape_is_checked(zoo):
    model = zoo("mlp")
    with pytest.raises(ValueError, match=r"shape \(K, 6\)"):
        tfxai.create_analyzer("deep_shap", model, background=np.zeros((3, 5)))
