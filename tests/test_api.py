"""Public API behaviour: input forms, neuron selection, error messages,
composites and the rule registry."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import rules
from tfxai.composites import composite_names
from conftest import IMAGE_SHAPE, N_CLASSES, N_FEATURES, make_inputs, predict, summed

L = keras.layers
RTOL = 1e-5


def _close(got, want):
    got, want = np.asarray(got), np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * max(np.abs(want).max(), 1e-12))


# --------------------------------------------------------------------------- input forms


@pytest.fixture(scope="module")
def mlp_analyzer(zoo):
    return tfxai.create_analyzer("lrp.epsilon", zoo("mlp", use_bias=True))


@pytest.fixture(scope="module")
def multi_analyzer(zoo):
    return tfxai.create_analyzer("lrp.epsilon", zoo("multi_input", use_bias=True))


def test_numpy_result_has_the_input_shape_and_type(mlp_analyzer):
    x = make_inputs(mlp_analyzer.model, 5, "both")
    relevance = mlp_analyzer.analyze(x)
    assert isinstance(relevance, np.ndarray)
    assert relevance.shape == x.shape
    assert relevance.dtype == np.float32


def test_cnn_result_has_the_image_shape(zoo):
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 3, "both")
    relevance = tfxai.create_analyzer("lrp.epsilon_plus", model).analyze(x)
    assert isinstance(relevance, np.ndarray) and relevance.shape == (3,) + IMAGE_SHAPE


def test_tensor_and_other_numeric_inputs_give_the_numpy_result(mlp_analyzer):
    x = make_inputs(mlp_analyzer.model, 5, "both")
    want = mlp_analyzer.analyze(x)
    for form in (tf.constant(x), x.astype(np.float64), tf.constant(x, tf.float64), [x], (x,)):
        got = mlp_analyzer.analyze(form)
        if isinstance(form, (list, tuple)):
            assert isinstance(got, list) and len(got) == 1
            got = got[0]
        assert isinstance(got, np.ndarray) and got.shape == x.shape
        _close(got, want)
    ints = np.arange(30).reshape(5, N_FEATURES) % 3
    _close(mlp_analyzer.analyze(ints), mlp_analyzer.analyze(ints.astype(np.float32)))


def test_multi_input_list_tuple_and_dict(multi_analyzer):
    xa, xb = make_inputs(multi_analyzer.model, 4, "both")
    as_list = multi_analyzer.analyze([xa, xb])
    assert isinstance(as_list, list) and len(as_list) == 2
    assert as_list[0].shape == xa.shape and as_list[1].shape == xb.shape
    assert all(isinstance(r, np.ndarray) for r in as_list)

    as_tuple = multi_analyzer.analyze((xa, xb))
    as_dict = multi_analyzer.analyze({"xb": xb, "xa": xa})
    assert isinstance(as_dict, dict) and set(as_dict) == {"xa", "xb"}
    for got in (as_tuple, [as_dict["xa"], as_dict["xb"]]):
        _close(got[0], as_list[0])
        _close(got[1], as_list[1])

    relevance, delta = multi_analyzer.analyze({"xa": xa, "xb": xb}, return_delta=True)
    assert isinstance(relevance, dict) and delta.shape == (4,)


def test_dataset_of_batches_equals_numpy(mlp_analyzer):
    x = make_inputs(mlp_analyzer.model, 7, "both")
    y = np.arange(7) % N_CLASSES
    want, want_delta = mlp_analyzer.analyze(x, return_delta=True)
    datasets = {
        "x": tf.data.Dataset.from_tensor_slices(x).batch(3),
        "x_y": tf.data.Dataset.from_tensor_slices((x, y)).batch(3),
        "x_y_w": tf.data.Dataset.from_tensor_slices((x, y, np.ones(7))).batch(4),
    }
    for label, dataset in datasets.items():
        got, delta = mlp_analyzer.analyze(dataset, return_delta=True)
        assert isinstance(got, np.ndarray) and got.shape == x.shape, label
        _close(got, want)
        _close(delta, want_delta)
    # batch_size= re-chunks dataset batches
    _close(mlp_analyzer.analyze(datasets["x_y"], batch_size=2), want)


def test_dataset_with_per_sample_targets_keeps_them_aligned(mlp_analyzer):
    x = make_inputs(mlp_analyzer.model, 7, "both")
    targets = np.array([2, 0, 1, 1, 2, 0, 2])
    want = mlp_analyzer.analyze(x, neuron_selection=targets)
    got = mlp_analyzer.analyze(tf.data.Dataset.from_tensor_slices(x).batch(3), neuron_selection=targets)
    _close(got, want)


def test_multi_input_datasets(multi_analyzer):
    xa, xb = make_inputs(multi_analyzer.model, 5, "both")
    want = multi_analyzer.analyze([xa, xb])
    y = np.zeros(5)
    as_dict = multi_analyzer.analyze(tf.data.Dataset.from_tensor_slices({"xa": xa, "xb": xb}).batch(2))
    assert isinstance(as_dict, dict)
    _close(as_dict["xa"], want[0])
    _close(as_dict["xb"], want[1])
    as_pairs = multi_analyzer.analyze(tf.data.Dataset.from_tensor_slices(((xa, xb), y)).batch(2))
    assert isinstance(as_pairs, list)
    _close(as_pairs[0], want[0])
    _close(as_pairs[1], want[1])


def test_verbose_shows_progress(mlp_analyzer, capsys):
    x = make_inputs(mlp_analyzer.model, 6, "both")
    _close(mlp_analyzer.analyze(x, batch_size=2, verbose=1), mlp_analyzer.analyze(x))
    assert "6/6" in capsys.readouterr().out


# --------------------------------------------------------------------------- neuron selection


@pytest.fixture(scope="module")
def z_analyzer(zoo):
    """LRP-0 on a bias-free ReLU CNN: relevance sums to the explained logits."""
    return tfxai.create_analyzer("lrp.z", zoo("cnn", use_bias=False))


def _sums_match(relevance, want):
    scale = np.abs(want).max()
    np.testing.assert_allclose(summed(relevance), want, rtol=RTOL, atol=RTOL * scale)


def test_neuron_selection_int(z_analyzer):
    x = make_inputs(z_analyzer.model, 5, "positive", seed=1)
    logits = predict(z_analyzer.model, x)
    for index in range(N_CLASSES):
        for selection in (index, np.int64(index)):
            relevance, delta = z_analyzer.analyze(x, neuron_selection=selection, return_delta=True)
            _sums_match(relevance, logits[:, index])
            assert np.abs(delta).max() <= RTOL * np.abs(logits).max()


def test_neuron_selection_per_sample(z_analyzer):
    x = make_inputs(z_analyzer.model, 5, "positive", seed=2)
    logits = predict(z_analyzer.model, x)
    targets = [2, 0, 1, 0, 2]
    for selection in (targets, np.array(targets, np.int64), np.array(targets, np.int32)):
        relevance = z_analyzer.analyze(x, neuron_selection=selection)
        _sums_match(relevance, logits[np.arange(5), targets])
    # Each sample is explained for its own target.
    per_sample = z_analyzer.analyze(x, neuron_selection=targets)
    for i, t in enumerate(targets):
        _close(per_sample[i], z_analyzer.analyze(x, neuron_selection=t)[i])


def test_neuron_selection_all(z_analyzer):
    x = make_inputs(z_analyzer.model, 5, "positive", seed=3)
    logits = predict(z_analyzer.model, x)
    everything, delta = z_analyzer.analyze(x, neuron_selection="all", return_delta=True)
    _sums_match(everything, logits.sum(axis=1))
    assert np.abs(delta).max() <= RTOL * np.abs(logits).sum(1).max()
    # LRP-0 is linear in the starting relevance: "all" is the sum of the single-neuron maps.
    parts = sum(z_analyzer.analyze(x, neuron_selection=i) for i in range(N_CLASSES))
    _close(everything, parts)


def test_max_activation_equals_argmax_index(z_analyzer):
    x = make_inputs(z_analyzer.model, 6, "both", seed=4)
    index = predict(z_analyzer.model, x).argmax(axis=1)
    _close(z_analyzer.analyze(x), z_analyzer.analyze(x, neuron_selection=index))
    by_index = z_analyzer.analyze(x, neuron_selection=index)
    _close(z_analyzer.analyze(x, neuron_selection="max_activation"), by_index)


def test_gradient_all_is_gradient_of_the_sum(zoo):
    model = zoo("mlp", use_bias=True)
    x = make_inputs(model, 4, "both", seed=5)
    analyzer = tfxai.create_analyzer("gradient", model)
    everything = analyzer.analyze(x, neuron_selection="all")
    _close(everything, sum(analyzer.analyze(x, neuron_selection=i) for i in range(N_CLASSES)))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        total = tf.reduce_sum(model(xt))
    _close(everything, tape.gradient(total, xt).numpy())


def test_indices_count_over_flattened_output_axes():
    keras.utils.set_random_seed(3)
    x_in = keras.Input((N_FEATURES,))
    h = L.Dense(6, use_bias=False, name="d")(x_in)
    model = keras.Model(x_in, L.Reshape((2, 3), name="grid")(h))
    x = make_inputs(model, 4, "both", seed=6)
    flat = predict(model, x).reshape(4, -1)
    analyzer = tfxai.create_analyzer("lrp.z", model)
    assert analyzer.output_size() == 6
    relevance = analyzer.analyze(x, neuron_selection=4)
    _sums_match(relevance, flat[:, 4])
    _sums_match(analyzer.analyze(x), flat.max(axis=1))
    with pytest.raises(tfxai.InputError, match=r"\[0, 6\)"):
        analyzer.analyze(x, neuron_selection=6)


# --------------------------------------------------------------------------- errors: inputs


def _message(excinfo):
    return str(excinfo.value)


def test_wrong_shape(mlp_analyzer, zoo):
    with pytest.raises(tfxai.InputError) as info:
        mlp_analyzer.analyze(np.zeros((2, N_FEATURES + 1), np.float32))
    assert f"(batch, {N_FEATURES})" in _message(info) and "(2, 7)" in _message(info)

    with pytest.raises(tfxai.InputError) as info:
        mlp_analyzer.analyze(np.zeros(N_FEATURES, np.float32))
    assert "x[None]" in _message(info) and f"({N_FEATURES},)" in _message(info)

    cnn = tfxai.create_analyzer("gradient", zoo("cnn"))
    with pytest.raises(tfxai.InputError) as info:
        cnn.analyze(np.zeros((1, 8, 8, 3), np.float32))
    assert "(batch, 8, 8, 2)" in _message(info) and "(1, 8, 8, 3)" in _message(info)


def test_wrong_number_of_inputs(multi_analyzer, mlp_analyzer):
    xa, xb = make_inputs(multi_analyzer.model, 3, "both")
    with pytest.raises(tfxai.InputError) as info:
        multi_analyzer.analyze([xa])
    assert "2 input(s)" in _message(info) and "1 arrays" in _message(info)
    assert "'xa'" in _message(info) and "'xb'" in _message(info)

    with pytest.raises(tfxai.InputError) as info:
        multi_analyzer.analyze(xa)
    assert "2 inputs" in _message(info) and "list or dict" in _message(info)

    x = make_inputs(mlp_analyzer.model, 3, "both")
    with pytest.raises(tfxai.InputError) as info:
        mlp_analyzer.analyze([x, x])
    assert "1 input(s)" in _message(info) and "2 arrays" in _message(info)


def test_dict_missing_a_key(multi_analyzer):
    xa, _ = make_inputs(multi_analyzer.model, 3, "both")
    with pytest.raises(tfxai.InputError) as info:
        multi_analyzer.analyze({"xa": xa, "wrong": xa})
    message = _message(info)
    assert "missing" in message and "'xb'" in message
    assert "Expected keys: ['xa', 'xb']" in message and "'wrong'" in message


def test_mismatched_batch_sizes(multi_analyzer):
    xa, xb = make_inputs(multi_analyzer.model, 3, "both")
    with pytest.raises(tfxai.InputError, match=r"same batch size.*\[2, 3\]"):
        multi_analyzer.analyze([xa, xb[:2]])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected(mlp_analyzer, bad):
    x = make_inputs(mlp_analyzer.model, 4, "both")
    x[2, 3] = bad
    with pytest.raises(tfxai.InputError) as info:
        mlp_analyzer.analyze(x)
    assert "NaN or Inf" in _message(info) and "[2]" in _message(info)
    with pytest.raises(tfxai.InputError):
        mlp_analyzer.analyze(tf.constant(x))


def test_non_numeric_dtype(mlp_analyzer):
    strings = np.array([["a"] * N_FEATURES])
    with pytest.raises(tfxai.InputError) as info:
        mlp_analyzer.analyze(strings)
    assert "float32" in _message(info) and "<U1" in _message(info)
    with pytest.raises(tfxai.InputError):
        mlp_analyzer.analyze(np.array([[object()] * N_FEATURES], dtype=object))


def test_float_given_to_an_integer_input():
    ids = keras.Input((4,), dtype="int32", name="ids")
    model = keras.Model(ids, L.Dense(3)(keras.ops.cast(ids, "float32")))
    analyzer = tfxai.create_analyzer("lrp.z", model)  # gradient methods refuse integer-only inputs
    with pytest.raises(tfxai.InputError) as info:
        analyzer.analyze(np.ones((2, 4), np.float32))
    message = _message(info)
    assert "'ids'" in message and "int32" in message and "float32" in message


def test_empty_inputs(mlp_analyzer):
    with pytest.raises(tfxai.InputError, match="no samples"):
        mlp_analyzer.analyze(np.zeros((0, N_FEATURES), np.float32))
    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, N_FEATURES), np.float32)).batch(2)
    with pytest.raises(tfxai.InputError, match="empty dataset"):
        mlp_analyzer.analyze(empty)


def test_unbatched_dataset_is_a_shape_error(mlp_analyzer):
    x = make_inputs(mlp_analyzer.model, 3, "both")
    with pytest.raises(tfxai.InputError, match="x\\[None\\]"):
        mlp_analyzer.analyze(tf.data.Dataset.from_tensor_slices(x))


def test_bad_batch_size(mlp_analyzer):
    x = make_inputs(mlp_analyzer.model, 3, "both")
    for bad in (-1, 0):
        with pytest.raises(tfxai.ParameterError, match="batch_size must be an integer >= 1"):
            mlp_analyzer.analyze(x, batch_size=bad)
    with pytest.raises(tfxai.ParameterTypeError, match="batch_size"):
        mlp_analyzer.analyze(x, batch_size="2")


def test_neuron_index_out_of_range(mlp_analyzer):
    x = make_inputs(mlp_analyzer.model, 3, "both")
    for bad in (N_CLASSES, -1, [0, 1, N_CLASSES]):
        with pytest.raises(tfxai.InputError) as info:
            mlp_analyzer.analyze(x, neuron_selection=bad)
        assert f"[0, {N_CLASSES})" in _message(info)
    with pytest.raises(tfxai.InputError) as info:
        mlp_analyzer.analyze(x, neuron_selection=[0, 1])
    assert "2 indices" in _message(info) and "3 samples" in _message(info)


@pytest.mark.parametrize("bad", ["max", 1.5, [0.0, 1.0, 2.0], [[0, 1, 2]], None])
def test_invalid_neuron_selection(mlp_analyzer, bad):
    x = make_inputs(mlp_analyzer.model, 3, "both")
    with pytest.raises(ValueError) as info:
        mlp_analyzer.analyze(x, neuron_selection=bad)
    assert "neuron_selection" in _message(info)


# --------------------------------------------------------------------------- errors: models, names


def test_unknown_analyzer_name_lists_valid_names(zoo):
    with pytest.raises(KeyError) as info:
        tfxai.create_analyzer("lrp.epsilonn", zoo("mlp"))
    message = _message(info)
    assert "'lrp.epsilonn'" in message
    for name in ("lrp.epsilon", "gradient", "lrp.epsilon_gamma_box"):
        assert name in message
    assert isinstance(info.value, tfxai.TfxaiError)
    assert not message.startswith('"')  # readable, not a repr-quoted KeyError


def test_unknown_keyword_argument(zoo):
    with pytest.raises(TypeError) as info:
        tfxai.create_analyzer("lrp.epsilon", zoo("mlp"), epsilom=0.1)
    assert "epsilom" in _message(info) and "'epsilon'" in _message(info) and "'rules'" in _message(info)
    with pytest.raises(TypeError) as info:
        tfxai.create_analyzer("gradient", zoo("mlp"), epsilon=0.1)
    assert "epsilon" in _message(info) and "'output_index'" in _message(info)
    with pytest.raises(TypeError) as info:
        tfxai.create_analyzer("lrp.epsilon_gamma_box", zoo("cnn"), alpha=2.0)
    assert "'low'" in _message(info) and "'gamma'" in _message(info)


def test_invalid_output_index(zoo):
    with pytest.raises(ValueError, match=r"output_index must be in \[0, 2\)"):
        tfxai.create_analyzer("lrp.epsilon", zoo("multi_output"), output_index=2)


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = L.Dense(3)

    def call(self, inputs):
        return self.dense(inputs)


def test_subclassed_model_is_rejected():
    model = _Subclassed()
    model(np.zeros((1, N_FEATURES), np.float32))
    with pytest.raises(tfxai.ModelError) as info:
        tfxai.create_analyzer("lrp.epsilon", model)
    message = _message(info)
    assert "subclassed" in message and "_Subclassed" in message and "functional API" in message


def test_unbuilt_sequential_is_rejected():
    model = keras.Sequential([L.Dense(4), L.Dense(3)], name="unbuilt")
    with pytest.raises(tfxai.ModelError) as info:
        tfxai.create_analyzer("lrp.epsilon", model)
    assert "'unbuilt'" in _message(info) and "not built" in _message(info) and "keras.Input" in _message(info)


@pytest.mark.parametrize("thing", [L.Dense(3), lambda x: x, "model", None])
def test_non_model_is_rejected(thing):
    with pytest.raises(tfxai.ModelError) as info:
        tfxai.create_analyzer("lrp.epsilon", thing)
    assert "keras.Model" in _message(info) and type(thing).__name__ in _message(info)


def test_weight_rule_on_a_weightless_node_is_rejected(zoo):
    with pytest.raises(tfxai.ModelError) as info:
        tfxai.create_analyzer("lrp.epsilon", zoo("cnn"), rules=[(L.Flatten, rules.Gamma())])
    assert "'flatten'" in _message(info) and "Gamma" in _message(info)


def test_invalid_rule_entries(zoo):
    with pytest.raises(TypeError, match="selects nodes"):
        tfxai.create_analyzer("lrp.epsilon", zoo("mlp"), rules=[(3, rules.Pass())])
    with pytest.raises(TypeError, match="Rule"):
        tfxai.create_analyzer("lrp.epsilon", zoo("mlp"), rules=[(L.Dense, "epsilon")])
    with pytest.raises(ValueError, match="input_layer_rule"):
        tfxai.create_analyzer("lrp.epsilon", zoo("mlp"), input_layer_rule="Box")


def test_unknown_composite(zoo):
    with pytest.raises(KeyError, match="epsilon_plus"):
        tfxai.analyzers.LRP(zoo("mlp"), "no_such_composite")
    with pytest.raises(TypeError, match="'epsilon'"):
        tfxai.composites.get_composite("epsilon_plus", gamma=1.0)


# --------------------------------------------------------------------------- composites & rules=


@pytest.fixture(scope="module")
def cnn_bias(zoo):
    return zoo("cnn", use_bias=True)


@pytest.mark.parametrize("name", composite_names())
def test_every_composite_runs(cnn_bias, name):
    analyzer = tfxai.create_analyzer("lrp." + name, cnn_bias)
    x = make_inputs(cnn_bias, 3, "both", seed=7)
    relevance = analyzer.analyze(x)
    assert relevance.shape == x.shape
    assert np.all(np.isfinite(relevance))
    assert np.abs(relevance).max() > 0
    # every node got a rule
    assert set(analyzer.assignment) == {node.name for node in analyzer.view.nodes}


EPS = rules.Epsilon(1e-6)
PRESETS = {
    "epsilon_plus": {"conv1": rules.ZPlus(), "conv2": rules.ZPlus(), "fc1": EPS, "logits": EPS},
    "epsilon_plus_flat": {"conv1": rules.Flat(), "conv2": rules.ZPlus(), "fc1": EPS, "logits": EPS},
    "epsilon_gamma_box": {
        "conv1": rules.ZBox(-1.0, 1.0),
        "conv2": rules.Gamma(0.25),
        "fc1": EPS,
        "logits": EPS,
    },
    "epsilon_alpha2_beta1": {
        "conv1": rules.AlphaBeta(2.0, 1.0),
        "conv2": rules.AlphaBeta(2.0, 1.0),
        "fc1": EPS,
        "logits": EPS,
    },
    "epsilon_alpha2_beta1_flat": {
        "conv1": rules.Flat(),
        "conv2": rules.AlphaBeta(2.0, 1.0),
        "fc1": EPS,
        "logits": EPS,
    },
    "sequential_preset_a": {
        "conv1": rules.AlphaBeta(1.0, 0.0),
        "conv2": rules.AlphaBeta(1.0, 0.0),
        "fc1": rules.Epsilon(0.1),
        "logits": rules.Epsilon(0.1),
    },
    "sequential_preset_b": {
        "conv1": rules.AlphaBeta(2.0, 1.0),
        "conv2": rules.AlphaBeta(2.0, 1.0),
        "fc1": rules.Epsilon(0.1),
        "logits": rules.Epsilon(0.1),
    },
    "sequential_preset_a_flat": {
        "conv1": rules.Flat(),
        "conv2": rules.AlphaBeta(1.0, 0.0),
        "fc1": rules.Epsilon(0.1),
        "logits": rules.Epsilon(0.1),
    },
    "sequential_preset_b_flat": {
        "conv1": rules.Flat(),
        "conv2": rules.AlphaBeta(2.0, 1.0),
        "fc1": rules.Epsilon(0.1),
        "logits": rules.Epsilon(0.1),
    },
}
DEFAULTS = {
    "conv1/activation": rules.Pass(),
    "maxpool": rules.Route(),
    "relu2": rules.Pass(),
    "avgpool": rules.Norm(),
    "flatten": rules.Route(),
    "fc1/activation": rules.Pass(),
}


def test_every_registered_preset_has_a_documented_assignment():
    assert set(PRESETS) <= set(composite_names())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_assign_the_documented_rules(cnn_bias, name):
    assignment = tfxai.create_analyzer("lrp." + name, cnn_bias).assignment
    assert assignment == {**PRESETS[name], **DEFAULTS}


def test_preset_parameters_pass_through(cnn_bias):
    assignment = tfxai.create_analyzer(
        "lrp.epsilon_gamma_box", cnn_bias, low=0.0, high=2.0, gamma=0.5, epsilon=0.01
    ).assignment
    assert assignment["conv1"] == rules.ZBox(0.0, 2.0)
    assert assignment["conv2"] == rules.Gamma(0.5)
    assert assignment["fc1"] == assignment["logits"] == rules.Epsilon(0.01)
    plus = tfxai.create_analyzer("lrp.epsilon_plus", cnn_bias, epsilon=0.5).assignment
    assert plus["fc1"] == rules.Epsilon(0.5)


def test_gamma_box_on_a_dense_only_model(zoo):
    assignment = tfxai.create_analyzer("lrp.epsilon_gamma_box", zoo("mlp")).assignment
    assert assignment["d1"] == rules.ZBox(-1.0, 1.0)
    assert assignment["d2"] == assignment["logits"] == EPS


UNIFORM = {
    "lrp.z": rules.Z(),
    "lrp.z_IB": rules.Z(ignore_bias=True),
    "lrp.epsilon": rules.Epsilon(1e-7),
    "lrp.epsilon_IB": rules.Epsilon(1e-7, ignore_bias=True),
    "lrp.gamma": rules.Gamma(0.25),
    "lrp.alpha_1_beta_0": rules.AlphaBeta(1.0, 0.0),
    "lrp.alpha_2_beta_1": rules.AlphaBeta(2.0, 1.0),
    "lrp.alpha_2_beta_1_IB": rules.AlphaBeta(2.0, 1.0, ignore_bias=True),
    "lrp.z_plus": rules.ZPlus(),
    "lrp.w_square": rules.WSquare(),
    "lrp.flat": rules.Flat(),
    "lrp": rules.Epsilon(1e-7),
}


@pytest.mark.parametrize("name", sorted(UNIFORM))
def test_uniform_analyzers_give_every_weighted_layer_their_rule(cnn_bias, name):
    analyzer = tfxai.create_analyzer(name, cnn_bias)
    for layer in ("conv1", "conv2", "fc1", "logits"):
        assert analyzer.assignment[layer] == UNIFORM[name], layer
    assert analyzer.assignment["maxpool"] == rules.Route()


def test_uniform_analyzer_parameters(cnn_bias):
    assert tfxai.create_analyzer("lrp.epsilon", cnn_bias, epsilon=0.3).assignment["fc1"] == rules.Epsilon(0.3)
    assert tfxai.create_analyzer("lrp.gamma", cnn_bias, gamma=0.7).assignment["conv2"] == rules.Gamma(0.7)
    bounded = tfxai.create_analyzer("lrp.bounded", cnn_bias, low=0.0, high=4.0).assignment
    assert bounded["conv1"] == rules.ZBox(0.0, 4.0) and bounded["conv2"] == rules.Z()


def test_rules_override_by_class(cnn_bias):
    assignment = tfxai.create_analyzer(
        "lrp.epsilon_plus", cnn_bias, rules=[(L.Dense, rules.Epsilon(0.5)), (L.MaxPooling2D, rules.Norm())]
    ).assignment
    assert assignment["fc1"] == assignment["logits"] == rules.Epsilon(0.5)
    assert assignment["conv1"] == assignment["conv2"] == rules.ZPlus()
    assert assignment["maxpool"] == rules.Norm()


def test_rules_override_by_exact_name(cnn_bias):
    # conv1 has a fused ReLU: the name selects the convolution, not its split-off activation.
    assignment = tfxai.create_analyzer(
        "lrp.epsilon", cnn_bias, rules=[("conv1", rules.Gamma(0.1)), ("logits", rules.Z())]
    ).assignment
    assert assignment["conv1"] == rules.Gamma(0.1)
    assert assignment["conv1/activation"] == rules.Pass()
    assert assignment["logits"] == rules.Z()
    assert assignment["conv2"] == assignment["fc1"] == rules.Epsilon(1e-7)
    # The split-off activation can still be selected by its own node name.
    assignment = tfxai.create_analyzer(
        "lrp.epsilon", cnn_bias, rules=[("fc1/activation", rules.Route())]
    ).assignment
    assert assignment["fc1/activation"] == rules.Route() and assignment["fc1"] == rules.Epsilon(1e-7)


def test_rules_override_by_regex(cnn_bias):
    assignment = tfxai.create_analyzer(
        "lrp.epsilon", cnn_bias, rules=[(re.compile(r"conv\d"), rules.AlphaBeta(2.0, 1.0))]
    ).assignment
    assert assignment["conv1"] == assignment["conv2"] == rules.AlphaBeta(2.0, 1.0)
    assert assignment["fc1"] == rules.Epsilon(1e-7)
    # fullmatch: "conv" alone matches nothing
    entries = [(re.compile("conv"), rules.Z())]
    assignment = tfxai.create_analyzer("lrp.epsilon", cnn_bias, rules=entries).assignment
    assert rules.Z() not in assignment.values()


def test_rules_override_by_position(cnn_bias):
    assignment = tfxai.create_analyzer(
        "lrp.epsilon", cnn_bias, rules=[(tfxai.FIRST, rules.Flat()), (tfxai.LAST, rules.Epsilon(0.25))]
    ).assignment
    assert assignment["conv1"] == rules.Flat()
    assert assignment["logits"] == rules.Epsilon(0.25)
    assert assignment["conv2"] == assignment["fc1"] == rules.Epsilon(1e-7)


def test_first_match_wins_and_rules_beat_the_composite(cnn_bias):
    assignment = tfxai.create_analyzer(
        "lrp.epsilon_gamma_box",
        cnn_bias,
        rules=[("conv1", rules.Gamma(0.3)), (tfxai.FIRST, rules.Flat()), (L.Conv2D, rules.Z())],
    ).assignment
    assert assignment["conv1"] == rules.Gamma(0.3)
    assert assignment["conv2"] == rules.Z()


def test_input_layer_rule(cnn_bias):
    flat = tfxai.create_analyzer("lrp.epsilon", cnn_bias, input_layer_rule="Flat").assignment
    assert flat["conv1"] == rules.Flat() and flat["conv2"] == rules.Epsilon(1e-7)
    box = tfxai.create_analyzer("lrp.epsilon", cnn_bias, input_layer_rule=(0.0, 1.0)).assignment
    assert box["conv1"] == rules.ZBox(0.0, 1.0)
    overridden = tfxai.create_analyzer(
        "lrp.epsilon", cnn_bias, input_layer_rule="WSquare", rules=[("conv1", rules.Z())]
    ).assignment
    assert overridden["conv1"] == rules.Z()


def _weighted_with(assignment, rule):
    return {name for name, r in assignment.items() if r == rule}


def test_positions_in_branching_models(zoo):
    marker_first, marker_last = rules.Gamma(0.11), rules.Gamma(0.22)
    entries = [(tfxai.FIRST, marker_first), (tfxai.LAST, marker_last)]
    expected = {
        "multi_input": ({"da", "db"}, {"logits"}),
        "residual": ({"d1"}, {"logits"}),
        "nested_functional": ({"inner/i1"}, {"head/h2"}),
        "shared": ({"shared"}, {"logits"}),
    }
    for name, (first, last) in expected.items():
        assignment = tfxai.create_analyzer("lrp.epsilon", zoo(name), rules=entries).assignment
        assert _weighted_with(assignment, marker_first) == first, name
        assert _weighted_with(assignment, marker_last) == last, name


def test_dense_fed_by_the_raw_input_is_both_first_and_last(zoo):
    """In "concat" the input itself also reaches the last Dense: it is FIRST and LAST."""
    entries = [(tfxai.LAST, rules.Gamma(0.22)), (tfxai.FIRST, rules.Gamma(0.11))]
    assignment = tfxai.create_analyzer("lrp.epsilon", zoo("concat"), rules=entries).assignment
    assert assignment["logits"] == rules.Gamma(0.22)
    entries = entries[::-1]
    assignment = tfxai.create_analyzer("lrp.epsilon", zoo("concat"), rules=entries).assignment
    assert assignment["logits"] == rules.Gamma(0.11)


def test_names_of_nested_and_shared_nodes(zoo):
    nested = zoo("nested_functional")
    second_call = tfxai.create_analyzer("lrp.epsilon", nested, rules=[("inner@1/i1", rules.Z())]).assignment
    assert _weighted_with(second_call, rules.Z()) == {"inner@1/i1"}
    by_layer = tfxai.create_analyzer("lrp.epsilon", nested, rules=[("i1", rules.Z())]).assignment
    assert _weighted_with(by_layer, rules.Z()) == {"inner/i1", "inner@1/i1"}
    entries = [(re.compile(r"head/h\d"), rules.Z())]
    by_regex = tfxai.create_analyzer("lrp.epsilon", nested, rules=entries).assignment
    assert _weighted_with(by_regex, rules.Z()) == {"head/h1", "head/h2"}
    shared = tfxai.create_analyzer("lrp.epsilon", zoo("shared"), rules=[("shared", rules.Z())]).assignment
    assert _weighted_with(shared, rules.Z()) == {"shared", "shared@1"}


def test_generic_lrp_with_a_composite_object(cnn_bias):
    composite = tfxai.Composite([(L.Conv2D, rules.Gamma(0.5)), (L.Dense, rules.Epsilon(0.2))], "mine")
    assignment = tfxai.create_analyzer("lrp", cnn_bias, composite=composite).assignment
    assert assignment["conv1"] == assignment["conv2"] == rules.Gamma(0.5)
    assert assignment["fc1"] == rules.Epsilon(0.2)


@pytest.fixture
def user_composite():
    name = "test_user_composite"

    @tfxai.register_composite(name)
    def factory(epsilon: float = 0.3):
        return tfxai.Composite([(tfxai.LAST, rules.Z()), ((L.Conv2D, L.Dense), rules.Epsilon(epsilon))], name)

    yield name
    tfxai.composites._PRESETS.pop(name, None)
    tfxai.analyzers.factory._ANALYZERS.pop("lrp." + name, None)


def test_registered_composite_is_usable_by_name(cnn_bias, user_composite):
    assert user_composite in composite_names()
    assert "lrp." + user_composite in tfxai.analyzer_names()
    assignment = tfxai.create_analyzer("lrp." + user_composite, cnn_bias, epsilon=0.4).assignment
    assert assignment["logits"] == rules.Z()
    assert assignment["conv1"] == assignment["fc1"] == rules.Epsilon(0.4)
    direct = tfxai.analyzers.LRP(cnn_bias, user_composite).assignment
    assert direct["fc1"] == rules.Epsilon(0.3)


def test_register_rule_changes_a_builtin_default(cnn_bias):
    tfxai.register_rule(L.MaxPooling2D, rules.Norm())
    try:
        assert tfxai.create_analyzer("lrp.epsilon", cnn_bias).assignment["maxpool"] == rules.Norm()
    finally:
        tfxai.unregister_rule(L.MaxPooling2D)
    assert tfxai.create_analyzer("lrp.epsilon", cnn_bias).assignment["maxpool"] == rules.Route()


def test_dense_subclass_is_treated_as_dense():
    class MyDense(L.Dense):
        pass

    keras.utils.set_random_seed(8)
    x = keras.Input((N_FEATURES,))
    h = MyDense(5, activation="relu", use_bias=False, kernel_initializer="he_normal", name="mine")(x)
    model = keras.Model(x, L.Dense(3, use_bias=False, name="out")(h))
    analyzer = tfxai.create_analyzer("lrp.epsilon_plus", model, epsilon=1e-9)
    assert analyzer.assignment["mine"] == rules.Epsilon(1e-9)
    xs = make_inputs(model, 4, "positive", seed=9)
    relevance, delta = analyzer.analyze(xs, return_delta=True)
    explained = predict(model, xs).max(axis=1)
    np.testing.assert_allclose(delta, 0.0, atol=RTOL * np.abs(explained).max())


def test_composite_that_misses_weighted_layers_says_so(zoo):
    model = zoo("cnn", True)
    composite = tfxai.Composite([(keras.layers.Dense, rules.Epsilon())], name="dense_only")
    with pytest.raises(tfxai.UnsupportedLayerError) as excinfo:
        tfxai.create_analyzer("lrp", model, composite=composite)
    message = _message(excinfo)
    assert "Composite 'dense_only' gives no rule" in message
    conv_names = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert conv_names and all(repr(name) in message for name in conv_names)
    assert "register_rule" not in message


def test_more_targets_than_samples_is_rejected(mlp_analyzer, zoo):
    x = make_inputs(zoo("mlp", True), 4)
    with pytest.raises(tfxai.InputError, match="5 indices for 4 samples"):
        mlp_analyzer.analyze(x, neuron_selection=np.zeros(5, int))
