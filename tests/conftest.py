"""Shared fixtures: a small, seeded zoo of Keras models and input generators.

Every builder seeds Keras itself, so a model is the same whichever test asks
for it first. Models are built once per test session and cached; tests must
not change them (``test_models.py`` checks that analyzers never do).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

L = keras.layers


N_FEATURES = 6
IMAGE_SHAPE = (8, 8, 2)
N_CLASSES = 3


def _dense(units, name, use_bias, activation=None):
    """A Dense layer; with ``use_bias`` the bias is random (not the zero default)."""
    return L.Dense(
        units,
        activation=activation,
        use_bias=use_bias,
        kernel_initializer="he_normal",
        bias_initializer=keras.initializers.RandomNormal(stddev=0.3),
        name=name,
    )


def _conv(filters, name, use_bias, activation=None):
    return L.Conv2D(
        filters,
        3,
        padding="same",
        activation=activation,
        use_bias=use_bias,
        kernel_initializer="he_normal",
        bias_initializer=keras.initializers.RandomNormal(stddev=0.3),
        name=name,
    )


def build_mlp(use_bias):
    return keras.Sequential(
        [
            keras.Input((N_FEATURES,)),
            _dense(8, "d1", use_bias, "relu"),
            _dense(5, "d2", use_bias, "relu"),
            _dense(N_CLASSES, "logits", use_bias),
        ],
        name="mlp",
    )


def build_cnn(use_bias):
    return keras.Sequential(
        [
            keras.Input(IMAGE_SHAPE),
            _conv(4, "conv1", use_bias, "relu"),
            L.MaxPooling2D(2, name="maxpool"),
            _conv(4, "conv2", use_bias),
            L.ReLU(name="relu2"),
            L.AveragePooling2D(2, name="avgpool"),
            L.Flatten(name="flatten"),
            _dense(6, "fc1", use_bias, "relu"),
            _dense(N_CLASSES, "logits", use_bias),
        ],
        name="cnn",
    )


def build_functional(use_bias):
    x = keras.Input((N_FEATURES,), name="x")
    h = _dense(8, "d1", use_bias, "relu")(x)
    h = L.Dropout(0.5, name="dropout")(h)
    h = _dense(5, "d2", use_bias)(h)
    h = L.Activation("relu", name="act2")(h)
    y = _dense(N_CLASSES, "logits", use_bias)(h)
    return keras.Model(x, y, name="functional")


def build_residual(use_bias):
    x = keras.Input((N_FEATURES,), name="x")
    h = _dense(8, "d1", use_bias, "relu")(x)
    g = _dense(8, "d2", use_bias, "relu")(h)
    g = _dense(8, "d3", use_bias, "relu")(g)
    s = L.Add(name="add")([h, g])
    y = _dense(N_CLASSES, "logits", use_bias)(s)
    return keras.Model(x, y, name="residual")


def build_concat(use_bias):
    x = keras.Input((N_FEATURES,), name="x")
    a = _dense(4, "branch_a", use_bias, "relu")(x)
    b = _dense(5, "branch_b", use_bias, "relu")(x)
    c = L.Concatenate(name="concat")([a, b, x])
    y = _dense(N_CLASSES, "logits", use_bias)(c)
    return keras.Model(x, y, name="concat")


def build_inner(use_bias, name="inner"):
    """A Functional block 6 -> 6 used as a layer by the nested models."""
    x = keras.Input((N_FEATURES,), name=f"{name}_in")
    h = _dense(7, "i1", use_bias, "relu")(x)
    h = _dense(N_FEATURES, "i2", use_bias, "relu")(h)
    return keras.Model(x, h, name=name)


def build_nested_sequential(use_bias):
    return keras.Sequential(
        [keras.Input((N_FEATURES,)), build_inner(use_bias), _dense(N_CLASSES, "logits", use_bias)],
        name="nested_sequential",
    )


def build_nested_functional(use_bias):
    """A Functional with a nested Functional called twice and a nested Sequential."""
    inner = build_inner(use_bias)
    head = keras.Sequential(
        [keras.Input((N_FEATURES,)), _dense(5, "h1", use_bias, "relu"), _dense(N_CLASSES, "h2", use_bias)],
        name="head",
    )
    x = keras.Input((N_FEATURES,), name="x")
    h = inner(x)
    h = inner(h)
    h = _dense(N_FEATURES, "mid", use_bias, "relu")(h)
    y = head(h)
    return keras.Model(x, y, name="nested_functional")


def build_nested_multi_input(use_bias):
    """A nested Functional with two same-shaped inputs playing different roles."""
    pa = keras.Input((N_FEATURES,), name="pa")
    pb = keras.Input((N_FEATURES,), name="pb")
    inner_out = L.Concatenate(name="join")([_dense(5, "pd", use_bias, "relu")(pa), pb])
    pair = keras.Model([pa, pb], inner_out, name="pair")
    x = keras.Input((N_FEATURES,), name="x")
    h = _dense(N_FEATURES, "pre", use_bias, "relu")(x)
    y = _dense(N_CLASSES, "logits", use_bias)(pair([x, h]))
    return keras.Model(x, y, name="nested_multi_input")


def build_shared(use_bias):
    shared = _dense(N_FEATURES, "shared", use_bias, "relu")
    x = keras.Input((N_FEATURES,), name="x")
    h1 = shared(x)
    h2 = shared(h1)
    s = L.Add(name="add")([h1, h2])
    y = _dense(N_CLASSES, "logits", use_bias)(s)
    return keras.Model(x, y, name="shared")


def build_rawop(use_bias):
    x = keras.Input((N_FEATURES,), name="x")
    a = _dense(N_FEATURES, "a", use_bias, "relu")(x)
    b = _dense(N_FEATURES, "b", use_bias, "relu")(x)
    s = a + b
    r = keras.ops.reshape(s, (-1, 2, 3))
    r = keras.ops.relu(r)
    f = L.Flatten(name="flatten")(r)
    y = _dense(N_CLASSES, "logits", use_bias)(f)
    return keras.Model(x, y, name="rawop")


def build_multi_input(use_bias):
    xa = keras.Input((N_FEATURES,), name="xa")
    xb = keras.Input((4,), name="xb")
    ha = _dense(5, "da", use_bias, "relu")(xa)
    hb = _dense(3, "db", use_bias, "relu")(xb)
    c = L.Concatenate(name="concat")([ha, hb])
    y = _dense(N_CLASSES, "logits", use_bias)(c)
    return keras.Model([xa, xb], y, name="multi_input")


def build_multi_output(use_bias):
    x = keras.Input((N_FEATURES,), name="x")
    h = _dense(8, "trunk", use_bias, "relu")(x)
    y0 = _dense(N_CLASSES, "out0", use_bias)(h)
    g = _dense(5, "g", use_bias, "relu")(h)
    y1 = _dense(4, "out1", use_bias)(g)
    return keras.Model(x, [y0, y1], name="multi_output")


BUILDERS = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    "functional": build_functional,
    "residual": build_residual,
    "concat": build_concat,
    "nested_sequential": build_nested_sequential,
    "nested_functional": build_nested_functional,
    "nested_multi_input": build_nested_multi_input,
    "shared": build_shared,
    "rawop": build_rawop,
    "multi_input": build_multi_input,
    "multi_output": build_multi_output,
}
"""Zoo model name -> builder(use_bias)."""

ZOO_NAMES = tuple(BUILDERS)


class Zoo:
    """Builds zoo models on demand, each once, seeded by name."""

    def __init__(self):
        self._cache = {}

    def __call__(self, name, use_bias=False):
        key = (name, bool(use_bias))
        if key not in self._cache:
            keras.utils.set_random_seed(sum(map(ord, name)) + 1000 * bool(use_bias))
            self._cache[key] = BUILDERS[name](use_bias)
        return self._cache[key]


@pytest.fixture(scope="session")
def zoo():
    """``zoo(name, use_bias=False)`` -> a cached zoo model."""
    return Zoo()


def input_shapes(model):
    """Per-sample shape of every model input."""
    return [tuple(t.shape[1:]) for t in model.inputs]


def make_inputs(model, n, signs="both", seed=0):
    """Random float32 inputs for ``model``: an array, or a list for multi-input models.

    ``signs="positive"`` draws from U(0, 1); ``"both"`` from N(0, 1).
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for shape in input_shapes(model):
        if signs == "positive":
            arrays.append(rng.uniform(0.0, 1.0, (n,) + shape).astype("float32"))
        else:
            arrays.append(rng.normal(0.0, 1.0, (n,) + shape).astype("float32"))
    return arrays[0] if len(arrays) == 1 else arrays


def predict(model, x):
    """``model(x)`` as NumPy (a list for multi-output models)."""
    y = model(x, training=False)
    if isinstance(y, (list, tuple)):
        return [np.asarray(t) for t in y]
    return np.asarray(y)


def summed(relevance):
    """Per-sample sum of relevance (summed over every input of a list/dict)."""
    if isinstance(relevance, dict):
        relevance = list(relevance.values())
    if not isinstance(relevance, (list, tuple)):
        relevance = [relevance]
    return sum(np.asarray(r, np.float64).reshape(len(r), -1).sum(axis=1) for r in relevance)


@pytest.fixture(scope="session")
def make_x():
    return make_inputs


BACKGROUND_METHODS = ("deep_shap", "gradient_shap")
"""Analyzers that need a ``background=`` set (no default)."""


def required_params(name, model):
    """Parameters analyzer ``name`` cannot do without on ``model``: a small seeded background set."""
    if name not in BACKGROUND_METHODS:
        return {}
    background = make_inputs(model, 4, seed=99)
    return {"background": background}
