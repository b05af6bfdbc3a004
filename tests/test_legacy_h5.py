"""A model saved by tf.keras 2.14 as .h5, loaded with Keras 3 and explained as iNNvestigate explained it.

tests/reference/data/legacy_cnn.h5 is the ``cnn`` reference network written by
tf.keras 2.14 as a Sequential model ending in a softmax, the way iNNvestigate
users saved their models. iNNvestigate analysed that file after
``innvestigate.model_wo_softmax`` (golden keys ``legacy/<method>``); tfxai
strips the softmax itself.
"""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

import tfxai
from reference import golden
from reference.conventions import FullBiasAlphaBeta
from tfxai import registry, rules
from tfxai.composites import FIRST

LEGACY_H5 = golden.DATA / "legacy_cnn.h5"

METHODS = {
    "gradient": ("gradient", {}),
    "lrp.epsilon": ("lrp.epsilon", {}),
    "lrp.alpha_1_beta_0_IB": ("lrp.alpha_1_beta_0_IB", {}),
    # iNNvestigate's alpha-beta adds the full bias to its denominators (see the migration page).
    "lrp.sequential_preset_a_flat": (
        "lrp.sequential_preset_a_flat",
        {"rules": [(FIRST, rules.Flat()), (registry.CONV, FullBiasAlphaBeta(1.0, 0.0))]},
    ),
}
"""Golden key -> (tfxai analyzer, parameters) that reproduce it."""


@pytest.fixture(scope="module")
def legacy_model():
    return keras.models.load_model(LEGACY_H5, compile=False)


def test_file_was_written_by_tf_keras_2():
    with h5py.File(LEGACY_H5, "r") as f:
        assert str(f.attrs["keras_version"]).startswith("2.14")


def test_keras3_loads_it_with_its_softmax(legacy_model):
    x, _ = golden.inputs("cnn")
    assert legacy_model.layers[-1].activation is keras.activations.softmax
    logits = golden.load("innvestigate")["legacy/logits"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(legacy_model(x)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_reproduces_innvestigate(legacy_model, method):
    name, params = METHODS[method]
    x, targets = golden.inputs("cnn")
    relevance = tfxai.create_analyzer(name, legacy_model, **params).analyze(x, neuron_selection=targets)
    expected = golden.load("innvestigate")[f"legacy/{method}"]
    assert golden.relative_difference(relevance, expected) <= golden.TOLERANCE
