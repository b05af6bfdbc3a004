"""Run iNNvestigate 2.1.2 on the reference networks (called by ``generate.py``).

Runs inside its own environment: Python 3.11, TensorFlow 2.14, NumPy < 2,
innvestigate 2.1.2 (see README.md). Reads the weights and inputs written by
``generate.py``, builds every network with ``tensorflow.keras`` from
``networks.py``, explains each input's target logit with every method of
:data:`METHODS` and writes ``<network>/<method>`` arrays (channels last, as
the inputs) to ``--out``. A method that raises is recorded as
``<network>/<method>/error`` (the message) instead.

It also writes ``--legacy-h5``: the ``cnn`` network as a tf.keras 2.14
Sequential model with a final softmax, saved in the legacy HDF5 format, and
the relevance iNNvestigate gives for that file after ``model_wo_softmax``
(``legacy/<method>``).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from importlib.metadata import version

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.compat.v1.disable_eager_execution()

import innvestigate  # noqa: E402
from tensorflow import keras  # noqa: E402

import networks  # noqa: E402

LOW, HIGH = networks.LOW, networks.HIGH

METHODS = {
    "gradient": ("gradient", {}),
    "input_t_gradient": ("input_t_gradient", {}),
    "integrated_gradients": ("integrated_gradients", {"steps": 64}),
    "guided_backprop": ("guided_backprop", {}),
    "deconvnet": ("deconvnet", {}),
    "lrp.z": ("lrp.z", {}),
    "lrp.epsilon": ("lrp.epsilon", {}),
    "lrp.epsilon_0.1": ("lrp.epsilon", {"epsilon": 0.1}),
    "lrp.alpha_1_beta_0": ("lrp.alpha_1_beta_0", {}),
    "lrp.alpha_1_beta_0_IB": ("lrp.alpha_1_beta_0_IB", {}),
    "lrp.alpha_2_beta_1": ("lrp.alpha_2_beta_1", {}),
    "lrp.alpha_2_beta_1_IB": ("lrp.alpha_2_beta_1_IB", {}),
    "lrp.z_plus": ("lrp.z_plus", {}),
    "lrp.w_square": ("lrp.w_square", {}),
    "lrp.flat": ("lrp.flat", {}),
    "lrp.bounded": ("lrp.z", {"input_layer_rule": (LOW, HIGH)}),
    "lrp.sequential_preset_a": ("lrp.sequential_preset_a", {}),
    "lrp.sequential_preset_b": ("lrp.sequential_preset_b", {}),
    "lrp.sequential_preset_a_flat": ("lrp.sequential_preset_a_flat", {}),
    "lrp.sequential_preset_b_flat": ("lrp.sequential_preset_b_flat", {}),
    "deep_taylor": ("deep_taylor", {}),
    "deep_taylor.bounded": ("deep_taylor.bounded", {"low": LOW, "high": HIGH}),
}
"""Result key -> (iNNvestigate analyzer name, its parameters)."""

LEGACY_METHODS = ("gradient", "lrp.epsilon", "lrp.alpha_1_beta_0_IB", "lrp.sequential_preset_a_flat")
"""Methods run on the legacy .h5 model."""

BN_UNIT_METHODS = ("lrp.z", "lrp.epsilon", "lrp.epsilon_0.1")
"""Methods run on ``bn_unit``, where only iNNvestigate's BatchNorm formula matters."""

RUNS = {
    "mlp": ("mlp", tuple(METHODS)),
    "cnn": ("cnn", tuple(METHODS)),
    "residual": ("residual", tuple(METHODS)),
    "bn": ("bn", tuple(METHODS)),
    "bn_unit": ("bn", BN_UNIT_METHODS),
}
"""Result prefix -> (network, methods); ``bn_unit`` is ``bn`` with BatchNorm gamma and variance 1."""


def analyze(model, method, x, targets):
    name, params = METHODS[method]
    analyzer = innvestigate.create_analyzer(name, model, neuron_selection_mode="index", **params)
    return np.asarray(analyzer.analyze(x, neuron_selection=targets), np.float32)


def fresh_graph():
    """A new TF1 graph in inference mode.

    Without a fixed learning phase, tf.keras 2.14 builds BatchNormalization as a
    ``cond`` on the learning phase, and iNNvestigate's gradient-based analyzers
    (gradient, integrated gradients, guided backprop, deconvnet, deep Taylor)
    fail on such models with "You must feed a value for placeholder tensor".
    A fresh graph per analyzer also keeps the TF1 graph from growing.
    """
    keras.backend.clear_session()
    keras.backend.set_learning_phase(0)


def run_all(make_model, prefix, x, targets, methods, out):
    """Every method on a fresh model in a fresh graph."""
    fresh_graph()
    out[f"{prefix}/logits"] = np.asarray(make_model().predict_on_batch(x), np.float32)
    for method in methods:
        fresh_graph()
        try:
            out[f"{prefix}/{method}"] = analyze(make_model(), method, x, targets)
        except Exception as error:  # noqa: BLE001  (a failing method is a result to record)
            message = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            out[f"{prefix}/{method}/error"] = np.array(message)
            print(f"  {prefix}/{method}: {message}", file=sys.stderr)


def legacy_model(arrays):
    """The ``cnn`` network as a Sequential model ending in a softmax, as tf.keras users wrote them."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input(networks.INPUT_SHAPES["cnn"]),
            layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="maxpool"),
            layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2"),
            layers.AveragePooling2D(2, name="avgpool"),
            layers.Flatten(name="flatten"),
            layers.Dense(12, activation="relu", name="dense1"),
            layers.Dense(networks.N_CLASSES, activation="softmax", name="logits"),
        ],
        name="legacy_cnn",
    )
    networks.set_weights(model, arrays, "cnn")
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="networks.npz written by generate.py")
    parser.add_argument("--out", required=True, help="where to write the results (.npz)")
    parser.add_argument("--legacy-h5", required=True, help="where to write the legacy tf.keras model")
    args = parser.parse_args()
    arrays = dict(np.load(args.data))
    out = {
        "meta/innvestigate": np.array(version("innvestigate")),
        "meta/tensorflow": np.array(tf.__version__),
    }
    for prefix, (network, methods) in RUNS.items():
        print(f"iNNvestigate: {prefix}", file=sys.stderr)
        make = functools.partial(networks.build_with_weights, keras, arrays, network, weights_of=prefix)
        run_all(make, prefix, arrays[f"{prefix}/x"], arrays[f"{prefix}/targets"], methods, out)

    fresh_graph()
    legacy_model(arrays).save(args.legacy_h5)

    def reload():
        return innvestigate.model_wo_softmax(keras.models.load_model(args.legacy_h5, compile=False))

    run_all(reload, "legacy", arrays["cnn/x"], arrays["cnn/targets"], LEGACY_METHODS, out)
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()
