"""RISE, Score-CAM, Sobol attribution and SquareGrad: NumPy re-implementations, planted evidence, export."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_inputs, predict, required_params

import tfxai
from tfxai.analyzers.sobol import scrambled_halton

L = keras.layers
NEW_METHODS = (
    "deeplift",
    "deeplift.reveal_cancel",
    "deep_shap",
    "gradient_shap",
    "kernel_shap",
    "lime",
    "rise",
    "score_cam",
    "squaregrad",
    "sobol",
)
FAST = {
    "kernel_shap": {"n_samples": 64, "grid_size": 4},
    "lime": {"n_samples": 64, "grid_size": 4},
    "rise": {"n_masks": 40},
    "sobol": {"n_designs": 8, "grid_size": 4},
    "squaregrad": {"n_samples": 4},
}


def numpy_resize(values, axis, size):
    """Linear interpolation with half-pixel centres and clamped edges (tf.image.resize 'bilinear')."""
    n = values.shape[axis]
    source = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, n - 1)
    shape = [1] * values.ndim
    shape[axis] = -1
    frac = (source - low).reshape(shape)
    return np.take(values, low, axis=axis) * (1 - frac) + np.take(values, high, axis=axis) * frac


def _patch_model():
    """logit 0 = sum of channel 0 over rows 2..3, columns 4..5 of an 8x8x2 image; logit 1 = -logit 0."""
    x = keras.Input((8, 8, 2), name="image")
    kernel = np.zeros((128, 2), np.float32)
    for r in (2, 3):
        for c in (4, 5):
            kernel[(r * 8 + c) * 2, 0] = 1.0
    kernel[:, 1] = -kernel[:, 0]
    dense = L.Dense(2, use_bias=False, name="out")
    model = keras.Model(x, dense(L.Flatten(name="flat")(x)), name="patch")
    dense.set_weights([kernel])
    return model


# --------------------------------------------------------------------------- RISE


def test_rise_equals_a_numpy_rise_with_the_same_masks(zoo):
    model = zoo("cnn", True)
    x = make_inputs(model, 2, seed=1)
    analyzer = tfxai.create_analyzer(
        "rise", model, n_masks=50, grid_size=3, keep_probability=0.4, chunk_size=16
    )
    masks = []
    for grid, shift in zip(analyzer.grids, analyzer.shifts):
        up = numpy_resize(numpy_resize(grid.astype(np.float64), 0, 4 * 3), 1, 4 * 3)  # cell = ceil(8 / 3)
        masks.append(up[shift[0] : shift[0] + 8, shift[1] : shift[1] + 8])
    masks = np.array(masks)
    target = predict(model, x).argmax(axis=1)
    expected = []
    for b in range(2):
        scores = np.asarray(model((masks[..., None] * x[b][None]).astype(np.float32)))[:, target[b]]
        expected.append(np.tensordot(scores, masks, axes=1) / (50 * 0.4))
    expected = np.repeat(np.array(expected)[..., None], 2, axis=-1)
    np.testing.assert_allclose(analyzer.analyze(x), expected, atol=2e-5 * np.abs(expected).max())


def test_rise_finds_planted_evidence():
    model = _patch_model()
    x = np.ones((1, 8, 8, 2), np.float32)
    saliency = tfxai.create_analyzer("rise", model, n_masks=500, grid_size=4).analyze(x, neuron_selection=0)[
        0, ..., 0
    ]
    inside = saliency[2:4, 4:6].mean()
    outside = np.delete(saliency.ravel(), [r * 8 + c for r in (2, 3) for c in (4, 5)]).mean()
    # Far from the patch a mask value is independent of f: S -> E[f] = 4 p = 2; inside it is correlated.
    assert inside > 1.2 * outside
    row, column = np.unravel_index(saliency.argmax(), saliency.shape)
    assert row in (2, 3) and column in (4, 5)


# --------------------------------------------------------------------------- Score-CAM


def test_score_cam_equals_a_numpy_score_cam(zoo):
    model = zoo("cnn", True)
    x = make_inputs(model, 3, seed=2)
    analyzer = tfxai.create_analyzer("score_cam", model, chunk_size=3)
    gradcam = tfxai.create_analyzer("grad_cam", model)
    assert analyzer.feature_map == gradcam.feature_map == "relu2"  # Grad-CAM's choice, reused
    feature = keras.Model(model.inputs, model.get_layer("relu2").output)
    maps = np.asarray(feature(x), np.float64)  # (3, 4, 4, 4)
    target = predict(model, x).argmax(axis=1)
    base = predict(model, np.zeros_like(x))
    expected = np.zeros((3, 8, 8))
    for b in range(3):
        cam = np.zeros((4, 4))
        for k in range(maps.shape[-1]):
            up = numpy_resize(numpy_resize(maps[b, ..., k], 0, 8), 1, 8)
            span = up.max() - up.min()
            h = (up - up.min()) / span if span > 0 else np.zeros_like(up)
            score = predict(model, (h[None, ..., None] * x[b][None]).astype(np.float32))[0, target[b]]
            cam += (score - base[0, target[b]]) * maps[b, ..., k]
        cam = np.maximum(cam, 0)
        expected[b] = numpy_resize(numpy_resize(cam, 0, 8), 1, 8)
    got = analyzer.analyze(x)
    np.testing.assert_allclose(
        got, np.repeat(expected[..., None], 2, -1), atol=2e-5 * max(1, np.abs(expected).max())
    )


# --------------------------------------------------------------------------- Sobol


def test_scrambled_halton_first_axis_is_the_van_der_corput_sequence():
    points = scrambled_halton(7, 3, np.random.default_rng(0))
    np.testing.assert_allclose(points[:, 0], [1 / 2, 1 / 4, 3 / 4, 1 / 8, 5 / 8, 3 / 8, 7 / 8])
    assert points.min() >= 0 and points.max() < 1
    for column in points.T[1:]:
        assert len(np.unique(column)) == 7  # a permutation of radical inverses: no repeats


def numpy_sobol(f, x, index, masks, n, d):
    """Jansen's total-order estimator from the Saltelli rows ``masks`` (NumPy)."""
    y = f(masks[:, index] * x[None])
    f_a, f_b, f_mixed = y[:n], y[n : 2 * n], y[2 * n :].reshape(d, n)
    variance = np.var(np.concatenate([f_a, f_b]))
    return ((f_a[None] - f_mixed) ** 2).mean(axis=1) / 2 / variance


def test_sobol_equals_a_numpy_estimator_with_the_same_design(zoo):
    model = zoo("cnn", True)
    x = make_inputs(model, 2, seed=3)
    analyzer = tfxai.create_analyzer("sobol", model, grid_size=2, n_designs=16, chunk_size=20)
    assert analyzer.masks.shape == (16 * 6, 4)
    np.testing.assert_array_equal(
        analyzer.masks[32:48, 1:], analyzer.masks[:16, 1:]
    )  # A_B^1 keeps A elsewhere
    np.testing.assert_array_equal(
        analyzer.masks[32:48, 0], analyzer.masks[16:32, 0]
    )  # ... and takes B's column
    got = analyzer.analyze(x)
    target = predict(model, x).argmax(axis=1)
    index = analyzer.groups.index[0]
    for b in range(2):
        total = numpy_sobol(
            lambda r, t=target[b]: predict(model, r.astype(np.float32))[:, t], x[b], index, analyzer.masks, 16, 4
        )
        np.testing.assert_allclose(got[b], total[index], rtol=2e-4, atol=1e-6)


def test_sobol_gives_zero_to_cells_the_output_ignores():
    model = _patch_model()
    x = np.ones((1, 8, 8, 2), np.float32)
    got = tfxai.create_analyzer("sobol", model, grid_size=4, n_designs=16).analyze(x, neuron_selection=0)[
        0, ..., 0
    ]
    cells = got[::2, ::2]  # one value per 2x2 cell
    assert cells[1, 2] > 0.5  # the planted cell explains all the variance
    np.testing.assert_array_equal(np.delete(cells.ravel(), 1 * 4 + 2), 0.0)


# --------------------------------------------------------------------------- SquareGrad


def test_squaregrad_is_the_mean_squared_gradient_over_the_same_noise(zoo):
    model = zoo("cnn", True)
    x = make_inputs(model, 2, seed=4)
    got = tfxai.create_analyzer(
        "squaregrad", model, n_samples=6, noise_level=0.2, seed=3, chunk_size=4
    ).analyze(x)
    noise = tf.random.stateless_normal((6,) + x.shape[1:], seed=[3, 0], alg="philox").numpy()
    sigma = 0.2 * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))
    target = predict(model, x).argmax(axis=1)
    squares = []
    for j in range(6):
        noisy = tf.constant(x + sigma[:, None, None, None] * noise[j][None])
        with tf.GradientTape() as tape:
            tape.watch(noisy)
            y = tf.reduce_sum(model(noisy) * tf.one_hot(target, 3))
        squares.append(tape.gradient(y, noisy).numpy() ** 2)
    np.testing.assert_allclose(got, np.mean(squares, axis=0), rtol=1e-4, atol=1e-7)


# --------------------------------------------------------------------------- every new method


@pytest.mark.parametrize("name", NEW_METHODS)
@pytest.mark.slow
def test_batch_independence_and_seeded_repeatability(zoo, name):
    model = zoo("cnn", True)
    x = make_inputs(model, 3, seed=5)
    params = {**required_params(name, model), **FAST.get(name, {})}
    analyzer = tfxai.create_analyzer(name, model, **params)
    got = analyzer.analyze(x)
    single = np.concatenate([analyzer.analyze(x[i : i + 1]) for i in range(3)])
    scale = max(1e-6, np.abs(got).max())
    np.testing.assert_allclose(single, got, atol=2e-6 * scale)
    np.testing.assert_array_equal(tfxai.create_analyzer(name, model, **params).analyze(x), got)


@pytest.mark.slow  # 5-15 s each on 2 shared cores (SavedModel write and load)
@pytest.mark.parametrize("name", NEW_METHODS)
def test_export_equals_analyze(zoo, name, tmp_path):
    model = zoo("cnn", True)
    x = make_inputs(model, 3, seed=6)
    params = {**required_params(name, model), **FAST.get(name, {})}
    analyzer = tfxai.create_analyzer(name, model, **params)
    path = analyzer.export(tmp_path / "1")
    signatures = tf.saved_model.load(str(path)).signatures
    (input_name,) = [spec.name for spec in analyzer.input_specs]
    got = signatures["explain"](**{input_name: tf.constant(x)})["relevance"].numpy()
    np.testing.assert_allclose(got, analyzer.analyze(x), atol=1e-6 * max(1.0, np.abs(got).max()))
    target = np.array([2, 0, 1], np.int32)
    got = signatures["explain_target"](**{input_name: tf.constant(x), "target": tf.constant(target)})[
        "relevance"
    ]
    np.testing.assert_allclose(
        got.numpy(), analyzer.analyze(x, neuron_selection=target), atol=1e-6 * max(1.0, np.abs(got).max())
    )
