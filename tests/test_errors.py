"""Errors that guide: one base class, the matching built-in, suggestions, shape hints."""

from __future__ import annotations

import pathlib
import re

import keras
import numpy as np
import pytest

import tfxai
from tfxai import composites, datasets, registry, visualize
from tfxai.analyzers import analyzer_names, analyzer_parameters

L = keras.layers
PACKAGE = pathlib.Path(tfxai.__file__).parent


def _mlp():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), L.Dense(3, activation="relu"), L.Dense(2)], name="mlp")


def _cnn(data_format="channels_last"):
    keras.utils.set_random_seed(0)
    shape = (32, 32, 3) if data_format == "channels_last" else (3, 32, 32)
    return keras.Sequential(
        [keras.Input(shape), L.Conv2D(2, 3, data_format=data_format), L.Flatten(), L.Dense(2)], name="cnn"
    )


def test_tfxai_raises_no_bare_builtin_errors():
    pattern = re.compile(r"raise (ValueError|TypeError|KeyError)\(")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


MODEL = _mlp()
CASES = {
    "bad value": (lambda: tfxai.create_analyzer("lrp.epsilon", MODEL, epsilon=-1.0), ValueError),
    "unknown parameter": (lambda: tfxai.create_analyzer("gradient", MODEL, epsilon=0.1), TypeError),
    "unknown analyzer": (lambda: tfxai.create_analyzer("lrp.epsilonn", MODEL), KeyError),
    "unknown composite": (lambda: composites.get_composite("epsilon_plu"), KeyError),
    "swapped arguments": (lambda: tfxai.create_analyzer(MODEL, "lrp.epsilon"), TypeError),
    "bad input": (lambda: tfxai.create_analyzer("gradient", MODEL).analyze(np.zeros((2, 5))), ValueError),
    "bad selection": (lambda: tfxai.create_analyzer("gradient", MODEL).analyze(np.zeros((2, 4)), "top"), ValueError),
    "bad picture option": (lambda: visualize.heatmap(np.ones((4, 4)), percentile=0), ValueError),
    "bad dataset size": (lambda: datasets.make_shapes(-1), ValueError),
    "bad rule registration": (lambda: registry.register_rule("Dense", tfxai.rules.Epsilon()), TypeError),
    "bad model": (lambda: tfxai.create_analyzer("gradient", keras.Sequential([L.Dense(2)])), ValueError),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_error_is_a_tfxai_error_and_the_matching_builtin(case):
    call, builtin = CASES[case]
    with pytest.raises(tfxai.TfxaiError) as info:
        call()
    assert isinstance(info.value, builtin)
    try:  # the way code that knows nothing of tfxai catches it
        call()
    except builtin as error:
        assert type(error) is type(info.value)


def test_unknown_names_suggest_the_closest_ones():
    with pytest.raises(tfxai.UnknownNameError) as info:
        tfxai.create_analyzer("lrp.epsilonn", MODEL)
    assert str(info.value).startswith("Unknown analyzer 'lrp.epsilonn'. Did you mean 'lrp.epsilon'")
    with pytest.raises(tfxai.UnknownNameError, match=r"Did you mean 'epsilon_plus'"):
        composites.get_composite("epsilon_plu")
    with pytest.raises(tfxai.UnknownNameError, match=r"Did you mean 'epsilon_gamma_box'"):
        tfxai.check(MODEL, "epsilon_gama_box", verbose=False)
    with pytest.raises(tfxai.UnknownNameError) as info:
        tfxai.create_analyzer("qqqq", MODEL)
    assert "Did you mean" not in str(info.value) and "Valid names: " in str(info.value)


def test_swapped_arguments_say_so():
    with pytest.raises(tfxai.ParameterTypeError) as info:
        tfxai.create_analyzer(MODEL, "lrp.epsilon")
    assert "name first" in str(info.value) and "create_analyzer('lrp.epsilon', model)" in str(info.value)


def test_parameter_lists_name_each_parameter_once():
    for name in analyzer_names():
        accepted = analyzer_parameters(name)
        assert len(accepted) == len(set(accepted)), name
    with pytest.raises(TypeError) as info:
        tfxai.create_analyzer("gradient", MODEL, epsilon=0.1)
    listed = re.findall(r"'(\w+)'", str(info.value).split("It takes:")[1])
    assert listed == ["jit_compile", "output_index", "sequence_length"]


@pytest.mark.parametrize(
    "data_format, shape, hint",
    [
        ("channels_last", (32, 32, 3), r"one sample without the batch axis: pass x\[None\]"),
        ("channels_last", (5, 3, 32, 32), r"channels-first.*np.moveaxis\(x, 1, -1\) \(shape \(5, 32, 32, 3\)\)"),
        ("channels_first", (5, 32, 32, 3), r"channels-last.*np.moveaxis\(x, -1, 1\) \(shape \(5, 3, 32, 32\)\)"),
        ("channels_last", (5, 28, 28, 3), r"Wrong size: axis 1 is 28, expected 32; axis 2 is 28, expected 32\."),
        ("channels_last", (5, 32, 32, 1), r"Wrong size: axis 3 is 1, expected 3\."),
        ("channels_last", (5, 32, 32, 3, 1), r"Expected 4 axes, the batch axis first; received 5\."),
    ],
)
def test_the_shape_hint_matches_the_mistake(data_format, shape, hint):
    analyzer = tfxai.create_analyzer("gradient", _cnn(data_format))
    with pytest.raises(tfxai.InputError) as info:
        analyzer.analyze(np.zeros(shape, "float32"))
    message = str(info.value)
    assert re.search(hint, message), message
    assert message.count("x[None]") == (1 if len(shape) == 3 else 0)
