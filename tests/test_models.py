"""Model handling: graph walking, BatchNorm folding, softmax stripping, custom
layers, and the promise that the user's model is never modified."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import registry, reverse, rules
from tfxai.graph import build_view, count_inbound_nodes
from conftest import IMAGE_SHAPE, N_FEATURES, make_inputs, predict, required_params, summed

L = keras.layers
RTOL = 1e-5


def _randomize_batch_norm(layer, rng):
    """Give a BatchNormalization layer non-trivial gamma, beta and moving statistics."""
    values = []
    for weight in layer.weights:
        shape = tuple(weight.shape)
        name = weight.path.split("/")[-1]
        if name == "gamma":
            values.append(rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape))
        elif name == "beta":
            values.append(rng.normal(0.0, 0.5, shape))
        elif name == "moving_mean":
            values.append(rng.normal(0.0, 0.5, shape))
        elif name == "moving_variance":
            values.append(rng.uniform(0.2, 3.0, shape))
        else:  # pragma: no cover - a Keras change would show up here
            raise AssertionError(f"unexpected BatchNormalization weight {weight.path}")
    layer.set_weights([v.astype("float32") for v in values])


def _randomize_all_batch_norms(model, seed):
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, L.BatchNormalization):
            _randomize_batch_norm(layer, rng)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _logit_reference_ixg(model, x, index, logits_fn=None):
    """``x * d logit[index] / d x`` from the Keras model (or a logits function)."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = (logits_fn or (lambda t: model(t, training=False)))(xt)
        picked = tf.reduce_sum(y * tf.one_hot(index, y.shape[-1]))
    return x * tape.gradient(picked, xt).numpy()


# --------------------------------------------------------------------------- BatchNorm folding


@pytest.fixture(scope="module")
def bn_model():
    keras.utils.set_random_seed(21)
    x = keras.Input(IMAGE_SHAPE, name="img")
    h = L.BatchNormalization(name="bn_input")(x)  # standalone: right after the input
    h = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv1")(h)
    h = L.BatchNormalization(name="bn_conv1")(h)  # folds into conv1 (no bias)
    h = L.ReLU(name="relu1")(h)
    h = L.BatchNormalization(name="bn_after_relu")(h)  # standalone: after a ReLU
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="conv2")(h)
    h = L.BatchNormalization(name="bn_after_fused")(h)  # standalone: conv2's fused ReLU is in between
    h = L.Conv2D(3, 3, padding="same", name="conv3")(h)
    h = L.BatchNormalization(axis=1, name="bn_rows")(h)  # normalises rows, not channels: not foldable
    h = L.MaxPooling2D(2, name="pool")(h)
    h = L.Flatten(name="flatten")(h)
    h = L.Dense(6, name="fc1")(h)
    h = L.BatchNormalization(name="bn_fc1")(h)  # folds into fc1 (with bias)
    h = L.Activation("relu", name="act_fc1")(h)
    h = L.Dense(5, name="fc2")(h)
    h = L.BatchNormalization(scale=False, name="bn_fc2_noscale")(h)  # folds; gamma is None
    h = L.ReLU(name="relu_fc2")(h)
    y = L.Dense(3, name="logits")(h)
    model = keras.Model(x, y, name="bn_model")
    _randomize_all_batch_norms(model, seed=5)
    return model


FOLDED = {"conv1": "bn_conv1", "fc1": "bn_fc1", "fc2": "bn_fc2_noscale"}
STANDALONE = {"bn_input", "bn_after_relu", "bn_after_fused", "bn_rows"}


def test_batch_norm_fixture_is_not_the_identity(bn_model):
    """Guard: with default statistics folding bugs could hide."""
    layer = bn_model.get_layer("bn_conv1")
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
    assert not np.allclose(layer(x, training=False), x, atol=1e-2)


def test_canonized_forward_replay_equals_the_model(bn_model):
    x = make_inputs(bn_model, 5, "both", seed=1) * 2.0
    view = tfxai.create_analyzer("lrp.epsilon", bn_model).view
    values, states = reverse.forward(view, [tf.constant(x)])
    want = predict(bn_model, x)
    got = values[view.outputs[0]].numpy()
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * np.abs(want).max())
    # Linear nodes keep their (folded) weights in the forward state.
    assert states["conv1+bn_conv1"].params is not None


def test_batch_norms_are_folded_or_made_affine(bn_model):
    view = tfxai.create_analyzer("lrp.epsilon", bn_model).view
    by_layer = {}
    for node in view.nodes:
        by_layer.setdefault(node.layer.name, []).append(node)

    for linear_name, norm_name in FOLDED.items():
        # The BN node is gone; the linear node carries it and produces the BN's output.
        assert norm_name not in by_layer, f"{norm_name} should have been folded into {linear_name}"
        (node,) = by_layer[linear_name]
        assert node.name == f"{linear_name}+{norm_name}"
        assert node.origin == (linear_name, norm_name)
        assert node.rewrite == "fold_affine"
        assert node.params is not None
        assert isinstance(node.layer, (L.Conv2D, L.Dense))

    for norm_name in STANDALONE:
        (node,) = by_layer[norm_name]
        assert isinstance(node.layer, L.BatchNormalization)
        assert node.params is not None, f"{norm_name} should be an affine linear node"

    batch_norm_nodes = {n.layer.name for n in view.nodes if isinstance(n.layer, L.BatchNormalization)}
    assert batch_norm_nodes == STANDALONE


def test_folded_weights_reproduce_conv_then_batch_norm(bn_model):
    """The folded (kernel, bias) of conv1 compute exactly BN(conv1(a))."""
    view = tfxai.create_analyzer("lrp.epsilon", bn_model).view
    node = next(n for n in view.nodes if n.name == "conv1+bn_conv1")
    kernel, bias = node.params()
    assert bias is not None  # the BN shift becomes the bias of a bias-free conv
    a = np.random.default_rng(3).normal(size=(2,) + IMAGE_SHAPE).astype("float32")
    want = bn_model.get_layer("bn_conv1")(bn_model.get_layer("conv1")(a), training=False)
    got = node.forward([tf.constant(a)], (kernel, bias))[0]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * np.abs(want).max())


def test_lrp_z_and_gradient_on_batch_norm_model_match_the_keras_model(bn_model):
    """Folding keeps the function, so LRP-0 still equals x * grad of the original model.

    The BatchNorms that cannot be folded pass relevance through by default; with LRP-0 on them
    too (the documented option), LRP-0 is x * grad.
    """
    x = make_inputs(bn_model, 4, "both", seed=2)
    index = predict(bn_model, x).argmax(axis=1)
    reference = _logit_reference_ixg(bn_model, x, index)
    scale = np.abs(reference).max()
    lrp = tfxai.create_analyzer("lrp.z", bn_model, rules=[(registry.AFFINE, rules.Z())]).analyze(x)
    ixg = tfxai.create_analyzer("input_t_gradient", bn_model).analyze(x)
    np.testing.assert_allclose(ixg, reference, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(lrp, reference, rtol=1e-4, atol=1e-5 * scale)


def test_batch_norm_in_training_mode_is_not_used(bn_model):
    """Analysis runs BatchNorm in inference mode: results do not depend on the batch."""
    x = make_inputs(bn_model, 6, "both", seed=4)
    analyzer = tfxai.create_analyzer("lrp.epsilon", bn_model)
    whole = analyzer.analyze(x)
    halves = np.concatenate([analyzer.analyze(x[:3]), analyzer.analyze(x[3:])])
    np.testing.assert_allclose(whole, halves, rtol=RTOL, atol=RTOL * np.abs(whole).max())


# --------------------------------------------------------------------------- model untouched


@pytest.fixture(scope="module")
def nested_bn_softmax_model():
    keras.utils.set_random_seed(33)
    inner_in = keras.Input(IMAGE_SHAPE, name="inner_in")
    h = L.Conv2D(4, 3, padding="same", name="c1")(inner_in)
    h = L.BatchNormalization(name="bn1")(h)
    h = L.ReLU(name="r1")(h)
    h = L.MaxPooling2D(2, name="mp")(h)
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="c2")(h)
    backbone = keras.Model(inner_in, h, name="backbone")

    x = keras.Input(IMAGE_SHAPE, name="img")
    h = backbone(x)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    h = L.BatchNormalization(name="bn_gap")(h)
    h = L.Dense(8, activation="relu", name="fc")(h)
    h = L.Dropout(0.3, name="drop")(h)
    y = L.Dense(3, activation="softmax", name="probs")(h)
    model = keras.Model(x, y, name="nested_bn_softmax")
    _randomize_all_batch_norms(model, seed=6)
    return model


def _snapshot(model):
    return {
        "inbound": count_inbound_nodes(model),
        "weights": [np.array(w) for w in model.get_weights()],
        "variables": [id(v) for v in model.weights],
        "layers": [id(layer) for layer in _all_layers(model)],
        "trainable": [layer.trainable for layer in _all_layers(model)],
        "operations": [id(op) for op in model.operations],
    }


def _assert_same_snapshot(before, after, context):
    assert after["inbound"] == before["inbound"], f"{context} added Keras nodes to the model"
    assert after["variables"] == before["variables"], f"{context} changed the model's variables"
    assert after["layers"] == before["layers"], f"{context} changed the model's layers"
    assert after["trainable"] == before["trainable"], f"{context} changed trainable flags"
    assert after["operations"] == before["operations"], f"{context} changed the model's operations"
    assert len(after["weights"]) == len(before["weights"])
    for b, a in zip(before["weights"], after["weights"]):
        np.testing.assert_array_equal(a, b, err_msg=f"{context} changed a weight")


def test_inbound_node_counter_detects_a_mutation():
    """Guard for the next test: calling a layer on a KerasTensor is visible."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((N_FEATURES,))
    layer = L.Dense(2, name="probe")
    model = keras.Model(inp, layer(inp))
    before = count_inbound_nodes(model)
    layer(keras.Input((N_FEATURES,)))
    assert count_inbound_nodes(model) != before


@pytest.mark.parametrize("name", tfxai.analyzer_names())
@pytest.mark.slow
def test_model_is_untouched_by_every_analyzer(nested_bn_softmax_model, name):
    model = nested_bn_softmax_model
    x = make_inputs(model, 3, "positive", seed=7)
    y_before = predict(model, x)
    before = _snapshot(model)

    analyzer = tfxai.create_analyzer(name, model, **required_params(name, model))
    _assert_same_snapshot(before, _snapshot(model), f"create_analyzer({name!r})")
    relevance = analyzer.analyze(x)
    analyzer.analyze(x, neuron_selection="all")
    analyzer.analyze(x, neuron_selection=[0, 1, 2])
    _assert_same_snapshot(before, _snapshot(model), f"{name!r}.analyze")

    assert relevance.shape == x.shape
    assert np.all(np.isfinite(relevance))
    np.testing.assert_array_equal(predict(model, x), y_before)


# --------------------------------------------------------------------------- softmax stripping


def _softmax_models(kind):
    """(model ending in softmax, logits model with the same weights)."""
    keras.utils.set_random_seed(44)
    x = keras.Input((N_FEATURES,), name="x")
    h = L.Dense(8, activation="relu", use_bias=False, kernel_initializer="he_normal", name="d1")(x)
    if kind == "dense_softmax":
        y = L.Dense(3, activation="softmax", use_bias=False, name="out")(h)
    elif kind == "activation_layer":
        y = L.Activation("softmax", name="softmax")(L.Dense(3, use_bias=False, name="out")(h))
    else:
        y = L.Softmax(name="softmax")(L.Dense(3, use_bias=False, name="out")(h))
    model = keras.Model(x, y, name=f"softmax_{kind}")

    x2 = keras.Input((N_FEATURES,))
    h2 = L.Dense(8, activation="relu", use_bias=False)(x2)
    logits = keras.Model(x2, L.Dense(3, use_bias=False)(h2))
    logits.set_weights(model.get_weights())
    return model, logits


@pytest.mark.parametrize("kind", ["dense_softmax", "activation_layer", "softmax_layer"])
def test_softmax_is_stripped_and_the_logit_explained(kind):
    model, logits_model = _softmax_models(kind)
    x = make_inputs(model, 6, "positive", seed=8) * 3.0
    probs, logits = predict(model, x), predict(logits_model, x)
    np.testing.assert_allclose(probs, tf.nn.softmax(logits).numpy(), rtol=1e-5, atol=1e-6)  # guard

    analyzer = tfxai.create_analyzer("lrp.epsilon", model, epsilon=1e-9)
    relevance, delta = analyzer.analyze(x, return_delta=True)
    index = logits.argmax(axis=1)
    explained_logit = logits[np.arange(6), index]
    explained_prob = probs[np.arange(6), index]
    scale = np.abs(explained_logit).max()
    total = summed(relevance)
    np.testing.assert_allclose(total, explained_logit, rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(delta, 0.0, atol=RTOL * scale)
    assert np.abs(total - explained_prob).max() > 0.05  # explaining the probability would fail here

    # The analyzer still reports the model's own predictions (probabilities).
    _, explained, predictions = analyzer.compiled("max_activation")(tf.constant(x))
    np.testing.assert_allclose(predictions[0].numpy(), probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(explained.numpy(), explained_logit, rtol=1e-5, atol=1e-6)

    # Gradients are those of the logit too.
    ixg = tfxai.create_analyzer("input_t_gradient", model).analyze(x)
    reference = _logit_reference_ixg(logits_model, x, index)
    np.testing.assert_allclose(ixg, reference, rtol=RTOL, atol=RTOL * np.abs(reference).max())


# --------------------------------------------------------------------------- unsupported layers


class Doubler(L.Layer):
    """A custom element-wise layer tfxai has no rule for."""

    def call(self, inputs):
        return tf.math.scalar_mul(2.0, inputs)  # a raw TF op: tfxai cannot capture it


def _custom_layers_model(with_lstm):
    keras.utils.set_random_seed(55)
    if with_lstm:
        x = keras.Input((5, 3), name="seq")
        h = L.RNN(L.LSTMCell(N_FEATURES), name="lstm")(x)  # a generic RNN around a cell: no rule
    else:
        x = keras.Input((N_FEATURES,), name="x")
        h = x
    h = L.Dense(N_FEATURES, activation="relu", use_bias=False, kernel_initializer="he_normal", name="d1")(h)
    h = Doubler(name="double")(h)
    h = L.Lambda(lambda t: 0.5 * t, name="halve")(h)
    y = L.Dense(3, use_bias=False, name="logits")(h)
    return keras.Model(x, y, name="custom")


@pytest.fixture
def clean_registry():
    yield
    tfxai.unregister_rule(Doubler)
    tfxai.unregister_rule(L.Lambda)


def test_unsupported_layers_are_all_reported_at_once(clean_registry):
    model = _custom_layers_model(with_lstm=True)
    with pytest.raises(tfxai.UnsupportedLayerError) as info:
        tfxai.create_analyzer("lrp.epsilon", model)
    message = str(info.value)
    for node_name, type_name in [("lstm", "RNN"), ("double", "Doubler"), ("halve", "Lambda")]:
        assert f"'{node_name}' ({type_name})" in message
    assert "3 node(s)" in message
    assert "tfxai.register_rule(" in message
    assert sorted(info.value.nodes) == [("double", "Doubler"), ("halve", "Lambda"), ("lstm", "RNN")]
    assert isinstance(info.value, tfxai.ModelError)

    # Registering two of them leaves exactly the third.
    tfxai.register_rule(Doubler, tfxai.rules.Pass())
    tfxai.register_rule(L.Lambda, tfxai.rules.Pass())
    with pytest.raises(tfxai.UnsupportedLayerError) as info:
        tfxai.create_analyzer("lrp.epsilon", model)
    assert info.value.nodes == [("lstm", "RNN")]
    assert "double" not in str(info.value) and "halve" not in str(info.value)


def test_register_rule_makes_custom_layers_explainable(clean_registry):
    model = _custom_layers_model(with_lstm=False)
    x = make_inputs(model, 4, "both", seed=9)

    tfxai.register_rule(Doubler, tfxai.rules.Pass())
    with pytest.raises(tfxai.UnsupportedLayerError) as info:
        tfxai.create_analyzer("lrp.z", model)
    assert info.value.nodes == [("halve", "Lambda")]

    tfxai.register_rule(L.Lambda, tfxai.rules.Pass())
    analyzer = tfxai.create_analyzer("lrp.z", model)
    assert analyzer.assignment["double"] == tfxai.rules.Pass()
    relevance, delta = analyzer.analyze(x, return_delta=True)
    explained = predict(model, x).max(axis=1)
    # 2x then 0.5x: the model is a bias-free ReLU net, so LRP-0 is conservative.
    np.testing.assert_allclose(summed(relevance), explained, rtol=RTOL, atol=RTOL * np.abs(explained).max())

    tfxai.unregister_rule(Doubler)
    with pytest.raises(tfxai.UnsupportedLayerError):
        tfxai.create_analyzer("lrp.z", model)


def test_rules_argument_covers_unsupported_nodes_for_one_analyzer():
    """The per-analyzer fix the error message suggests works as written."""
    model = _custom_layers_model(with_lstm=False)
    analyzer = tfxai.create_analyzer(
        "lrp.epsilon", model, rules=[("double", tfxai.rules.Pass()), ("halve", tfxai.rules.Pass())]
    )
    relevance = analyzer.analyze(make_inputs(model, 2, "both"))
    assert relevance.shape == (2, N_FEATURES) and np.all(np.isfinite(relevance))
    # Nothing leaked into the global registry.
    with pytest.raises(tfxai.UnsupportedLayerError):
        tfxai.create_analyzer("lrp.epsilon", model)


def test_register_rule_validates_its_arguments():
    with pytest.raises(TypeError, match="layer class"):
        tfxai.register_rule("Doubler", tfxai.rules.Pass())
    with pytest.raises(TypeError, match="Rule instance"):
        tfxai.register_rule(Doubler, tfxai.rules.Pass)
    tfxai.unregister_rule(Doubler)  # no-op when absent


def test_gradient_analyzers_need_no_rules():
    model = _custom_layers_model(with_lstm=True)
    x = make_inputs(model, 2, "both")
    gradient = tfxai.create_analyzer("gradient", model).analyze(x)
    assert gradient.shape == x.shape and np.all(np.isfinite(gradient))


# --------------------------------------------------------------------------- graph walking


def test_nested_and_shared_nodes_are_named_by_path_and_call(zoo):
    view = build_view(zoo("nested_functional"))
    names = [node.name for node in view.nodes]
    for expected in ["inner/i1", "inner/i2", "inner@1/i1", "inner@1/i2", "mid", "head/h1", "head/h2"]:
        assert expected in names
    assert len(names) == len(set(names)), "node names must be unique"

    shared = build_view(zoo("shared"))
    shared_nodes = [node for node in shared.nodes if node.layer.name == "shared"]
    assert [node.name for node in shared_nodes] == ["shared", "shared@1"]
    assert shared_nodes[0].layer is shared_nodes[1].layer


def test_layer_calls_are_numbered_per_model():
    """A layer another model called first keeps its plain name in a model that calls it once."""
    head = L.Dense(2, name="head")
    first = keras.Sequential([keras.Input((3,)), head], name="first")
    second_input = keras.Input((3,))
    second = keras.Model(second_input, head(L.Dense(3, name="pre")(second_input)), name="second")
    assert len(head._inbound_nodes) == 2  # the call in first, then the one in second
    assert [node.name for node in build_view(second).nodes] == ["pre", "head"]
    assert [node.name for node in build_view(first).nodes] == ["head"]


def test_walked_nodes_record_where_they_come_from(zoo):
    view = tfxai.create_analyzer("lrp.epsilon", zoo("mlp")).view
    by_name = {node.name: node for node in view.nodes}
    assert by_name["d1"].origin == ("d1",) and by_name["d1"].rewrite == "linearize"
    assert by_name["d1/activation"].origin == ("d1",) and by_name["d1/activation"].rewrite == "split_activation"
    assert all(node.is_original for node in build_view(zoo("mlp")).nodes)


def test_raw_operations_this_keras_lacks_are_left_out():
    from tfxai.graph import raw_op_classes

    assert raw_op_classes("NoSuchOperationInAnyKeras", "Add") == (keras.src.ops.numpy.Add,)


def test_submodel_sharing_layers_with_a_larger_model(zoo):
    """Layers also used by another model: only this model's nodes are walked."""
    big = zoo("functional", use_bias=False)
    sub = keras.Model(big.input, big.get_layer("d2").output, name="sub")
    x = make_inputs(sub, 4, "positive", seed=12)
    analyzer = tfxai.create_analyzer("lrp.z", sub)
    assert [n.layer.name for n in analyzer.view.nodes if n.params is not None] == ["d1", "d2"]
    relevance = analyzer.analyze(x)
    explained = predict(sub, x).max(axis=1)
    np.testing.assert_allclose(summed(relevance), explained, rtol=RTOL, atol=RTOL * np.abs(explained).max())


def _conservation(model, x, **options):
    """LRP-0 relevance sums and the explained logits of a bias-free ReLU model."""
    relevance, delta = tfxai.create_analyzer("lrp.z", model, **options).analyze(x, return_delta=True)
    y = predict(model, x)
    y = y[options.get("output_index", 0)] if isinstance(y, list) else y
    explained = y.reshape(len(y), -1).max(axis=1)
    return relevance, summed(relevance), explained, delta


def test_same_tensor_twice_in_one_node():
    keras.utils.set_random_seed(13)
    x = keras.Input((N_FEATURES,))
    a = L.Dense(5, activation="relu", use_bias=False, kernel_initializer="he_normal")(x)
    s = a + a
    y = L.Dense(3, use_bias=False)(keras.ops.concatenate([s, a], axis=-1))
    model = keras.Model(x, y)
    x_data = make_inputs(model, 4, "both", seed=13)
    _, total, explained, delta = _conservation(model, x_data)
    np.testing.assert_allclose(total, explained, rtol=RTOL, atol=RTOL * np.abs(explained).max())


def test_output_that_feeds_another_layer():
    keras.utils.set_random_seed(14)
    x = keras.Input((N_FEATURES,))
    h = L.Dense(6, activation="relu", use_bias=False, kernel_initializer="he_normal")(x)
    y0 = L.Dense(4, use_bias=False, name="y0")(h)
    y1 = L.Dense(3, use_bias=False, name="y1")(L.ReLU()(y0))
    model = keras.Model(x, [y0, y1])
    x_data = make_inputs(model, 5, "positive", seed=14)
    for index in (0, 1):
        _, total, explained, _ = _conservation(model, x_data, output_index=index)
        np.testing.assert_allclose(total, explained, rtol=RTOL, atol=RTOL * np.abs(explained).max())


def test_input_unrelated_to_the_explained_output_gets_zero_relevance():
    keras.utils.set_random_seed(15)
    xa = keras.Input((N_FEATURES,), name="xa")
    xb = keras.Input((4,), name="xb")
    ya = L.Dense(3, use_bias=False, name="ya")(xa)
    yb = L.Dense(2, use_bias=False, name="yb")(L.Dense(5, activation="relu", use_bias=False)(xb))
    model = keras.Model([xa, xb], [ya, yb])
    x_data = make_inputs(model, 3, "both", seed=15)
    (ra, rb), total, explained, _ = _conservation(model, x_data, output_index=1)
    assert ra.shape == x_data[0].shape and rb.shape == x_data[1].shape
    np.testing.assert_array_equal(ra, 0.0)
    np.testing.assert_allclose(total, explained, rtol=RTOL, atol=RTOL * np.abs(explained).max())


def test_sequential_built_with_build_and_sequential_in_sequential():
    keras.utils.set_random_seed(16)
    built = keras.Sequential([L.Dense(5, activation="relu", use_bias=False), L.Dense(3, use_bias=False)])
    built.build((None, N_FEATURES))
    block = keras.Sequential(
        [keras.Input((N_FEATURES,)), L.Dense(5, activation="relu", use_bias=False, name="blk")], name="block"
    )
    outer = keras.Sequential([keras.Input((N_FEATURES,)), block, L.Dense(3, use_bias=False, name="top")])
    for model in (built, outer):
        x_data = make_inputs(model, 4, "positive", seed=16)
        _, total, explained, _ = _conservation(model, x_data)
        np.testing.assert_allclose(total, explained, rtol=RTOL, atol=RTOL * np.abs(explained).max())
    assert "block/blk" in [n.name for n in tfxai.create_analyzer("lrp.z", outer).view.nodes]
