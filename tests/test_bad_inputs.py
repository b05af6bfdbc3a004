"""Bad inputs and bad parameters: a clear error (a TfxaiError that is a ValueError or TypeError) every time.

The input matrix crosses every kind of bad ``analyze`` input with one analyzer of every
family; the parameter matrix gives every validated parameter NaN, infinity, a negative
number, a string and (for counts) zero, at creation. Each case must raise a subclass of
:class:`tfxai.TfxaiError` that is also the matching built-in error, and say what it received.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tfxai
from tfxai import rules
from tfxai.rules import transformer
from tfxai.errors import TfxaiError

L = keras.layers

FAMILIES = (
    "lrp.epsilon",
    "lrp.epsilon_gamma_box",
    "gradient",
    "integrated_gradients",
    "smoothgrad",
    "guided_backprop",
    "grad_cam",
    "occlusion",
    "deep_taylor",
    "input",
    "random",
    "deeplift",
    "kernel_shap",
    "lime",
    "rise",
    "sobol",
    "score_cam",
)


@pytest.fixture(scope="module")
def image_model():
    keras.utils.set_random_seed(0)
    x = keras.Input((6, 6, 2), name="img")
    h = L.Conv2D(3, 3, padding="same", activation="relu")(x)
    return keras.Model(x, L.Dense(2)(L.GlobalAveragePooling2D()(h)), name="image")


@pytest.fixture(scope="module")
def two_input_model():
    keras.utils.set_random_seed(1)
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    return keras.Model([a, b], L.Dense(2)(L.Concatenate()([L.Dense(3, activation="relu")(a), b])))


@pytest.fixture(scope="module")
def token_model():
    keras.utils.set_random_seed(2)
    t = keras.Input((5,), dtype="int32", name="tokens")
    return keras.Model(t, L.Dense(2)(L.GlobalAveragePooling1D()(L.Embedding(10, 4)(t))))


GOOD = np.random.default_rng(0).normal(size=(2, 6, 6, 2)).astype("float32")
IMAGE_INPUTS = {
    "no batch axis": (GOOD[0], "shape"),
    "wrong size": (GOOD[:, :5], "shape"),
    "wrong rank": (GOOD.reshape(2, -1), "shape"),
    "nan": (np.where(np.arange(GOOD.size).reshape(GOOD.shape) == 3, np.nan, GOOD), "NaN or Inf"),
    "inf": (np.where(np.arange(GOOD.size).reshape(GOOD.shape) == 5, np.inf, GOOD), "NaN or Inf"),
    "strings": (np.full((2, 6, 6, 2), "a"), "dtype"),
    "complex": (GOOD.astype(np.complex64), "dtype"),
    "none": (None, "Received: shape ()"),
    "empty batch": (GOOD[:0], "no samples"),
    "two arrays for one input": ([GOOD, GOOD], "1 input"),
    "dict without the input": ({"other": GOOD}, "missing"),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_image_inputs_raise_clear_errors(image_model, family):
    analyzer = tfxai.create_analyzer(family, image_model)
    for kind, (x, message) in IMAGE_INPUTS.items():
        with pytest.raises(TfxaiError, match=message) as info:
            analyzer.analyze(x)
        assert isinstance(info.value, (ValueError, TypeError)), kind


TOKEN_INPUTS = {
    "id too large": (np.array([[1, 2, 3, 4, 10]]), r"input_dim=10.*Received: ids from 1 to 10"),
    "negative id": (np.array([[-1, 2, 3, 4, 5]]), r"\[0, 10\)"),
    "floats for ids": (np.zeros((1, 5), np.float32), "integers"),
}


FLOAT_ONLY = ("grad_cam", "score_cam", "rise", "deeplift")
"""Families that explain float inputs only: they refuse a token model at creation, clearly."""


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_token_inputs_raise_clear_errors(token_model, family):
    if family in FLOAT_ONLY:
        with pytest.raises(tfxai.ModelError, match="float|convolution|spatial"):
            tfxai.create_analyzer(family, token_model)
        return
    analyzer = tfxai.create_analyzer(family, token_model)
    for kind, (x, message) in TOKEN_INPUTS.items():
        with pytest.raises(tfxai.InputError, match=message):
            analyzer.analyze(x)


@pytest.mark.parametrize("family", ["lrp.epsilon", "gradient", "occlusion"])
def test_bad_multi_input_structures(two_input_model, family):
    analyzer = tfxai.create_analyzer(family, two_input_model)
    a, b = np.zeros((2, 4), np.float32), np.zeros((2, 3), np.float32)
    for x, message in (
        (a, "2 inputs"),
        ([a], "2 input"),
        ({"a": a}, "missing"),
        ([a, b[:1]], "same batch size"),
        ([b, a], "shape"),
    ):
        with pytest.raises(tfxai.InputError, match=message):
            analyzer.analyze(x)


def test_stateful_rnn_is_refused_by_every_analyzer_and_its_state_is_untouched():
    keras.utils.set_random_seed(3)
    x = keras.Input(batch_shape=(2, 5, 3))
    lstm = L.LSTM(4, stateful=True, name="lstm")
    model = keras.Model(x, L.Dense(2)(lstm(x)))
    model(np.ones((2, 5, 3), np.float32))  # a non-zero state
    before = [np.array(v) for v in lstm.states]
    needs_background = {"deep_shap", "gradient_shap"}
    for name in tfxai.analyzers.analyzer_names():
        kwargs = {"background": np.zeros((1, 5, 3), np.float32)} if name in needs_background else {}
        with pytest.raises(tfxai.ModelError, match="stateful"):
            tfxai.create_analyzer(name, model, **kwargs)
    assert all(np.array_equal(a, np.array(v)) for a, v in zip(before, lstm.states))
    report = tfxai.check(model, verbose=False)
    assert not report.ok and any("stateful" in row.fix for row in report.unsupported)


BAD_NUMBERS = {"nan": float("nan"), "inf": float("inf"), "negative": -1.0}
NUMERIC = [
    ("lrp.epsilon", "epsilon"),
    ("lrp.epsilon_plus", "epsilon"),
    ("lrp.gamma", "gamma"),
    ("lrp.epsilon_gamma_box", "gamma"),
    ("lrp.alpha_beta", "beta"),
    ("smoothgrad", "noise_level"),
    ("smoothgrad", "noise_scale"),
    ("integrated_gradients", "blur_sigma"),
    ("random", "stddev"),
    ("lrp.cp_lrp", "epsilon"),
    ("lrp.attn_lrp", "epsilon"),
    ("deeplift", "blur_sigma"),
    ("lime", "kernel_width"),
    ("lime", "ridge"),
    ("rise", "keep_probability"),
]
COUNTS = [
    ("smoothgrad", "n_samples"),
    ("smoothgrad", "chunk_size"),
    ("vargrad", "n_samples"),
    ("integrated_gradients", "steps"),
    ("integrated_gradients", "chunk_size"),
    ("occlusion", "chunk_size"),
    ("kernel_shap", "n_samples"),
    ("lime", "n_samples"),
    ("rise", "n_masks"),
    ("rise", "grid_size"),
    ("sobol", "chunk_size"),
    ("score_cam", "chunk_size"),
    ("gradient", "sequence_length"),
]


@pytest.mark.parametrize("name,parameter", NUMERIC)
def test_numeric_parameters_are_validated_at_creation(image_model, name, parameter):
    for label, value in BAD_NUMBERS.items():
        with pytest.raises(tfxai.ParameterError, match=f"{parameter}.*Received: {parameter}="):
            tfxai.create_analyzer(name, image_model, **{parameter: value})
    with pytest.raises(tfxai.ParameterTypeError, match=f"Received: {parameter}='0.1'"):
        tfxai.create_analyzer(name, image_model, **{parameter: "0.1"})


@pytest.mark.parametrize("name,parameter", COUNTS)
def test_count_parameters_are_validated_at_creation(image_model, name, parameter):
    for value in (0, -2, 2.5, float("nan")):
        with pytest.raises(tfxai.ParameterError, match=f"{parameter} must be an integer"):
            tfxai.create_analyzer(name, image_model, **{parameter: value})
    for value in ("8", True):
        with pytest.raises(tfxai.ParameterTypeError, match=parameter):
            tfxai.create_analyzer(name, image_model, **{parameter: value})


def test_batch_size_and_flags_are_validated(image_model):
    analyzer = tfxai.create_analyzer("gradient", image_model)
    for value in (0, -1, 1.5):
        with pytest.raises(tfxai.ParameterError, match="batch_size must be an integer >= 1"):
            analyzer.analyze(GOOD, batch_size=value)
    with pytest.raises(tfxai.ParameterTypeError, match="return_delta"):
        analyzer.analyze(GOOD, return_delta="yes")
    with pytest.raises(tfxai.ParameterTypeError, match="jit_compile"):
        tfxai.create_analyzer("gradient", image_model, jit_compile="no")
    with pytest.raises(tfxai.ParameterError, match="output_index"):
        tfxai.create_analyzer("gradient", image_model, output_index=-1)
    with pytest.raises(tfxai.ParameterTypeError, match="layer"):
        tfxai.create_analyzer("grad_cam", image_model, layer=3)


@pytest.mark.parametrize(
    "make",
    [
        lambda v: rules.Epsilon(v),
        lambda v: rules.Gamma(v),
        lambda v: rules.GeneralizedGamma(v),
        lambda v: rules.AlphaBeta(v, 1.0),
        lambda v: rules.FrozenScale(v),
        lambda v: rules.ZBox(v, 1.0),
        lambda v: transformer.Bilinear(v),
        lambda v: transformer.ConstantWeights(v),
        lambda v: transformer.TiedEmbedding(v),
    ],
    ids=[
        "epsilon",
        "gamma",
        "generalized_gamma",
        "alpha",
        "frozen_scale",
        "zbox",
        "bilinear",
        "constant_weights",
        "tied_embedding",
    ],
)
def test_rules_refuse_nan_inf_and_strings(make):
    for value in (float("nan"), float("inf")):
        with pytest.raises(tfxai.ParameterError):
            make(value)
    with pytest.raises(tfxai.ParameterTypeError):
        make("0.1")


def test_zbox_bounds_of_the_wrong_shape_are_refused_at_assignment(image_model):
    with pytest.raises(tfxai.ParameterError, match=r"low and high of shapes that broadcast"):
        rules.ZBox(np.zeros(3), np.ones(2))
    with pytest.raises(tfxai.ParameterError, match=r"ZBox bound low of shape \(3,\).*\(6, 6, 2\)"):
        tfxai.create_analyzer("lrp.epsilon_gamma_box", image_model, low=np.zeros(3), high=np.ones(3))
    analyzer = tfxai.create_analyzer("lrp.epsilon_gamma_box", image_model, low=np.zeros(2), high=np.ones(2))
    assert np.all(np.isfinite(analyzer.analyze(GOOD)))
