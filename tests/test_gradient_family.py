"""SmoothGrad, VarGrad, the noise tunnel and Integrated Gradients, plus a table of
every gradient/perturbation-family analyzer on the model zoo (shapes, batch
independence, eager == graph, SavedModel export).

References are computed without tfxai: gradients come from differentiating the
Keras model itself with ``tf.GradientTape``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai.analyzers.base import selection_mask
from tfxai.analyzers.integrated import gaussian_blur, path_points
from conftest import input_shapes, make_inputs, predict

L = keras.layers
RTOL = 1e-5


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _close(got, want, rtol=RTOL):
    for g, w in zip(_as_list(got), _as_list(want)):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * max(np.abs(w).max(), 1e-12))


def keras_gradient(model, x, index, output=0):
    """``d y[index] / d x`` of the Keras model (a list for multi-input models)."""
    xs = [tf.constant(a) for a in _as_list(x)]
    with tf.GradientTape() as tape:
        tape.watch(xs)
        y = model(xs if len(xs) > 1 else xs[0], training=False)
        y = y[output] if isinstance(y, (list, tuple)) else y
        picked = tf.reduce_sum(y * tf.one_hot(index, y.shape[-1]))
    grads = [g.numpy() for g in tape.gradient(picked, xs)]
    return grads if len(grads) > 1 else grads[0]


def _argmax(model, x):
    return predict(model, x).argmax(axis=1)


# --------------------------------------------------------------------------- SmoothGrad / VarGrad


@pytest.mark.parametrize("noise", [{"noise_level": 0.0}, {"noise_scale": 0.0}], ids=["level", "scale"])
@pytest.mark.parametrize("selection", ["max_activation", "all", 2])
@pytest.mark.slow
def test_smoothgrad_without_noise_is_the_gradient(zoo, noise, selection):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 5, "both", seed=1)
    smooth = tfxai.create_analyzer("smoothgrad", model, n_samples=5, chunk_size=2, **noise)
    plain = tfxai.create_analyzer("gradient", model)
    want = plain.analyze(x, neuron_selection=selection)
    assert np.abs(want).max() > 0
    _close(smooth.analyze(x, neuron_selection=selection), want)


def _noise_patterns(n, shape, seed, input_index=0):
    """The documented noise: pattern j of input k is stateless_normal((n, ...), [seed, k], philox)[j]."""
    shape = (n,) + tuple(shape)
    return tf.random.stateless_normal(shape, seed=[seed, input_index], dtype=tf.float32, alg="philox").numpy()


def _noisy_copies(x, n, level, seed):
    axes = tuple(range(1, x.ndim))
    sigma = level * (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))
    return [x + sigma * eps[None] for eps in _noise_patterns(n, x.shape[1:], seed)]


@pytest.mark.parametrize("method,reduce", [("smoothgrad", np.mean), ("vargrad", np.var)], ids=["mean", "var"])
@pytest.mark.slow
def test_smoothgrad_and_vargrad_match_a_loop_over_noisy_copies(zoo, method, reduce):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 4, "both", seed=2)
    index = _argmax(model, x)  # chosen on the clean input, kept for every copy
    copies = _noisy_copies(x, 7, 0.2, seed=5)
    want = reduce(np.stack([keras_gradient(model, c, index) for c in copies]), axis=0)

    analyzer = tfxai.create_analyzer(method, model, n_samples=7, noise_level=0.2, seed=5, chunk_size=3)
    got = analyzer.analyze(x)
    _close(got, want, rtol=1e-4)
    # absolute noise: sigma is the number given
    got_abs = tfxai.create_analyzer(method, model, n_samples=3, noise_scale=0.5, seed=5).analyze(x)
    eps = _noise_patterns(3, x.shape[1:], 5)
    want_abs = reduce(np.stack([keras_gradient(model, x + 0.5 * e[None], index) for e in eps]), axis=0)
    _close(got_abs, want_abs, rtol=1e-4)


def test_noise_tunnel_smooths_any_analyzer(zoo):
    model = zoo("mlp", use_bias=True)
    x = make_inputs(model, 5, "both", seed=3)
    index = _argmax(model, x)
    lrp = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.01)
    want = np.mean([lrp.analyze(c, neuron_selection=index) for c in _noisy_copies(x, 6, 0.1, seed=9)], axis=0)

    by_name = tfxai.create_analyzer(
        "noise_tunnel", model, analyzer="lrp.epsilon", analyzer_params={"epsilon": 0.01}, n_samples=6, seed=9
    )
    by_instance = tfxai.create_analyzer(
        "noise_tunnel", model, analyzer=lrp, n_samples=6, seed=9, chunk_size=4
    )
    _close(by_name.analyze(x), want, rtol=1e-4)
    _close(by_instance.analyze(x), want, rtol=1e-4)


@pytest.mark.slow
def test_noise_is_seeded_and_independent_of_batch_and_chunks(zoo):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 5, "both", seed=4)
    analyzer = tfxai.create_analyzer("smoothgrad", model, n_samples=6, seed=1, chunk_size=4)
    whole = analyzer.analyze(x)
    _close(analyzer.analyze(x), whole, rtol=0)
    _close(np.concatenate([analyzer.analyze(x[i : i + 1]) for i in range(5)]), whole)
    _close(analyzer.analyze(x, batch_size=2), whole)
    _close(tfxai.create_analyzer("smoothgrad", model, n_samples=6, seed=1, chunk_size=1).analyze(x), whole)
    other_seed = tfxai.create_analyzer("smoothgrad", model, n_samples=6, seed=2).analyze(x)
    assert np.abs(other_seed - whole).max() > 1e-3 * np.abs(whole).max()


def test_vargrad_is_zero_without_noise_and_positive_with_it(zoo):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 3, "both", seed=5)
    silent = tfxai.create_analyzer("vargrad", model, n_samples=4, noise_level=0.0).analyze(x)
    np.testing.assert_allclose(silent, 0.0, atol=1e-10)
    noisy = tfxai.create_analyzer("vargrad", model, n_samples=4, noise_level=0.3).analyze(x)
    assert noisy.min() >= 0 and noisy.max() > 0


@pytest.mark.parametrize(
    "params,message",
    [
        ({"noise_level": 0.1, "noise_scale": 1.0}, "not both"),
        ({"noise_level": -0.1}, "noise_level"),
        ({"n_samples": 0}, "n_samples"),
        ({"chunk_size": 1.5}, "chunk_size"),
    ],
)
def test_smoothgrad_rejects_bad_parameters(zoo, params, message):
    with pytest.raises(ValueError, match=message):
        tfxai.create_analyzer("smoothgrad", zoo("mlp"), **params)


def test_noise_tunnel_rejects_a_mismatched_inner_analyzer(zoo):
    inner = tfxai.create_analyzer("gradient", zoo("mlp"))
    with pytest.raises(ValueError, match="same model"):
        tfxai.create_analyzer("noise_tunnel", zoo("cnn"), analyzer=inner)
    with pytest.raises(ValueError, match="reduce"):
        tfxai.create_analyzer("noise_tunnel", zoo("mlp"), reduce="max")
    with pytest.raises(TypeError, match="analyzer"):
        tfxai.create_analyzer("noise_tunnel", zoo("mlp"), analyzer=3)


# --------------------------------------------------------------------------- Integrated Gradients


IG_METHODS = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]


@pytest.mark.parametrize("method", IG_METHODS)
@pytest.mark.slow
def test_integrated_gradients_completeness_error_shrinks_with_steps(zoo, method):
    """sum(R) -> f(x) - f(0): within 1% of each sample's difference at 256 steps, falling with steps."""
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 6, "positive", seed=3)
    index = _argmax(model, x)
    rows = np.arange(len(x))
    difference = predict(model, x)[rows, index] - predict(model, np.zeros_like(x))[rows, index]
    assert np.abs(difference).min() > 0.05  # guard: a relative error is meaningful

    errors = []
    for steps in (16, 64, 256):
        analyzer = tfxai.create_analyzer(
            "integrated_gradients", model, steps=steps, method=method, chunk_size=64
        )
        relevance, delta = analyzer.analyze(x, return_delta=True)
        error = difference - relevance.reshape(len(x), -1).sum(axis=1)
        np.testing.assert_allclose(delta, error, atol=1e-5 * np.abs(difference).max())  # delta is the error
        errors.append(np.max(np.abs(error) / np.abs(difference)))
    assert errors[2] < 0.01, errors
    assert errors[0] > errors[1] > errors[2], errors


def test_integrated_gradients_matches_a_loop_over_the_path(zoo):
    """Custom baseline, a chunk size that does not divide the steps, per-sample targets."""
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 4, "both", seed=6)
    baseline = np.random.default_rng(0).uniform(-0.5, 0.5, (1,) + x.shape[1:]).astype("float32")
    index = np.array([0, 2, 1, 1])
    for method in ("riemann_left", "riemann_trapezoid"):
        alphas, weights = path_points(5, method)
        mean_grad = sum(
            w * keras_gradient(model, baseline + a * (x - baseline), index) for a, w in zip(alphas, weights)
        )
        want = (x - baseline) * mean_grad
        analyzer = tfxai.create_analyzer(
            "integrated_gradients", model, baseline=baseline[0], steps=5, method=method, chunk_size=2
        )
        _close(analyzer.analyze(x, neuron_selection=index), want, rtol=1e-4)


def test_path_points_of_the_quadrature_rules():
    np.testing.assert_allclose(path_points(4, "riemann_left")[0], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(path_points(4, "riemann_right")[0], [0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(path_points(4, "riemann_middle")[0], [0.125, 0.375, 0.625, 0.875])
    alphas, weights = path_points(5, "riemann_trapezoid")
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125])
    for method in IG_METHODS:
        assert path_points(7, method)[1].sum() == pytest.approx(1.0)


def _numpy_blur(x, sigma):
    """Literal Gaussian blur of every axis but batch and channels, edges repeated."""
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    out = np.asarray(x, np.float64)
    for axis in range(1, x.ndim - 1):
        size = out.shape[axis]
        blurred = np.zeros_like(out)
        for i in range(size):
            for offset, w in zip(offsets, kernel):
                source = np.take(out, min(max(i + offset, 0), size - 1), axis=axis)
                index = [slice(None)] * out.ndim
                index[axis] = i
                blurred[tuple(index)] += w * source
        out = blurred
    return out


@pytest.mark.parametrize("sigma", [0.7, 1.5, 4.0])
def test_gaussian_blur_matches_numpy(sigma):
    x = np.random.default_rng(1).normal(size=(2, 7, 9, 3)).astype("float32")
    np.testing.assert_allclose(gaussian_blur(tf.constant(x), sigma).numpy(), _numpy_blur(x, sigma), atol=1e-5)
    seq = np.random.default_rng(2).normal(size=(2, 11, 2)).astype("float32")
    got = gaussian_blur(tf.constant(seq), sigma).numpy()
    np.testing.assert_allclose(got, _numpy_blur(seq, sigma), atol=1e-5)


def test_integrated_gradients_with_blurred_baseline_explains_the_difference_to_it(zoo):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 3, "positive", seed=7)
    index = _argmax(model, x)
    blurred = _numpy_blur(x, 1.5).astype("float32")
    rows = np.arange(3)
    difference = predict(model, x)[rows, index] - predict(model, blurred)[rows, index]
    analyzer = tfxai.create_analyzer(
        "integrated_gradients", model, baseline="blur", blur_sigma=1.5, steps=128
    )
    relevance, delta = analyzer.analyze(x, return_delta=True)
    np.testing.assert_allclose(delta, difference - relevance.reshape(3, -1).sum(axis=1), atol=1e-5)
    assert np.max(np.abs(delta)) < 0.02 * np.abs(difference).max()


def test_integrated_gradients_on_a_multi_input_model_is_complete_over_both_inputs(zoo):
    model = zoo("multi_input", use_bias=True)
    xa, xb = make_inputs(model, 4, "positive", seed=8)
    baselines = [np.full(xa.shape[1:], 0.1, "float32"), 0.2]
    analyzer = tfxai.create_analyzer("integrated_gradients", model, baseline=baselines, steps=256)
    (ra, rb), delta = analyzer.analyze([xa, xb], return_delta=True)
    index = _argmax(model, [xa, xb])
    rows = np.arange(4)
    base_inputs = [np.full_like(xa, 0.1), np.full_like(xb, 0.2)]
    difference = predict(model, [xa, xb])[rows, index] - predict(model, base_inputs)[rows, index]
    total = ra.reshape(4, -1).sum(axis=1) + rb.reshape(4, -1).sum(axis=1)
    np.testing.assert_allclose(total, difference, atol=0.01 * np.abs(difference).max())
    assert np.abs(ra).max() > 0 and np.abs(rb).max() > 0


@pytest.mark.parametrize(
    "params,message",
    [
        ({"method": "simpson"}, "method"),
        ({"steps": 1, "method": "riemann_trapezoid"}, "steps must be an integer >= 2"),
        ({"steps": 0}, "steps"),
        ({"baseline": "mean"}, "baseline"),
        ({"baseline": np.zeros(5)}, "broadcast"),
        ({"baseline": "blur"}, "spatial axes"),
        ({"blur_sigma": 0.0}, "blur_sigma"),
    ],
)
def test_integrated_gradients_rejects_bad_parameters(zoo, params, message):
    with pytest.raises(ValueError, match=message):
        tfxai.create_analyzer("integrated_gradients", zoo("mlp"), **params)


def test_integrated_gradients_is_traced_once_for_all_batch_sizes(zoo):
    model = zoo("cnn", use_bias=True)
    analyzer = tfxai.create_analyzer("integrated_gradients", model, steps=6, chunk_size=4)
    for n in (1, 3, 2):
        analyzer.analyze(make_inputs(model, n, "both", seed=n))
    assert analyzer.compiled("max_activation").experimental_get_tracing_count() == 1


# --------------------------------------------------------------------------- every new method on the zoo


FAMILY = {
    "smoothgrad": {"n_samples": 3},
    "vargrad": {"n_samples": 3},
    "noise_tunnel": {"analyzer": "input_t_gradient", "n_samples": 2},
    "integrated_gradients": {"steps": 4},
    "guided_backprop": {},
    "deconvnet": {},
    "grad_cam": {},
    "grad_cam_plus_plus": {},
    "deep_taylor": {},
    "deep_taylor.bounded": {"low": -4.0, "high": 4.0},
    "occlusion": {"window": 3, "stride": 2},
    "input": {},
    "random": {},
}
"""Every analyzer of this family, with cheap parameters."""

CONV_ONLY = {"grad_cam", "grad_cam_plus_plus"}
ZOO_CASES = ["cnn", "nested_multi_input", "shared", "rawop", "multi_input", "multi_output"]


@pytest.mark.parametrize("name", ZOO_CASES)
@pytest.mark.parametrize("method", list(FAMILY))
@pytest.mark.slow
def test_every_method_on_the_zoo(zoo, method, name):
    model = zoo(name, use_bias=True)
    options = {"output_index": 1} if name == "multi_output" else {}
    if method in CONV_ONLY and name != "cnn":
        with pytest.raises(tfxai.ModelError, match="layer="):
            tfxai.create_analyzer(method, model, **FAMILY[method], **options)
        return
    analyzer = tfxai.create_analyzer(method, model, **FAMILY[method], **options)
    x = make_inputs(model, 4, "both", seed=12)
    batch = _as_list(analyzer.analyze(x))
    assert len(batch) == len(model.inputs)
    for r, shape in zip(batch, input_shapes(model)):
        assert r.shape == (4,) + shape
        assert np.all(np.isfinite(r))
    assert max(np.abs(r).max() for r in batch) > 0
    # each sample's explanation is independent of the batch it is in
    one_by_one = [[a[i : i + 1] for a in x] if isinstance(x, list) else x[i : i + 1] for i in range(4)]
    singles = [_as_list(analyzer.analyze(xi)) for xi in one_by_one]
    for k, r in enumerate(batch):
        _close(np.concatenate([s[k] for s in singles]), r, rtol=1e-4)


@pytest.mark.parametrize("method", list(FAMILY))
@pytest.mark.slow
def test_eager_equals_tf_function(zoo, method):
    model = zoo("cnn", use_bias=True)
    analyzer = tfxai.create_analyzer(method, model, **FAMILY[method])
    x = make_inputs(model, 3, "both", seed=13)
    graph = analyzer.analyze(x, neuron_selection=[2, 0, 1])
    relevance, _, predictions = analyzer.explain_tensors(
        [tf.constant(x)], lambda y: selection_mask(y, "index", tf.constant([2, 0, 1]))
    )
    _close(relevance[0].numpy(), graph, rtol=1e-4)
    _close(predictions[0].numpy(), predict(model, x))


@pytest.mark.slow
def test_xla_gives_the_same_numbers(zoo):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 3, "both", seed=14)
    for method in ("integrated_gradients", "smoothgrad", "occlusion", "grad_cam"):
        plain = tfxai.create_analyzer(method, model, **FAMILY[method]).analyze(x)
        xla = tfxai.create_analyzer(method, model, jit_compile=True, **FAMILY[method])
        _close(xla.analyze(x), plain, rtol=1e-4)


EXPORTED = [
    "smoothgrad",
    "integrated_gradients",
    "guided_backprop",
    "grad_cam",
    "deep_taylor.bounded",
    "occlusion",
    "random",
]
"""One method per mechanism: stateless noise, while loops, rule walks, map_fn."""


@pytest.mark.slow
def test_methods_export_to_a_saved_model(zoo, tmp_path):
    """explain_tensors is pure TensorFlow: the compiled functions save and reload."""
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 2, "both", seed=15)
    archive = keras.export.ExportArchive()
    archive.track(model)
    analyzers = {}
    for method in EXPORTED:
        analyzer = tfxai.create_analyzer(method, model, **FAMILY[method])
        endpoint = method.replace(".", "_")
        analyzers[endpoint] = analyzer
        archive.add_endpoint(endpoint, _flat_endpoint(analyzer))
    archive.write_out(str(tmp_path / "family"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "family"))
    for endpoint, analyzer in analyzers.items():
        outputs = getattr(loaded, endpoint)(tf.constant(x))
        _close(outputs["relevance"].numpy(), analyzer.analyze(x), rtol=1e-4)
        assert outputs["explained"].shape == (2,)


def _flat_endpoint(analyzer):
    """A serving signature needs flat outputs: a dict of tensors."""
    compiled = analyzer.compiled("max_activation")

    @tf.function(input_signature=[analyzer.input_specs[0].tensor_spec()])
    def explain(x):
        relevance, explained, _ = compiled(x)
        return {"relevance": relevance[0], "explained": explained}

    return explain
