"""Occlusion against a NumPy loop over windows; the input and random baselines."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tfxai
from tfxai.analyzers.occlusion import plan_windows
from tfxai.inputs import InputSpec
from conftest import make_inputs, predict


def _starts(size, window, stride):
    window = min(window, size)
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)
    return [(s, s + window) for s in starts]


def _score(model, x, index, input_index=None, inputs=None):
    if inputs is not None:
        x = [x if k == input_index else a for k, a in enumerate(inputs)]
    y = predict(model, x)
    return y[np.arange(len(y)), index].astype(np.float64)


def _numpy_occlusion(model, x, index, window, stride, baseline, input_index=None, inputs=None):
    """For every window: replace it by ``baseline``, record the drop; average per feature."""
    clean = _score(model, x, index, input_index, inputs)
    total = np.zeros(x.shape)
    count = np.zeros(x.shape)
    spatial = x.shape[1:-1] if x.ndim > 2 else x.shape[1:]
    for ranges in itertools.product(*(_starts(size, window, stride) for size in spatial)):
        region = (slice(None),) + tuple(slice(a, b) for a, b in ranges)
        occluded = x.copy()
        occluded[region] = baseline
        drop = clean - _score(model, occluded, index, input_index, inputs)
        total[region] += drop.reshape((-1,) + (1,) * (x.ndim - 1))
        count[region] += 1
    return total / count


@pytest.mark.parametrize("window,stride,baseline", [(3, 2, 0.5), (2, 2, 0.0), (4, 3, -1.0), (8, 1, 0.0)])
@pytest.mark.slow
def test_occlusion_matches_a_numpy_loop_on_images(zoo, window, stride, baseline):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 3, "both", seed=1)
    index = np.array([0, 2, 1])
    want = _numpy_occlusion(model, x, index, window, stride, baseline)
    analyzer = tfxai.create_analyzer(
        "occlusion", model, window=window, stride=stride, baseline=baseline, chunk_size=5
    )
    relevance = analyzer.analyze(x, neuron_selection=index)
    np.testing.assert_allclose(relevance, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_occlusion_on_tabular_and_multi_input_models(zoo):
    mlp = zoo("mlp", use_bias=True)
    x = make_inputs(mlp, 4, "both", seed=2)
    index = predict(mlp, x).argmax(axis=1)
    got = tfxai.create_analyzer("occlusion", mlp, window=2, stride=1).analyze(x)
    np.testing.assert_allclose(got, _numpy_occlusion(mlp, x, index, 2, 1, 0.0), rtol=1e-5, atol=1e-6)

    model = zoo("multi_input", use_bias=True)
    xs = make_inputs(model, 4, "both", seed=3)
    index = predict(model, xs).argmax(axis=1)
    got = tfxai.create_analyzer("occlusion", model, window=2, baseline=[0.5, -0.5]).analyze(xs)
    for k, baseline in enumerate([0.5, -0.5]):
        want = _numpy_occlusion(model, xs[k], index, 2, 2, baseline, input_index=k, inputs=xs)
        np.testing.assert_allclose(got[k], want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_occlusion_does_not_depend_on_chunks_or_batches(zoo):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 5, "both", seed=4)
    a = tfxai.create_analyzer("occlusion", model, window=3, stride=1, chunk_size=7)
    b = tfxai.create_analyzer("occlusion", model, window=3, stride=1, chunk_size=36)
    whole = a.analyze(x)
    np.testing.assert_allclose(b.analyze(x), whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.analyze(x, batch_size=2), whole, rtol=1e-5, atol=1e-6)


def test_window_plans():
    spec = InputSpec("image", (None, 8, 8, 3), "float32")
    plan = plan_windows(spec, 3, 2)
    assert plan.window == (3, 3, 3) and plan.stride == (2, 2, 3)
    assert plan.grid == (4, 4, 1)  # starts 0, 2, 4 and the end-aligned 5
    assert plan.coverage.min() >= 1
    assert plan_windows(spec, (2, 4), None).grid == (4, 2, 1)
    assert plan_windows(spec, (8, 8, 1), None).grid == (1, 1, 3)  # one window per channel
    assert plan_windows(InputSpec("t", (None, 10), "float32"), 4, 3).grid == (3,)
    for bad in (0, (2, 2, 2, 2)):
        with pytest.raises(ValueError, match="window"):
            plan_windows(spec, bad, None)
    for bad in (1.5, "8", (2, "2")):
        with pytest.raises(TypeError, match="window"):
            plan_windows(spec, bad, None)
    with pytest.raises(ValueError, match="fixed sample shape"):
        plan_windows(InputSpec("seq", (None, None, 4), "float32"), 2, None)


def test_occlusion_rejects_a_bad_baseline(zoo):
    with pytest.raises(ValueError, match="broadcast"):
        tfxai.create_analyzer("occlusion", zoo("mlp"), baseline=np.zeros(4))
    with pytest.raises(ValueError, match="one baseline or one per input"):
        tfxai.create_analyzer("occlusion", zoo("multi_input"), baseline=[0.0, 0.0, 0.0])


# --------------------------------------------------------------------------- input / random


def test_input_baseline_returns_the_input(zoo):
    model = zoo("multi_input", use_bias=True)
    xs = make_inputs(model, 3, "both", seed=5)
    relevance = tfxai.create_analyzer("input", model).analyze(xs)
    for r, x in zip(relevance, xs):
        np.testing.assert_array_equal(r, x)


def test_random_baseline_is_seeded_and_batch_independent(zoo):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 64, "both", seed=6)
    analyzer = tfxai.create_analyzer("random", model, stddev=2.0, seed=3)
    noise = analyzer.analyze(x)
    np.testing.assert_array_equal(analyzer.analyze(x[::-1])[::-1], noise)  # position in the batch
    np.testing.assert_array_equal(analyzer.analyze(x, batch_size=5), noise)
    assert abs(noise.std() - 2.0) < 0.1 and abs(noise.mean()) < 0.1
    assert not np.allclose(noise[0], noise[1])
    other = tfxai.create_analyzer("random", model, stddev=2.0, seed=4).analyze(x)
    assert not np.allclose(other, noise)
