"""The backward walk holds what a gradient holds, and computes the same relevance.

:mod:`tfxai.rectified` lets a ReLU's output stand in for the pre-activation
``z`` it rectifies, and recomputes one input of a residual sum, so that ``z``
is freed after the forward pass; :func:`tfxai.reverse.gated_state` makes each
rule wait for its relevance. These tests check where the stand-ins apply (and
where they must not: a rule downstream that gives relevance to zero inputs, a
capped ReLU, a ``z`` read twice, relevance starting at ``z``), that the
declared ``ratio_form`` of every rule holds on concrete tensors, and that
every LRP preset gives the same maps with and without them.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import canonizers, graph, rectified, reverse, rules

L = keras.layers


def view_and_assignment(model, method="lrp.epsilon", **kwargs):
    analyzer = tfxai.create_analyzer(method, model, **kwargs)
    return analyzer, analyzer.view, analyzer.assignment


def stand_in_names(model, method="lrp.epsilon", **kwargs):
    _, view, assignment = view_and_assignment(model, method, **kwargs)
    return rectified.stand_ins(view, assignment, frozenset(view.explained))


def chain_model():
    inputs = keras.Input((8, 8, 2))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    x = L.Dropout(0.3, name="drop")(x)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Conv2D(4, 3, padding="same", name="c2")(x)
    x = L.ReLU(name="r2")(x)
    x = L.Flatten(name="flat")(x)
    x = L.Dense(6, activation="relu", name="d1")(x)
    return keras.Model(inputs, L.Dense(3, name="out")(x))


def test_stand_ins_follow_relus_whose_relevance_is_zero_where_they_are():
    assert stand_in_names(chain_model()) == {"c1": "c1/activation", "c2": "r2", "d1": "d1/activation"}


def test_no_stand_in_where_a_rule_downstream_gives_relevance_to_zero_inputs():
    # Flat on c2 spreads relevance over c1's ReLU outputs whatever their value, zeros included
    assert stand_in_names(chain_model(), rules=[("c2", rules.Flat())]) == {"d1": "d1/activation"}
    # ... and through the max pooling and dropout that lie between
    assert "c1" not in stand_in_names(chain_model(), rules=[("c2", rules.ZBox(-1.0, 1.0))])


def test_no_stand_in_for_capped_or_leaky_relus_or_a_z_read_twice():
    inputs = keras.Input((6,))
    capped = L.ReLU(max_value=6.0, name="capped")(L.Dense(5, name="d_capped")(inputs))
    relu6 = L.Dense(5, activation="relu6", name="d_relu6")(inputs)
    leaky = L.LeakyReLU(negative_slope=0.1, name="leaky")(L.Dense(5, name="d_leaky")(inputs))
    z = L.Dense(5, name="d_twice")(inputs)
    twice = L.Add(name="add_twice")([L.ReLU(name="r_twice")(z), z])
    thresholded = L.ReLU(threshold=0.5, name="thr")(L.Dense(5, name="d_thr")(inputs))
    merged = L.Concatenate(name="cat")([capped, relu6, leaky, twice, thresholded])
    model = keras.Model(inputs, L.Dense(2, name="out")(merged))
    # where the output is non-zero, a thresholded ReLU's output equals its input: it qualifies
    assert stand_in_names(model) == {"d_thr": "thr"}


def test_no_stand_in_where_relevance_starts_at_the_relu():
    inputs = keras.Input((6,))
    model = keras.Model(inputs, L.Dense(3, activation="relu", name="d")(inputs))
    assert stand_in_names(model) == {}


def test_no_stand_in_for_rules_that_are_not_of_ratio_form():
    assert stand_in_names(chain_model(), "deeplift") == {}
    assert stand_in_names(chain_model(), "guided_backprop") == {}


class SquaredEpsilon(rules.Epsilon):
    """A subclass that replaces ``backward``: it may use ``z`` for anything, so it loses ``ratio_form``."""

    def backward(self, node, state, relevance):
        return [r * 0 + tf.reduce_sum(state.outputs[0]) for r in super().backward(node, state, relevance)]


def test_a_subclass_replacing_backward_loses_ratio_form():
    assert rectified.has_ratio_form(rules.Epsilon()) and not rectified.has_ratio_form(SquaredEpsilon())
    # c2 loses its stand-in, and so does c1: its ReLU's relevance now comes through c2's rule
    assert stand_in_names(chain_model(), rules=[("c2", SquaredEpsilon())]) == {"d1": "d1/activation"}


RATIO_FORM_RULES = {
    "Z": rules.Z(),
    "Epsilon": rules.Epsilon(0.01),
    "Gamma": rules.Gamma(0.25),
    "AlphaBeta_2_1": rules.AlphaBeta(2.0, 1.0),
    "ZPlus": rules.ZPlus(),
    "GeneralizedGamma": rules.GeneralizedGamma(0.25),
}


def dense_state(nonnegative: bool, seed: int = 3):
    """A Dense node's state, half of whose inputs are exactly zero."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((8,))
    layer = L.Dense(5, name="d")
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([rng.normal(size=(8, 5)).astype("float32"), rng.normal(size=5).astype("float32")])
    x = rng.normal(size=(4, 8)).astype("float32")
    x[:, ::2] = 0.0
    if nonnegative:
        x = np.abs(x)
    view = canonizers.canonize(graph.build_view(model))
    _, states = reverse.forward(view, [tf.constant(x)])
    node = next(n for n in view.nodes if n.name == "d")
    state = dataclasses.replace(states["d"], nonnegative=(nonnegative,))
    return node, state, x, rng


@pytest.mark.parametrize("nonnegative", [False, True], ids=["signed", "nonnegative"])
@pytest.mark.parametrize("name", list(RATIO_FORM_RULES))
def test_declared_ratio_form_holds(name, nonnegative):
    """Zero relevance where the input is zero, and the output's value matters only where relevance flows."""
    rule = RATIO_FORM_RULES[name]
    assert rectified.has_ratio_form(rule)
    node, state, x, rng = dense_state(nonnegative)
    R = rng.normal(size=(4, 5)).astype("float32")
    R[:, 1] = 0.0
    (got,) = rule.backward(node, state, [tf.constant(R)])
    got = np.asarray(got)
    assert np.all(got[:, ::2] == 0.0)
    assert np.abs(got[:, 1::2]).min() > 0
    z = np.asarray(state.outputs[0]).copy()
    z[:, 1] = rng.uniform(-3.0, 3.0, size=4)  # where R is zero, z may be anything: a ReLU's 0, say
    (moved,) = rule.backward(node, dataclasses.replace(state, outputs=[tf.constant(z)]), [tf.constant(R)])
    np.testing.assert_array_equal(np.asarray(moved), got)


@pytest.mark.parametrize("rule", [rules.ZBox(-1.0, 1.0), rules.Flat(), rules.WSquare(), rules.Pass(), rules.Route()])
def test_rules_that_give_relevance_to_zero_inputs_do_not_claim_ratio_form(rule):
    assert not rectified.has_ratio_form(rule)
    if isinstance(rule, (rules.ZBox, rules.WSquare)):
        node, state, _, _ = dense_state(False)
        (got,) = rule.backward(node, state, [tf.ones((4, 5))])
        assert np.abs(np.asarray(got)[:, ::2]).min() > 0  # the zero inputs get relevance


def conv_bn_relu(x, filters, name, strides=1, relu=True):
    x = L.Conv2D(filters, 3, strides=strides, padding="same", name=f"{name}_conv")(x)
    x = L.BatchNormalization(name=f"{name}_bn")(x)
    return L.ReLU(name=f"{name}_relu")(x) if relu else x


def residual_model(seed=0):
    """A small ResNet: BatchNorm folded into convolutions, identity and projection blocks."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, 3))
    x = conv_bn_relu(inputs, 8, "stem")
    y = conv_bn_relu(conv_bn_relu(x, 8, "b1a"), 8, "b1b", relu=False)
    x = L.ReLU(name="b1_out")(L.Add(name="b1_add")([x, y]))
    shortcut = conv_bn_relu(x, 12, "b2s", strides=2, relu=False)
    y = conv_bn_relu(conv_bn_relu(x, 12, "b2a", strides=2), 12, "b2b", relu=False)
    x = L.ReLU(name="b2_out")(L.Add(name="b2_add")([shortcut, y]))
    x = L.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, L.Dense(5, name="logits")(x))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            shapes = [w.shape for w in layer.get_weights()]
            gamma, beta, mean, var = (rng.uniform(0.5, 1.5, s) for s in shapes)
            layer.set_weights([gamma, rng.normal(size=shapes[1]) * 0.3, rng.normal(size=shapes[2]) * 0.3, var])
    return model


def test_residual_sums_recompute_the_block_output_they_alone_read():
    _, view, assignment = view_and_assignment(residual_model())
    start = frozenset(view.explained)
    stand_ins = rectified.stand_ins(view, assignment, start)
    assert stand_ins["b1_add"] == "b1_out" and stand_ins["b2_add"] == "b2_out"
    recomputed = rectified.recomputed_inputs(view, assignment, start, stand_ins)
    # the identity block's shortcut is the stem's ReLU (held anyway); the projection block takes its last input
    assert recomputed == {"b1_add": (1, "b1b_conv+b1b_bn"), "b2_add": (1, "b2b_conv+b2b_bn")}


def without_memory_paths(monkeypatch):
    monkeypatch.setattr(rectified, "stand_ins", lambda *args: {})
    monkeypatch.setattr(rectified, "recomputed_inputs", lambda *args: {})
    monkeypatch.setattr(reverse, "gated_state", lambda state, relevance, params=None: state)


PRESETS = [
    "lrp.z",
    "lrp.epsilon",
    "lrp.epsilon_plus",
    "lrp.epsilon_gamma_box",
    "lrp.alpha_2_beta_1",
    "lrp.epsilon_alpha2_beta1_flat",
    "lrp.sequential_preset_b",
]


@pytest.mark.parametrize("method", PRESETS)
@pytest.mark.parametrize("make_model", [chain_model, residual_model], ids=["chain", "residual"])
def test_presets_give_the_same_maps_with_and_without_the_memory_paths(method, make_model, monkeypatch):
    model = make_model()
    x = np.random.default_rng(5).uniform(-1, 1, (3,) + tuple(model.input_shape[1:])).astype("float32")
    kwargs = {"low": -1.0, "high": 1.0} if method.endswith("box") else {}
    fast = tfxai.create_analyzer(method, model, **kwargs).analyze(x)
    with monkeypatch.context() as patch:
        without_memory_paths(patch)
        plain = tfxai.create_analyzer(method, model, **kwargs).analyze(x)
    assert fast.shape == plain.shape == x.shape
    scale = np.abs(plain).sum(axis=tuple(range(1, plain.ndim)), keepdims=True)
    if make_model is chain_model:  # stand-ins only: r == z wherever relevance flows, to the last bit
        np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-6 * scale.max())
    else:  # the recomputed residual input rounds like the sum it comes from
        assert np.abs(fast - plain).max() <= 1e-5 * scale.min()


def test_lrp_z_on_the_residual_model_stays_input_times_gradient():
    """Bias-free copy: LRP-0 on a ReLU network is input x gradient, with the residual input recomputed."""
    model = residual_model()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    x = np.random.default_rng(9).uniform(-1, 1, (2, 12, 12, 3)).astype("float32")
    for layer in copy.layers:
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma, np.zeros_like(beta), np.zeros_like(mean), var])
        elif hasattr(layer, "bias") and layer.bias is not None:
            layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    relevance = tfxai.create_analyzer("lrp.z", copy).analyze(x)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logits = copy(xt, training=False)
        top = tf.reduce_max(logits, axis=1)
    expected = x * tape.gradient(top, xt).numpy()
    np.testing.assert_allclose(relevance, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_gated_state_waits_for_relevance_and_keeps_values():
    node, state, x, _ = dense_state(True)
    traced = {}

    @tf.function
    def gated(relevance):
        s = reverse.gated_state(state, [relevance], node.params)
        traced["controls"] = [op.name for op in s.inputs[0].op.control_inputs]
        traced["relevance"] = relevance.op.name
        return s.inputs[0], s.outputs[0], s.params[0]

    a, z, kernel = gated(tf.ones((4, 5)))
    assert traced["controls"] == [traced["relevance"]]
    np.testing.assert_array_equal(a.numpy(), x)
    np.testing.assert_array_equal(z.numpy(), np.asarray(state.outputs[0]))
    np.testing.assert_array_equal(kernel.numpy(), np.asarray(state.params[0]))
    assert reverse.gated_state(state, [None]) is state  # no relevance yet: nothing to wait for
