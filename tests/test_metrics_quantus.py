"""tfxai.metrics against Quantus 0.6.0 on the same models and explanations.

Quantus' base install runs beside TensorFlow 2.21 / Keras 3 (its TensorFlow
extra, which pins keras<3, is not needed). Its conventions: ``x_batch``
channels-last with ``channel_first=False`` but ``a_batch`` channel-first;
``softmax=False`` measures logits; ``normalise=False, abs=False`` keep the
attributions as given. Where the definitions match, the results agree to
1e-5; docs/evaluating.md lists the differences.
"""

import warnings

import keras
import numpy as np
import pytest

import tfxai
from tfxai import metrics

quantus = pytest.importorskip("quantus")
from quantus.functions import similarity_func  # noqa: E402

AS_GIVEN = dict(normalise=False, abs=False, disable_warnings=True)
TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def cnn():
    keras.utils.set_random_seed(31)
    return keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(3, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def mlp():
    keras.utils.set_random_seed(32)
    return keras.Sequential(
        [keras.Input((9,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)]
    )


def _images(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(3, 6, 6, 1)).astype("float32")
    return x, rng.normal(size=x.shape).astype("float32"), np.array([0, 2, 1])


def _run(metric, model, x, y, a, **kwargs):
    """Quantus metric on channels-last x with channel-first a (Quantus' own layout for attributions)."""
    a = np.moveaxis(a, -1, 1) if a.ndim == 4 else a
    return np.asarray(
        metric(model=model, x_batch=x, y_batch=y, a_batch=a, channel_first=False, softmax=False, **kwargs),
        np.float64,
    )


@pytest.mark.slow
def test_pixel_flipping_region_perturbation_and_selectivity_agree(cnn, mlp):
    # Quantus' softmax=False rebuilds the model from `layers[-2].output`, which a Keras 3 Sequential does not
    # have: it gets the logits copy; tfxai gets the softmax model and strips the softmax itself.
    x, a, y = _images()
    logits = metrics.logits_model(cnn)
    pixel = _run(
        quantus.PixelFlipping(features_in_step=1, perturb_baseline="black", **AS_GIVEN), logits, x, y, a
    )
    ours = metrics.region_perturbation(cnn, x, a, y, patch_size=1, replacement="min")
    np.testing.assert_allclose(pixel, ours[:, 1:], **TOL)  # Quantus leaves out the unperturbed point
    for order in ("morf", "lerf"):
        quantus_drop = _run(
            quantus.RegionPerturbation(
                patch_size=2, order=order, regions_evaluation=9, perturb_baseline="black", **AS_GIVEN
            ),
            logits,
            x,
            y,
            a,
        )
        curve = metrics.region_perturbation(cnn, x, a, y, order=order, patch_size=2, replacement="min")
        np.testing.assert_allclose(quantus_drop, curve[:, :1] - curve[:, 1:], **TOL)
    selectivity = _run(
        quantus.Selectivity(patch_size=2, perturb_baseline="black", **AS_GIVEN), logits, x, y, a
    )
    curve = metrics.region_perturbation(cnn, x, a, y, patch_size=2, replacement="min")
    np.testing.assert_allclose(selectivity, curve[:, 1:], **TOL)
    tabular = np.random.default_rng(1).uniform(size=(4, 9)).astype("float32")
    relevance, target = np.random.default_rng(2).normal(size=tabular.shape), np.array([0, 1, 2, 0])
    pixel = _run(
        quantus.PixelFlipping(features_in_step=1, perturb_baseline="black", **AS_GIVEN),
        mlp,
        tabular,
        target,
        relevance,
    )
    ours = metrics.region_perturbation(mlp, tabular, relevance, target, patch_size=1, replacement="min")
    np.testing.assert_allclose(pixel, ours[:, 1:], **TOL)


@pytest.mark.slow
def test_faithfulness_correlation_agrees_where_it_is_exact():
    # Random subsets differ between the libraries, so compare where every subset gives correlation 1:
    # a linear model and its exact contributions relative to the replacement value.
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(16, 2)).astype("float32")
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.layers[-1].set_weights([weights, np.zeros(2, "float32")])
    x = rng.uniform(size=(3, 4, 4, 1)).astype("float32")
    minimum = x.reshape(3, -1).min(axis=1)[:, None, None, None]
    a = (x - minimum) * weights[:, 0].reshape(1, 4, 4, 1)
    theirs = _run(
        quantus.FaithfulnessCorrelation(
            nr_runs=20, subset_size=3, perturb_baseline="black", return_aggregate=False, **AS_GIVEN
        ),
        model,
        x,
        np.zeros(3, int),
        a,
    )
    ours = metrics.faithfulness_correlation(model, x, a, 0, subset_size=3, replacement="min")
    np.testing.assert_allclose(theirs, 1.0, atol=1e-5)
    np.testing.assert_allclose(ours, theirs, **TOL)


def test_localisation_and_complexity_agree():
    rng = np.random.default_rng(4)
    a = rng.uniform(size=(4, 8, 8, 1))
    s = rng.uniform(size=(4, 8, 8)) < 0.3
    x = np.zeros((4, 8, 8, 1), "float32")
    pairs = [
        (quantus.RelevanceMassAccuracy, metrics.relevance_mass_accuracy(a, s, keep="signed")),
        (quantus.RelevanceRankAccuracy, metrics.relevance_rank_accuracy(a, s)),
        (quantus.PointingGame, metrics.pointing_game(a, s)),
        (quantus.Complexity, metrics.complexity(a)),
    ]
    for metric, ours in pairs:
        theirs = _run(metric(**AS_GIVEN), None, x, np.zeros(4, int), a.copy(), s_batch=s[:, None])
        np.testing.assert_allclose(theirs, ours, **TOL, err_msg=metric.__name__)
    sparseness = _run(quantus.Sparseness(**AS_GIVEN), None, x, np.zeros(4, int), a.copy())
    np.testing.assert_allclose(
        sparseness, metrics.sparseness(a), atol=1e-6
    )  # Quantus adds 1e-7 to every value


def test_similarities_agree():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(3, 9, 10))
    b = a + rng.normal(size=a.shape)
    np.testing.assert_allclose(metrics.ssim(a, b), [similarity_func.ssim(p, q) for p, q in zip(a, b)], **TOL)
    flat_a, flat_b = a.reshape(3, -1), b.reshape(3, -1)
    np.testing.assert_allclose(
        metrics.spearman(a, b), similarity_func.correlation_spearman(flat_a, flat_b, batched=True), **TOL
    )


def _explain(model, x, target):
    x, target = np.asarray(x, "float32"), np.asarray(target).astype("int32")
    return tfxai.create_analyzer("gradient", model).analyze(x, neuron_selection=target)


def _quantus_explain(model, inputs, targets, **kwargs):
    return _explain(model, inputs, targets)


def test_max_sensitivity_and_random_logit_agree_given_the_same_noise_and_class(mlp):
    x = np.random.default_rng(6).uniform(size=(4, 9)).astype("float32")
    y = np.argmax(np.asarray(mlp(x)), axis=1)
    relevance = _explain(mlp, x, y)
    draws, scale = np.random.default_rng(2), x.max(axis=0) - x.min(axis=0)
    noises = iter([(draws.uniform(-0.05, 0.05, x.shape) * scale).astype("float32") for _ in range(3)])
    sensitivity = quantus.MaxSensitivity(
        nr_samples=3,
        perturb_func=lambda arr, indices, **kw: arr + next(noises).reshape(arr.shape),
        return_nan_when_prediction_changes=False,
        **AS_GIVEN,
    )
    theirs = _run(sensitivity, mlp, x, y, relevance, explain_func=_quantus_explain)
    ours = metrics.max_sensitivity(mlp, x, relevance, _explain, y, radius=0.05, samples=3, seed=2)
    np.testing.assert_allclose(theirs, ours, **TOL)
    np.random.seed(7)  # RandomLogit draws the other class this way
    offset = np.random.randint(0, 2, len(x))
    other = np.array([[c for c in range(3) if c != label][i] for label, i in zip(y, offset)])
    logit = quantus.RandomLogit(num_classes=3, seed=7, similarity_func=similarity_func.ssim, **AS_GIVEN)
    theirs = _run(logit, mlp, x, y, relevance, explain_func=_quantus_explain)
    ours = metrics.random_logit(mlp, x, relevance, _explain, y, other_target=other, similarity="ssim")
    np.testing.assert_allclose(theirs, ours, **TOL)
