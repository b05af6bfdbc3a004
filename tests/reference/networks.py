"""The reference networks, written once for tf.keras 2 and Keras 3.

``build(keras, name)`` builds a network with the Keras module it is given
(``tensorflow.keras`` in the iNNvestigate environment, ``keras`` 3 in the tfxai
tests). The PyTorch twins used for zennit live in ``run_zennit.py``. Weights are
not drawn here: ``generate.py`` draws them with NumPy, stores them in
``data/networks.npz`` under ``"<network>/<layer>/<index>"`` (the order of
``layer.get_weights()``), and every framework loads them with
:func:`set_weights`.

This module imports no framework itself, so that each environment can use it.
Layer names avoid Keras' default names ("add", "concatenate"...): iNNvestigate
adds layers with default names to the graph, and a clash fails its analysis.
"""

from __future__ import annotations

NETWORKS = ("mlp", "cnn", "residual", "bn")
"""The networks every reference library is run on."""

INPUT_SHAPES = {"mlp": (10,), "cnn": (8, 8, 3), "residual": (8, 8, 3), "bn": (8, 8, 3)}
"""Per-sample input shape (channels last) of each network."""

N_CLASSES = 4
N_SAMPLES = 6
LOW, HIGH = -1.0, 1.0
"""Bounds of every input (uniform in ``[LOW, HIGH]``); the z^B rule uses them."""


def _mlp(keras):
    layers = keras.layers
    x = keras.Input(INPUT_SHAPES["mlp"], name="x")
    h = layers.Dense(16, activation="relu", name="dense1")(x)
    h = layers.Dense(12, activation="relu", name="dense2")(h)
    y = layers.Dense(N_CLASSES, name="logits")(h)
    return keras.Model(x, y, name="mlp")


def _cnn(keras):
    layers = keras.layers
    x = keras.Input(INPUT_SHAPES["cnn"], name="x")
    h = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(x)
    h = layers.MaxPooling2D(2, name="maxpool")(h)
    h = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(h)
    h = layers.AveragePooling2D(2, name="avgpool")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(12, activation="relu", name="dense1")(h)
    y = layers.Dense(N_CLASSES, name="logits")(h)
    return keras.Model(x, y, name="cnn")


def _residual(keras):
    layers = keras.layers
    x = keras.Input(INPUT_SHAPES["residual"], name="x")
    h = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(x)
    g = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(h)
    g = layers.Conv2D(6, 3, padding="same", name="conv3")(g)
    s = layers.Add(name="skip_add")([h, g])
    s = layers.Activation("relu", name="relu_add")(s)
    side = layers.Conv2D(4, 1, activation="relu", name="conv_side")(h)
    c = layers.Concatenate(name="branch_concat")([s, side])
    p = layers.MaxPooling2D(2, name="maxpool")(c)
    f = layers.Flatten(name="flatten")(p)
    y = layers.Dense(N_CLASSES, name="logits")(f)
    return keras.Model(x, y, name="residual")


def _bn(keras):
    layers = keras.layers
    x = keras.Input(INPUT_SHAPES["bn"], name="x")
    h = layers.Conv2D(6, 3, padding="same", name="conv1")(x)
    h = layers.BatchNormalization(name="bn1")(h)
    h = layers.Activation("relu", name="relu1")(h)
    h = layers.MaxPooling2D(2, name="maxpool")(h)
    h = layers.Conv2D(8, 3, padding="same", name="conv2")(h)
    h = layers.BatchNormalization(name="bn2")(h)
    h = layers.Activation("relu", name="relu2")(h)
    h = layers.AveragePooling2D(2, name="avgpool")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(12, name="dense1")(h)
    h = layers.BatchNormalization(name="bn3")(h)
    h = layers.Activation("relu", name="relu3")(h)
    y = layers.Dense(N_CLASSES, name="logits")(h)
    return keras.Model(x, y, name="bn")


_BUILDERS = {"mlp": _mlp, "cnn": _cnn, "residual": _residual, "bn": _bn}


def build(keras, name: str):
    """The network ``name`` built with ``keras`` (tf.keras 2 or Keras 3), weights not yet set."""
    return _BUILDERS[name](keras)


def weighted_layers(model) -> list:
    """Layers of ``model`` that have weights, in graph order."""
    return [layer for layer in model.layers if layer.get_weights()]


def set_weights(model, arrays, prefix: str) -> None:
    """Load ``arrays["<prefix>/<layer>/<index>"]`` into every weighted layer of ``model``."""
    for layer in weighted_layers(model):
        count = len(layer.get_weights())
        layer.set_weights([arrays[f"{prefix}/{layer.name}/{i}"] for i in range(count)])


def build_with_weights(keras, arrays, name: str, weights_of: str | None = None):
    """Network ``name`` with the weights stored for ``weights_of`` (default: ``name``)."""
    model = build(keras, name)
    set_weights(model, arrays, weights_of or name)
    return model
