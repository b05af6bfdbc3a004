"""Every metric of tfxai.metrics against a literal NumPy version, analytic cases and its error messages."""

import keras
import numpy as np
import pytest

import metrics_reference as ref
import tfxai
from tfxai import metrics
from tfxai.metrics import base, perturbation

TOL = dict(rtol=1e-5, atol=1e-5)


def _cnn():
    keras.utils.set_random_seed(11)
    return keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(3, activation="softmax", name="predictions"),
        ],
        name="tiny_cnn",
    )


def _mlp():
    keras.utils.set_random_seed(12)
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="relu", name="hidden"),
            keras.layers.Dense(3, name="logits"),
        ],
        name="tiny_mlp",
    )


def _linear(weights, bias=0.5):
    """f(x) = x @ W + b for (n, features) inputs, two outputs."""
    model = keras.Sequential(
        [keras.Input((weights.shape[0],)), keras.layers.Dense(weights.shape[1], name="linear")]
    )
    model.layers[0].set_weights([weights.astype("float32"), np.full(weights.shape[1], bias, "float32")])
    return model


@pytest.fixture(scope="module")
def cnn():
    return _cnn()


@pytest.fixture(scope="module")
def mlp():
    return _mlp()


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, shape).astype("float32"), rng.normal(size=shape)


def _predict(model):
    logits = base.logits_model(model)
    return lambda batch: np.asarray(logits(batch.astype("float32"), training=False), np.float64)


# ---------------------------------------------------------------------------- faithfulness


@pytest.mark.parametrize("order", ["morf", "lerf"])
@pytest.mark.parametrize("patch, steps", [(2, None), (4, 2), (1, 8)])
def test_region_perturbation_matches_the_literal_loop_on_images(cnn, order, patch, steps):
    x, relevance = _data((3, 8, 8, 2))
    target = np.array([0, 2, 1])
    curve = metrics.region_perturbation(cnn, x, relevance, target, order=order, patch_size=patch, steps=steps)
    regions = (8 // patch) ** 2
    baseline = np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape)
    expected = ref.perturbation_curve(
        _predict(cnn), x, relevance, target, patch, steps or regions, baseline, order
    )
    np.testing.assert_allclose(curve, expected, **TOL)
    np.testing.assert_allclose(metrics.aopc(curve), ref.aopc(expected), **TOL)


def test_region_perturbation_matches_the_literal_loop_on_tabular_data(mlp):
    x, relevance = _data((4, 6), seed=1)
    target = np.array([0, 1, 2, 0])
    baseline = np.random.default_rng(5).normal(size=x.shape).astype("float32")
    curve = metrics.region_perturbation(mlp, x, relevance, target, patch_size=2, replacement=baseline)
    expected = ref.perturbation_curve(_predict(mlp), x, relevance, target, 2, 3, baseline)
    np.testing.assert_allclose(curve, expected, **TOL)


def test_pixel_flipping_of_a_linear_model_follows_the_analytic_curve():
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(7, 2))
    model = _linear(weights, bias=0.5)
    x = rng.normal(size=(4, 7)).astype("float32")
    target = np.array([0, 1, 1, 0])
    contribution = x * weights[:, target].T  # input x gradient: exact for a linear model
    curve = metrics.region_perturbation(model, x, contribution, target, patch_size=1, replacement=0.0)
    for i in range(len(x)):
        removed = np.concatenate([[0.0], np.cumsum(np.sort(contribution[i])[::-1])])
        np.testing.assert_allclose(curve[i], 0.5 + contribution[i].sum() - removed, rtol=1e-5, atol=1e-5)
    lerf = metrics.region_perturbation(
        model, x, contribution, target, order="lerf", patch_size=1, replacement=0.0
    )
    assert np.all(metrics.abpc(curve, lerf) > 0)


def test_abpc_is_the_gap_of_the_aopcs_and_auc_is_the_trapezoid_rule():
    morf, lerf = np.random.default_rng(0).normal(size=(2, 3, 6))
    lerf[:, 0] = morf[:, 0]  # both curves start at the unperturbed input
    np.testing.assert_allclose(metrics.abpc(morf, lerf), metrics.aopc(morf) - metrics.aopc(lerf), **TOL)
    np.testing.assert_allclose(metrics.curve_auc(morf), ref.auc(morf), **TOL)


def test_deletion_insertion_and_selectivity_match_the_literal_loop(cnn):
    x, relevance = _data((2, 8, 8, 2), seed=2)
    target = np.array([1, 0])
    predict = _predict(cnn)
    zeros = np.zeros_like(x)
    deletion = metrics.deletion(cnn, x, relevance, target, patch_size=4)
    np.testing.assert_allclose(
        deletion, ref.auc(ref.perturbation_curve(predict, x, relevance, target, 4, 4, zeros)), **TOL
    )
    minimum = np.broadcast_to(x.reshape(2, -1).min(axis=1)[:, None, None, None], x.shape)
    selectivity = metrics.selectivity(cnn, x, relevance, target, patch_size=4)
    expected = ref.auc(ref.perturbation_curve(predict, x, relevance, target, 4, 4, minimum))
    np.testing.assert_allclose(selectivity, expected, **TOL)
    blurred = perturbation.gaussian_blur(x, sigma=2.0)
    insertion = metrics.insertion_curve(cnn, x, relevance, target, patch_size=2, steps=4)
    np.testing.assert_allclose(
        insertion, ref.insertion_curve(predict, x, relevance, target, 2, 4, blurred), **TOL
    )
    np.testing.assert_allclose(insertion[:, -1], predict(x)[[0, 1], target], **TOL)


def test_gaussian_blur_keeps_constant_images_and_smooths_noise():
    constant = np.full((1, 8, 8, 2), 0.3, "float32")
    np.testing.assert_allclose(perturbation.gaussian_blur(constant, 1.0), constant, atol=1e-6)
    noise = np.random.default_rng(0).normal(size=(1, 16, 16, 1)).astype("float32")
    blurred = perturbation.gaussian_blur(noise, 2.0)
    assert blurred.std() < 0.5 * noise.std() and abs(blurred.mean() - noise.mean()) < 0.1


def test_faithfulness_correlation_matches_the_literal_loop(mlp):
    x, relevance = _data((3, 6), seed=4)
    target = np.array([2, 0, 1])
    score = metrics.faithfulness_correlation(mlp, x, relevance, target, subset_size=2, subsets=7, seed=9)
    subsets = metrics.faithfulness.random_subset_ranks(3, 6, 7, 9)
    expected = ref.faithfulness_correlation(_predict(mlp), x, relevance, target, subsets, 2, np.zeros_like(x))
    np.testing.assert_allclose(score, expected, **TOL)


def test_faithfulness_correlation_is_one_for_exact_contributions_of_a_linear_model():
    rng = np.random.default_rng(6)
    weights = rng.normal(size=(9, 2))
    x = rng.normal(size=(3, 9)).astype("float32")
    score = metrics.faithfulness_correlation(_linear(weights), x, x * weights[:, 0], 0, subset_size=3)
    np.testing.assert_allclose(score, 1.0, atol=1e-5)


def test_a_perfect_explanation_of_planted_evidence_beats_a_random_one():
    # The logit is the sum of a 2x2 patch of a 6x6 image; everything else is ignored.
    kernel = np.zeros((6, 6, 1, 2), "float32")
    kernel[1:3, 3:5, 0, 0] = 1.0
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.layers[-1].set_weights([kernel.reshape(36, 2), np.zeros(2, "float32")])
    x = np.random.default_rng(0).uniform(0.5, 1.0, (5, 6, 6, 1)).astype("float32")
    masks = np.zeros((5, 6, 6), bool)
    masks[:, 1:3, 3:5] = True
    perfect = masks[..., None] * x
    noise = np.random.default_rng(1).normal(size=x.shape)
    scores = {}
    for name, relevance in {"perfect": perfect, "random": noise}.items():
        curve = metrics.region_perturbation(model, x, relevance, 0, patch_size=1, replacement=0.0)
        scores[name] = (metrics.aopc(curve), metrics.relevance_mass_accuracy(relevance, masks))
    assert np.all(scores["perfect"][0] > scores["random"][0])
    np.testing.assert_allclose(scores["perfect"][1], 1.0)
    assert np.all(scores["random"][1] < 0.6)


def test_chunked_model_calls_give_the_same_curves(cnn):
    x, relevance = _data((5, 8, 8, 2), seed=7)
    whole = metrics.region_perturbation(cnn, x, relevance, patch_size=2)
    chunked = metrics.region_perturbation(cnn, x, relevance, patch_size=2, batch_size=3)
    np.testing.assert_allclose(whole, chunked, rtol=1e-6, atol=1e-6)


def test_logits_strip_the_softmax_without_touching_the_model(cnn):
    x, relevance = _data((2, 8, 8, 2), seed=8)
    weights = [w.copy() for w in cnn.get_weights()]
    with_logits = metrics.region_perturbation(cnn, x, relevance, 0, patch_size=4)
    probabilities = metrics.region_perturbation(cnn, x, relevance, 0, patch_size=4, logits=False)
    assert np.all((probabilities >= 0) & (probabilities <= 1)) and not np.allclose(with_logits, probabilities)
    logits = base.logits_model(cnn)
    assert logits is not cnn and logits.layers[-1].activation.__name__ == "linear"
    z = np.asarray(logits(x))
    np.testing.assert_allclose(
        np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), np.asarray(cnn(x)), rtol=1e-5
    )
    assert cnn.layers[-1].activation.__name__ == "softmax"
    assert all(np.array_equal(a, b) for a, b in zip(weights, cnn.get_weights()))


def test_the_default_patch_gives_at_most_64_regions_and_the_target_is_the_top_logit(mlp):
    assert perturbation.regions_for(np.zeros((1, 32, 32, 3)), None).patch == 4
    assert perturbation.regions_for(np.zeros((1, 8, 8, 3)), None).patch == 1
    assert perturbation.regions_for(np.zeros((1, 100)), None).count <= 64
    x, _ = _data((4, 6))
    np.testing.assert_array_equal(base.Forward(mlp).target(x), np.argmax(np.asarray(mlp(x)), axis=1))


# ---------------------------------------------------------------------------- localisation


def test_localisation_metrics_match_the_literal_definitions():
    rng = np.random.default_rng(0)
    relevance = rng.normal(size=(4, 6, 6, 3))
    masks = rng.uniform(size=(4, 6, 6)) < 0.3
    np.testing.assert_allclose(
        metrics.relevance_mass_accuracy(relevance, masks),
        ref.relevance_mass_accuracy(relevance, masks),
        **TOL,
    )
    np.testing.assert_allclose(
        metrics.relevance_rank_accuracy(relevance, masks),
        ref.relevance_rank_accuracy(relevance, masks),
        **TOL,
    )
    for tolerance in (0.0, 1.5):
        np.testing.assert_array_equal(
            metrics.pointing_game(relevance, masks, tolerance=tolerance),
            ref.pointing_game(relevance, masks, tolerance),
        )


def test_localisation_accepts_masks_with_channels_and_tabular_masks():
    relevance = np.array([[0.5, -1.0, 2.0, 0.5]])
    masks = np.array([[1, 0, 1, 0]])
    np.testing.assert_allclose(metrics.relevance_mass_accuracy(relevance, masks), [2.5 / 3.0])
    np.testing.assert_allclose(metrics.relevance_mass_accuracy(relevance, masks, keep="signed"), [2.5 / 2.0])
    np.testing.assert_allclose(metrics.relevance_rank_accuracy(relevance, masks), [1.0])  # tie: first index
    np.testing.assert_array_equal(metrics.pointing_game(relevance, masks), [1.0])
    image = np.zeros((1, 4, 4, 2))
    image[0, 1, 2, 1] = 1.0
    channel_masks = np.zeros((1, 4, 4, 2))
    channel_masks[0, 1, 2, 0] = 1
    np.testing.assert_array_equal(metrics.pointing_game(image, channel_masks), [1.0])
    empty = metrics.relevance_mass_accuracy(relevance, np.zeros((1, 4)))
    assert np.isnan(empty).all()


# ---------------------------------------------------------------------------- complexity and similarity


def test_sparseness_and_complexity_match_the_literal_formulas():
    relevance = np.random.default_rng(1).normal(size=(3, 5, 5, 2))
    np.testing.assert_allclose(metrics.sparseness(relevance), ref.gini(relevance), **TOL)
    np.testing.assert_allclose(metrics.complexity(relevance), ref.entropy(relevance), **TOL)
    one_hot = np.zeros((1, 10))
    one_hot[0, 3] = 2.0
    np.testing.assert_allclose(metrics.sparseness(one_hot), [0.9])
    np.testing.assert_allclose(metrics.complexity(one_hot), [0.0])
    np.testing.assert_allclose(metrics.sparseness(np.ones((1, 10))), [0.0], atol=1e-12)
    np.testing.assert_allclose(metrics.complexity(np.ones((1, 10))), [np.log(10)])


def test_spearman_and_ssim_match_the_literal_formulas():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 9, 10))
    b = a + rng.normal(size=a.shape)
    b[0, :2] = 1.0  # ties
    np.testing.assert_allclose(metrics.spearman(a, b), ref.spearman(a, b), **TOL)
    np.testing.assert_allclose(metrics.ssim(a, b), [ref.ssim_pair(p, q) for p, q in zip(a, b)], **TOL)
    np.testing.assert_allclose(metrics.ssim(a, a), 1.0)
    np.testing.assert_allclose(metrics.spearman(a, -a), -1.0)


# ---------------------------------------------------------------------------- sanity checks


def _explainer(name):
    return lambda model, x, target: tfxai.create_analyzer(name, model).analyze(x, neuron_selection=target)


def test_cascading_randomisation_works_on_a_copy_top_down(cnn):
    weights = [w.copy() for w in cnn.get_weights()]
    seen = []
    for name, copy in metrics.cascading_randomisation(cnn, seed=3):
        assert copy is not cnn
        changed = [
            layer.name
            for layer, original in zip(copy.layers, cnn.layers)
            if any(not np.array_equal(a, b) for a, b in zip(layer.get_weights(), original.get_weights()))
        ]
        seen.append((name, changed))
    assert seen == [("predictions", ["predictions"]), ("conv", ["conv", "predictions"])]
    assert all(np.array_equal(a, b) for a, b in zip(weights, cnn.get_weights()))


def test_model_parameter_randomisation_compares_with_the_randomised_explanations(cnn):
    x, _ = _data((3, 8, 8, 2), seed=3)
    explain = _explainer("gradient")
    target = base.Forward(cnn).target(x)
    relevance = explain(cnn, x, target)
    scores = metrics.model_parameter_randomisation(cnn, x, relevance, explain, seed=3)
    assert list(scores) == ["predictions", "conv"]
    for name, copy in metrics.cascading_randomisation(cnn, seed=3):
        expected = ref.spearman(relevance.sum(-1), explain(copy, x, target).sum(-1))
        np.testing.assert_allclose(scores[name], expected, **TOL)
    assert np.all(np.abs(scores["conv"]) < 0.9)
    inputs = metrics.model_parameter_randomisation(cnn, x, x, _explainer("input"), similarity="ssim")
    np.testing.assert_allclose(inputs["conv"], 1.0)  # the input does not depend on the model: fails the check


def test_random_logit_compares_with_the_explanation_of_another_class():
    rng = np.random.default_rng(4)
    weights = rng.normal(size=(12, 3))
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(3)])
    model.layers[0].set_weights([weights.astype("float32"), np.zeros(3, "float32")])
    x = rng.normal(size=(4, 12)).astype("float32")
    target, other = np.array([0, 1, 2, 0]), np.array([1, 2, 0, 2])
    gradient = weights[:, target].T
    score = metrics.random_logit(
        model, x, gradient, _explainer("gradient"), target, other_target=other, similarity="spearman"
    )
    np.testing.assert_allclose(score, ref.spearman(weights[:, target].T, weights[:, other].T), **TOL)
    drawn = metrics.random_logit(model, x, gradient, _explainer("gradient"), target, seed=1)
    assert drawn.shape == (4,) and np.all(drawn < 1)


# ---------------------------------------------------------------------------- robustness


def test_sensitivity_of_input_times_gradient_on_a_linear_model_is_the_relative_noise():
    rng = np.random.default_rng(5)
    weights = rng.normal(size=(8, 2))
    model = _linear(weights)
    x = rng.normal(size=(3, 8)).astype("float32")
    explain = _explainer("input_t_gradient")
    relevance = explain(model, x, np.zeros(3, np.int32))
    ratios = metrics.sensitivities(model, x, relevance, explain, 0, radius=0.1, samples=4, seed=2)
    draws = np.random.default_rng(2)
    scale = x.max(axis=0) - x.min(axis=0)
    expected = np.zeros((3, 4))
    for k in range(4):
        noise = (draws.uniform(-0.1, 0.1, x.shape) * scale).astype("float32")
        for i in range(3):
            expected[i, k] = np.linalg.norm(noise[i] * weights[:, 0]) / np.linalg.norm(x[i] * weights[:, 0])
    np.testing.assert_allclose(ratios, expected, rtol=1e-4)
    np.testing.assert_allclose(
        metrics.max_sensitivity(model, x, relevance, explain, 0, radius=0.1, samples=4, seed=2),
        expected.max(1),
        rtol=1e-4,
    )
    np.testing.assert_allclose(
        metrics.avg_sensitivity(model, x, relevance, explain, 0, radius=0.1, samples=4, seed=2),
        expected.mean(1),
        rtol=1e-4,
    )
    gradient = _explainer("gradient")
    constant = metrics.max_sensitivity(
        model, x, gradient(model, x, np.zeros(3, np.int32)), gradient, 0, samples=2
    )
    np.testing.assert_allclose(constant, 0.0, atol=1e-6)  # a linear model's gradient does not move


def test_local_lipschitz_of_input_times_gradient_on_a_linear_model():
    rng = np.random.default_rng(6)
    weights = rng.normal(size=(5, 2))
    model = _linear(weights)
    x = rng.normal(size=(2, 5)).astype("float32")
    explain = _explainer("input_t_gradient")
    relevance = explain(model, x, np.ones(2, np.int32))
    estimate = metrics.local_lipschitz(model, x, relevance, explain, 1, sigma=0.1, samples=3, seed=4)
    draws, scale = np.random.default_rng(4), x.max(axis=0) - x.min(axis=0)
    noises = [(draws.normal(0, 0.1, x.shape) * scale).astype("float32") for _ in range(3)]
    expected = [
        max(np.linalg.norm(n[i] * weights[:, 1]) / np.linalg.norm(n[i]) for n in noises) for i in range(2)
    ]
    np.testing.assert_allclose(estimate, expected, rtol=1e-4)
    assert np.all(estimate <= np.abs(weights[:, 1]).max() + 1e-5)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, x, r: metrics.region_perturbation(m, x, r, patch_size=3), "divide"),
        (lambda m, x, r: metrics.region_perturbation(m, x, r, patch_size=16), "at most the input size"),
        (
            lambda m, x, r: metrics.region_perturbation(m, x, r, patch_size=0),
            "patch_size must be an integer >= 1",
        ),
        (lambda m, x, r: metrics.region_perturbation(m, x, r, steps=0), "steps must be an integer >= 1"),
        (lambda m, x, r: metrics.region_perturbation(m, x, r, steps=1000), "at most the number of regions"),
        (lambda m, x, r: metrics.region_perturbation(m, x, r, order="best"), "order must be one of"),
        (lambda m, x, r: metrics.region_perturbation(m, x, r, replacement="grey"), "replacement must be"),
        (lambda m, x, r: metrics.region_perturbation(m, x, r[:, :4]), "must have the shape of x"),
        (lambda m, x, r: metrics.region_perturbation(m, x, np.where(r > 1, np.nan, r)), "NaN"),
        (
            lambda m, x, r: metrics.region_perturbation(m, x, r, target=7),
            r"target indices must be in \[0, 3\)",
        ),
        (lambda m, x, r: metrics.relevance_mass_accuracy(r, np.ones((2, 4, 4))), "masks must have shape"),
        (lambda m, x, r: metrics.relevance_mass_accuracy(r, np.full((2, 8, 8), 2)), "only 0/1"),
        (
            lambda m, x, r: metrics.pointing_game(r, np.ones((2, 8, 8)), tolerance=-1),
            "tolerance must be >= 0",
        ),
        (lambda m, x, r: metrics.ssim(r[..., 0], r[..., 0], window=4), "window must be odd"),
        (
            lambda m, x, r: metrics.model_parameter_randomisation(m, x, r, None, layers=["nope"]),
            "layers must name",
        ),
        (
            lambda m, x, r: metrics.random_logit(m, x, r, None, similarity="cosine"),
            "similarity must be one of",
        ),
        (lambda m, x, r: metrics.max_sensitivity(m, x, r, None, radius=0), "radius must be > 0"),
    ],
)
def test_invalid_arguments_raise_clear_errors(cnn, call, message):
    x, relevance = _data((2, 8, 8, 2))
    with pytest.raises(metrics.MetricError, match=message) as error:
        call(cnn, x, relevance)
    assert isinstance(error.value, tfxai.TfxaiError) and isinstance(error.value, ValueError)


def test_metrics_follow_the_models_current_weights():
    # The traced logits copy of a model is reused between calls; it must see weight changes.
    model = _cnn()
    x, relevance = _data((2, 8, 8, 2), seed=9)
    before = metrics.region_perturbation(model, x, relevance, 0, patch_size=4)
    weights = model.get_weights()
    model.set_weights([w * 2 for w in weights])
    after = metrics.region_perturbation(model, x, relevance, 0, patch_size=4)
    means = np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape)
    expected = ref.perturbation_curve(_predict(model), x, relevance, [0, 0], 4, 4, means)
    np.testing.assert_allclose(after, expected, **TOL)
    assert not np.allclose(before, after)
