"""Guided backprop and deconvnet against a hand-written NumPy backward pass.

The MLP below uses every form a ReLU takes in a Keras graph: a fused
``activation="relu"``, an ``Activation("relu")`` layer, a ``ReLU`` layer and the
raw operation ``keras.ops.relu``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai.analyzers.guided import is_relu
from tfxai import rules
from conftest import make_inputs, predict

L = keras.layers


@pytest.fixture(scope="module")
def relu_forms_mlp():
    keras.utils.set_random_seed(5)
    init = {
        "kernel_initializer": "he_normal",
        "bias_initializer": keras.initializers.RandomNormal(stddev=0.3),
    }
    x = keras.Input((6,), name="x")
    h = L.Dense(8, activation="relu", name="fused", **init)(x)
    h = L.Activation("relu", name="act")(L.Dense(7, name="d2", **init)(h))
    h = L.ReLU(name="relu_layer")(L.Dense(6, name="d3", **init)(h))
    h = keras.ops.relu(L.Dense(5, name="d4", **init)(h))
    y = L.Dense(3, activation="softmax", name="out", **init)(h)
    return keras.Model(x, y, name="relu_forms")


def _numpy_backward(model, x, index, relu_backward):
    """Literal forward/backward through the Dense stack; ``relu_backward(z, signal)``."""
    dense = [model.get_layer(name) for name in ("fused", "d2", "d3", "d4", "out")]
    a = np.asarray(x, np.float64)
    pre_activations = []
    for layer in dense[:-1]:
        z = a @ np.asarray(layer.kernel, np.float64) + np.asarray(layer.bias, np.float64)
        pre_activations.append(z)
        a = np.maximum(z, 0.0)
    signal = np.eye(3)[index]  # start from the logit's one-hot (softmax stripped)
    signal = signal @ np.asarray(dense[-1].kernel, np.float64).T
    for layer, z in zip(reversed(dense[:-1]), reversed(pre_activations)):
        signal = relu_backward(z, signal) @ np.asarray(layer.kernel, np.float64).T
    return signal


def _guided(z, signal):
    return (z > 0) * np.maximum(signal, 0.0)


def _deconv(z, signal):
    return np.maximum(signal, 0.0)


def test_every_relu_form_is_recognised(relu_forms_mlp):
    analyzer = tfxai.create_analyzer("guided_backprop", relu_forms_mlp)
    relus = sorted(node.name for node in analyzer.view.nodes if is_relu(node))
    assert len(relus) == 4, relus
    assert {"fused/activation", "act", "relu_layer"} <= set(relus)
    guided = {name for name, rule in analyzer.assignment.items() if isinstance(rule, rules.GuidedReLU)}
    assert guided == set(relus)
    # the softmax and every other node get the gradient
    assert all(isinstance(r, rules.Route) for n, r in analyzer.assignment.items() if n not in guided)


@pytest.mark.parametrize("method,backward", [("guided_backprop", _guided), ("deconvnet", _deconv)])
def test_matches_the_numpy_reference(relu_forms_mlp, method, backward):
    x = make_inputs(relu_forms_mlp, 8, "both", seed=1)
    index = predict(relu_forms_mlp, x).argmax(axis=1)
    want = _numpy_backward(relu_forms_mlp, x, index, backward)
    got = tfxai.create_analyzer(method, relu_forms_mlp).analyze(x)
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # a non-winning class, per sample
    other = (index + 1) % 3
    want = _numpy_backward(relu_forms_mlp, x, other, backward)
    got = tfxai.create_analyzer(method, relu_forms_mlp).analyze(x, neuron_selection=other)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_guided_backprop_differs_from_the_gradient_only_through_relus(relu_forms_mlp, zoo):
    x = make_inputs(relu_forms_mlp, 8, "both", seed=2)
    guided = tfxai.create_analyzer("guided_backprop", relu_forms_mlp).analyze(x)
    gradient = tfxai.create_analyzer("gradient", relu_forms_mlp).analyze(x)
    assert np.abs(guided - gradient).max() > 1e-3
    # without any ReLU, guided backprop and deconvnet are the gradient
    keras.utils.set_random_seed(3)
    inp = keras.Input((6,))
    model = keras.Model(inp, L.Dense(3)(L.Dense(5, activation="tanh")(inp)))
    x = make_inputs(model, 4, "both", seed=3)
    want = tfxai.create_analyzer("gradient", model).analyze(x)
    for method in ("guided_backprop", "deconvnet"):
        got = tfxai.create_analyzer(method, model).analyze(x)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def _relu_with_backward(backward):
    @tf.custom_gradient
    def relu(x):
        def grad(dy):
            return backward(x, dy)

        return tf.nn.relu(x), grad

    return relu


def _cnn_with_custom_relus(model, relu):
    """The zoo CNN rebuilt with ``relu`` (a tf.custom_gradient) as its activations, same weights."""
    copy = keras.Sequential(
        [
            keras.Input(model.input_shape[1:]),
            L.Conv2D(4, 3, padding="same", activation=relu, name="conv1"),
            L.MaxPooling2D(2, name="maxpool"),
            L.Conv2D(4, 3, padding="same", name="conv2"),
            L.Activation(relu, name="relu2"),
            L.AveragePooling2D(2, name="avgpool"),
            L.Flatten(name="flatten"),
            L.Dense(6, activation=relu, name="fc1"),
            L.Dense(3, name="logits"),
        ]
    )
    for layer in copy.layers:
        layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy


@pytest.mark.parametrize(
    "method,backward",
    [
        ("guided_backprop", lambda x, dy: tf.cast(x > 0, dy.dtype) * tf.nn.relu(dy)),
        ("deconvnet", lambda x, dy: tf.nn.relu(dy)),
    ],
)
def test_cnn_matches_a_custom_gradient_reference(zoo, method, backward):
    """Fused ReLU, ReLU layer, max pooling (switches) and average pooling on the zoo CNN."""
    model = zoo("cnn", use_bias=True)
    x = make_inputs(model, 4, "both", seed=4)
    reference = _cnn_with_custom_relus(model, _relu_with_backward(backward))
    np.testing.assert_allclose(predict(reference, x), predict(model, x), rtol=1e-5, atol=1e-6)  # guard
    index = predict(model, x).argmax(axis=1)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        picked = tf.reduce_sum(reference(xt) * tf.one_hot(index, 3))
    want = tape.gradient(picked, xt).numpy()
    got = tfxai.create_analyzer(method, model).analyze(x)
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
