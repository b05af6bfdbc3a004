"""KernelSHAP, LIME and GradientSHAP against brute-force Shapley values, NumPy re-implementations, shap."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_inputs, predict

import tfxai
from tfxai.analyzers.features import feature_groups
from tfxai.inputs import InputSpec

L = keras.layers


def _linear_model():
    keras.utils.set_random_seed(21)
    return keras.Sequential([keras.Input((6,)), L.Dense(3, bias_initializer="random_normal")], name="linear")


def _masked(x, z, index, baseline):
    """Rows ``z`` (n, M) applied to one sample ``x`` with element feature ids ``index``."""
    keep = z[:, index]
    return keep * x[None] + (1 - keep) * baseline


def brute_force_shapley(f, x, index, baseline, m):
    """Exact Shapley values of ``m`` feature groups by enumerating every coalition (NumPy)."""
    coalitions = np.array(list(itertools.product([0, 1], repeat=m)), np.float64)
    values = dict(zip(map(tuple, coalitions.astype(int)), f(_masked(x, coalitions, index, baseline))))
    phi = np.zeros(m)
    for i in range(m):
        for z in coalitions.astype(int):
            if z[i]:
                continue
            s = z.sum()
            weight = math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m)
            with_i = z.copy()
            with_i[i] = 1
            phi[i] += weight * (values[tuple(with_i)] - values[tuple(z)])
    return phi


def _logit(model, target):
    return lambda rows: np.asarray(model(rows.astype(np.float32)), np.float64)[:, target]


# --------------------------------------------------------------------------- KernelSHAP


@pytest.mark.parametrize("n_samples", [2048, 24])
def test_kernel_shap_is_exact_on_a_linear_model(n_samples):
    """phi_j = w_j (x_j - b_j), whether all coalitions are enumerated or 24 are sampled."""
    model = _linear_model()
    x = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    analyzer = tfxai.create_analyzer("kernel_shap", model, baseline=0.5, n_samples=n_samples)
    assert len(analyzer.coalitions) == (62 if n_samples == 2048 else 24)
    got = analyzer.analyze(x, neuron_selection=2)
    np.testing.assert_allclose(got, model.layers[0].kernel.numpy()[:, 2] * (x - 0.5), atol=2e-6)


@pytest.mark.parametrize(
    "name, features, grid_size, m",
    [
        ("mlp", "columns", 8, 6),
        ("mlp", np.array([0, 0, 1, 2, 2, 1]), 8, 3),
        ("cnn", "grid", 2, 4),
        ("cnn", "grid", (2, 4), 8),
    ],
)
@pytest.mark.slow
def test_kernel_shap_equals_brute_force_shapley_values(zoo, name, features, grid_size, m):
    model = zoo(name, True)
    x = make_inputs(model, 3, seed=4)
    analyzer = tfxai.create_analyzer(
        "kernel_shap", model, features=features, grid_size=grid_size, baseline=0.1
    )
    assert analyzer.groups.count == m
    got, delta = analyzer.analyze(x, return_delta=True)
    index, sizes = analyzer.groups.index[0], analyzer.groups.sizes
    targets = predict(model, x).argmax(axis=1)
    for b in range(3):
        phi = brute_force_shapley(_logit(model, targets[b]), x[b], index, 0.1, m)
        np.testing.assert_allclose(got[b], (phi / sizes)[index], atol=5e-6 * max(1, np.abs(phi).max()))
    np.testing.assert_allclose(delta, 0.0, atol=5e-6)


def test_kernel_shap_sampled_keeps_efficiency_and_is_batch_independent(zoo):
    """64 sampled coalitions of 16 grid cells: sum(R) == f(x) - f(b) exactly; per-sample == batched."""
    model = zoo("cnn", True)
    x = make_inputs(model, 4, seed=6)
    analyzer = tfxai.create_analyzer("kernel_shap", model, grid_size=4, n_samples=64, chunk_size=16)
    assert analyzer.groups.count == 16 and len(analyzer.coalitions) == 64
    got, delta = analyzer.analyze(x, return_delta=True)
    y, y_b = predict(model, x), predict(model, np.zeros_like(x))
    index = y.argmax(axis=1)
    expected = y[np.arange(4), index] - y_b[np.arange(4), index]
    np.testing.assert_allclose(got.reshape(4, -1).sum(axis=1), expected, atol=5e-6)
    np.testing.assert_allclose(delta, 0.0, atol=5e-6)
    single = np.concatenate([analyzer.analyze(x[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(single, got, atol=1e-6)


def test_kernel_shap_multi_input_groups_span_both_inputs(zoo):
    model = zoo("multi_input", True)
    x = make_inputs(model, 2, seed=8)
    analyzer = tfxai.create_analyzer("kernel_shap", model, n_samples=4096)
    assert analyzer.groups.count == 10  # 6 + 4 columns: all 1022 coalitions enumerated
    got = analyzer.analyze(x, neuron_selection=1)
    for b in range(2):
        joined = np.concatenate([x[0][b], x[1][b]])

        def f(rows):
            return np.asarray(model([rows[:, :6].astype(np.float32), rows[:, 6:].astype(np.float32)]))[:, 1]

        phi = brute_force_shapley(f, joined, np.arange(10), 0.0, 10)
        np.testing.assert_allclose(np.concatenate([got[0][b], got[1][b]]), phi, atol=5e-6)


def test_kernel_shap_agrees_with_the_shap_package(zoo):
    shap = pytest.importorskip("shap")  # in the dev extra
    model = zoo("mlp", True)
    x = make_inputs(model, 3, seed=12)
    baseline = np.linspace(-0.3, 0.3, 6)
    got = tfxai.create_analyzer("kernel_shap", model, baseline=baseline).analyze(x, neuron_selection=0)
    explainer = shap.KernelExplainer(
        lambda rows: np.asarray(model(rows.astype(np.float32)))[:, 0], baseline[None]
    )
    reference = explainer.shap_values(x.astype(np.float64), nsamples=2**6, silent=True)
    np.testing.assert_allclose(got, reference, atol=5e-6)


def test_too_few_coalitions_is_an_error(zoo):
    with pytest.raises(ValueError, match="raise n_samples"):
        tfxai.create_analyzer("kernel_shap", zoo("cnn"), grid_size=4, n_samples=4)


# --------------------------------------------------------------------------- feature groups


def test_feature_groups():
    image = InputSpec("image", (None, 5, 4, 3), "float32")
    groups = feature_groups([image], "grid", grid_size=2)
    np.testing.assert_array_equal(groups.index[0][..., 0], [[0, 0, 1, 1]] * 3 + [[2, 2, 3, 3]] * 2)
    assert (groups.index[0] == groups.index[0][..., :1]).all()  # a cell spans every channel
    series = InputSpec("series", (None, 4, 2), "float32")
    table = InputSpec("table", (None, 3), "float32")
    groups = feature_groups([series, table], "auto")
    np.testing.assert_array_equal(groups.index[0], [[0, 0], [1, 1], [2, 2], [3, 3]])
    np.testing.assert_array_equal(groups.index[1], [4, 5, 6])
    np.testing.assert_array_equal(groups.sizes, [2, 2, 2, 2, 1, 1, 1])
    with pytest.raises(ValueError, match="0..m-1"):
        feature_groups([table], np.array([0, 2, 2]))
    with pytest.raises(ValueError, match="spatial axes"):
        feature_groups([table], "grid")


# --------------------------------------------------------------------------- LIME


def numpy_lime(f, x, index, baseline, z, kernel_width, ridge):
    """LIME's weighted ridge regression, literally: cosine distance, exponential kernel, lstsq."""
    ones = np.ones(z.shape[1])
    norms = np.linalg.norm(z, axis=1) * np.linalg.norm(ones)
    cosine = np.divide(z @ ones, norms, out=np.zeros(len(z)), where=norms > 0)
    weights = np.exp(-((1 - cosine) ** 2) / kernel_width**2)
    design = np.concatenate([np.ones((len(z), 1)), z], axis=1)
    y = f(_masked(x, z, index, baseline))
    root = np.sqrt(weights)[:, None]
    penalty = np.sqrt(ridge) * np.eye(design.shape[1])[1:]  # the intercept is not penalised
    lhs = np.concatenate([root * design, penalty])
    rhs = np.concatenate([root[:, 0] * y, np.zeros(len(penalty))])
    return np.linalg.lstsq(lhs, rhs, rcond=None)[0][1:]


@pytest.mark.parametrize("ridge", [1.0, 0.0])
def test_lime_equals_a_numpy_lime_with_the_same_coalitions(zoo, ridge):
    model = zoo("cnn", True)
    x = make_inputs(model, 2, seed=14)
    analyzer = tfxai.create_analyzer("lime", model, grid_size=4, n_samples=200, ridge=ridge, seed=3)
    np.testing.assert_array_equal(analyzer.coalitions[0], 1.0)
    got = analyzer.analyze(x)
    index, sizes = analyzer.groups.index[0], analyzer.groups.sizes
    targets = predict(model, x).argmax(axis=1)
    for b in range(2):
        beta = numpy_lime(_logit(model, targets[b]), x[b], index, 0.0, analyzer.coalitions, 0.25, ridge)
        np.testing.assert_allclose(got[b], (beta / sizes)[index], atol=2e-5 * max(1, np.abs(beta).max()))


def test_lime_recovers_a_linear_model():
    model = _linear_model()
    x = np.random.default_rng(2).normal(size=(3, 6)).astype(np.float32)
    got = tfxai.create_analyzer("lime", model, ridge=0.0, n_samples=64, baseline=-1.0).analyze(
        x, neuron_selection=1
    )
    np.testing.assert_allclose(got, model.layers[0].kernel.numpy()[:, 1] * (x + 1.0), atol=2e-5)


def test_lime_is_seeded_and_batch_independent(zoo):
    model = zoo("mlp", True)
    x = make_inputs(model, 5, seed=3)
    first = tfxai.create_analyzer("lime", model, n_samples=50, seed=7)
    again = tfxai.create_analyzer("lime", model, n_samples=50, seed=7)
    other = tfxai.create_analyzer("lime", model, n_samples=50, seed=8)
    got = first.analyze(x)
    np.testing.assert_array_equal(again.analyze(x), got)
    assert np.abs(other.analyze(x) - got).max() > 1e-4
    np.testing.assert_allclose(
        np.concatenate([first.analyze(x[i : i + 1]) for i in range(5)]), got, atol=1e-6
    )


# --------------------------------------------------------------------------- GradientSHAP


def _mlp_gradient(model, points, target):
    """Gradient of one logit of a ReLU MLP at ``points``, by hand (NumPy)."""
    layers = [
        (lay.kernel.numpy().astype(np.float64), lay.bias.numpy().astype(np.float64)) for lay in model.layers
    ]
    masks, a = [], points
    for k, (w, b) in enumerate(layers):
        z = a @ w + b
        masks.append(z > 0)
        a = np.maximum(z, 0) if k < len(layers) - 1 else z
    g = np.zeros((len(points), layers[-1][0].shape[1]))
    g[:, target] = 1.0
    for k in range(len(layers) - 1, -1, -1):
        if k < len(layers) - 1:
            g = g * masks[k]
        g = g @ layers[k][0].T
    return g


def numpy_gradient_shap(model, x, background, picks, alphas, noise, target):
    """Per draw ``(x + eps - b) * grad f(b + alpha (x + eps - b))``, shape ``(n, B, features)``."""
    draws = []
    for k, alpha, eps in zip(picks, alphas, noise):
        span = x + eps[None] - background[k][None]
        point = background[k][None] + alpha * span
        draws.append(
            span * np.stack([_mlp_gradient(model, point[i : i + 1], t)[0] for i, t in enumerate(target)])
        )
    return np.array(draws)


def test_gradient_shap_equals_a_numpy_re_implementation_with_the_same_draws(zoo):
    model = zoo("mlp", True)
    x = make_inputs(model, 3, seed=1).astype(np.float64)
    background = make_inputs(model, 4, seed=2).astype(np.float64)
    analyzer = tfxai.create_analyzer(
        "gradient_shap", model, background=background, n_samples=12, noise_scale=0.2, seed=5, chunk_size=5
    )
    noise = analyzer.noise([tf.constant(x, tf.float32)])[0].numpy().astype(np.float64)
    target = predict(model, x.astype(np.float32)).argmax(axis=1)
    draws = numpy_gradient_shap(model, x, background, analyzer.picks, analyzer.alphas, noise, target)
    got = analyzer.analyze(x.astype(np.float32))
    np.testing.assert_allclose(got, draws.mean(axis=0), atol=2e-6)
    np.testing.assert_allclose(
        np.concatenate([analyzer.analyze(x[i : i + 1].astype(np.float32)) for i in range(3)]), got, atol=1e-6
    )


@pytest.mark.slow
def test_gradient_shap_approaches_integrated_gradients_over_the_background(zoo):
    """E[GradientSHAP] = mean_k IG(x; b_k); 4096 draws within 5 standard errors of the estimate."""
    model = zoo("mlp", True)
    x = make_inputs(model, 2, seed=1)
    background = make_inputs(model, 3, seed=2)
    analyzer = tfxai.create_analyzer(
        "gradient_shap", model, background=background, n_samples=4096, chunk_size=256
    )
    got = analyzer.analyze(x)
    ig = np.mean(
        [
            tfxai.create_analyzer("integrated_gradients", model, baseline=b, steps=512).analyze(x)
            for b in background
        ],
        axis=0,
    )
    target = predict(model, x).argmax(axis=1)
    zero_noise = np.zeros((4096,) + x.shape[1:])
    draws = numpy_gradient_shap(model, x, background, analyzer.picks, analyzer.alphas, zero_noise, target)
    standard_error = draws.std(axis=0) / np.sqrt(len(draws))
    assert np.all(np.abs(got - ig) <= 5 * standard_error + 1e-3)
    assert np.abs(got - ig).max() < 0.05 * np.abs(ig).max()
