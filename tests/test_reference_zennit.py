"""tfxai against zennit 0.5.1 (PyTorch), number for number.

The golden heatmaps in tests/reference/data/zennit.npz were computed by zennit
on PyTorch twins of the four reference networks (tests/reference/run_zennit.py)
with the same weights and inputs, in float64. zennit starts relevance from the
one-hot output (``R = 1``), tfxai from the logit, so tfxai's LRP heatmaps are
divided by the explained logit before comparing.

Two sets are stored. ``<network>/<rule>``: zennit with tfxai's treatment of
zero denominators (no stabilizer except the Epsilon rule's epsilon) and an
exact BatchNorm merge; these must agree within
:data:`~reference.golden.TOLERANCE`, or differ by a documented convention that
a rule from tests/reference/conventions.py reproduces. ``<network>/<rule>@stock``:
zennit as installed (every denominator stabilized by 1e-6, zennit 0.5.1's
BatchNorm merge); these agree within :data:`STOCK_TOLERANCE`.

A documented difference is checked by values: tfxai's own heatmap (on a
float64 twin of the network) equals the float64 NumPy oracle of
tests/reference/numpy_lrp.py in tfxai's documented convention, within
:data:`~reference.golden.ORACLE_TOLERANCE`; tfxai with the rule of
tests/reference/conventions.py that expresses zennit's convention reproduces
zennit's heatmap; and the difference still shows.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest

from reference import golden, networks, numpy_lrp
from reference.conventions import GeneralizedGamma, SquaredBiasWSquare
from tfxai import registry, rules
from tfxai.composites import FIRST

LOW_HIGH = {"low": networks.LOW, "high": networks.HIGH}

STOCK_TOLERANCE = 1e-3
"""Largest difference to zennit's defaults: its 1e-6 stabilizer and its BatchNorm merge."""


@dataclasses.dataclass
class Method:
    """How to ask tfxai for what a zennit rule, composite or attributor computes."""

    analyzer: str
    params: dict = dataclasses.field(default_factory=dict)
    per_logit: bool = True
    """LRP: zennit starts from 1, tfxai from the logit; gradients start from 1 in both."""


METHODS = {
    "Epsilon": Method("lrp.epsilon", {"epsilon": 1e-6}),
    "Epsilon_0.1": Method("lrp.epsilon", {"epsilon": 0.1}),
    "ZPlus": Method("lrp.z_plus", {"ignore_bias": False}),
    "ZPlus_nobias": Method("lrp.z_plus"),
    "AlphaBeta_1_0": Method("lrp.alpha_1_beta_0"),
    "AlphaBeta_2_1": Method("lrp.alpha_2_beta_1"),
    "Gamma": Method("lrp.gamma", {"gamma": 0.25}),
    "ZBox": Method("lrp.epsilon", {"epsilon": 1e-6, "input_layer_rule": (networks.LOW, networks.HIGH)}),
    "Flat": Method("lrp.flat"),
    "WSquare": Method("lrp.w_square"),
    "WSquare_nobias": Method("lrp.w_square"),
    "EpsilonPlus": Method("lrp.epsilon_plus"),
    "EpsilonPlusFlat": Method("lrp.epsilon_plus_flat"),
    "EpsilonGammaBox": Method("lrp.epsilon_gamma_box", LOW_HIGH),
    "EpsilonAlpha2Beta1": Method("lrp.epsilon_alpha2_beta1"),
    "EpsilonAlpha2Beta1Flat": Method("lrp.epsilon_alpha2_beta1_flat"),
    "gradient": Method("gradient", per_logit=False),
    "integrated_gradients": Method(
        "integrated_gradients", {"steps": 20, "method": "riemann_right"}, per_logit=False
    ),
    "guided_backprop": Method("guided_backprop", per_logit=False),
    "deconvnet": Method("deconvnet", per_logit=False),
}
"""zennit rule / composite / attributor (golden key) -> the tfxai analyzer that computes it."""

GENERALIZED_GAMMA = "Gamma: zennit's rule treats negative inputs and outputs separately (generalized gamma)"
SQUARED_BIAS = "WSquare: zennit adds the squared bias to the denominator, tfxai ignores the bias"
ZPLUS_BIAS = "ZPlus in composites: zennit adds b+ to z+, tfxai's presets ignore the bias (as iNNvestigate)"
ZBOX_CONV_ONLY = "EpsilonGammaBox: zennit gives ZBox to a first convolution only, tfxai to any first layer"

_CONV_NETWORKS = ("cnn", "residual", "bn")

DIFFERENCES = {
    **{(net, "Gamma"): GENERALIZED_GAMMA for net in networks.NETWORKS},
    **{(net, "WSquare"): SQUARED_BIAS for net in networks.NETWORKS},
    **{(net, m): ZPLUS_BIAS for net in _CONV_NETWORKS for m in ("EpsilonPlus", "EpsilonPlusFlat")},
    ("mlp", "EpsilonGammaBox"): ZBOX_CONV_ONLY,
}
"""(network, key) -> the documented reason tfxai's default differs from zennit there."""

REPRODUCTIONS = {
    ("Gamma", GENERALIZED_GAMMA): {"rules": [(registry.LINEAR, GeneralizedGamma(0.25))]},
    ("WSquare", SQUARED_BIAS): {"rules": [(registry.LINEAR, SquaredBiasWSquare())]},
    ("EpsilonPlus", ZPLUS_BIAS): {"rules": [(registry.CONV, rules.ZPlus(ignore_bias=False))]},
    ("EpsilonPlusFlat", ZPLUS_BIAS): {
        "rules": [(FIRST, rules.Flat()), (registry.CONV, rules.ZPlus(ignore_bias=False))]
    },
    ("EpsilonGammaBox", ZBOX_CONV_ONLY): {"rules": [(FIRST, rules.Epsilon(1e-6))]},
}
"""(key, reason) -> extra analyzer parameters that make tfxai follow zennit's convention."""

PAIRS = [(net, m) for net in networks.NETWORKS for m in METHODS]


ORACLE_METHODS = {
    "Gamma": "lrp.gamma",
    "WSquare": "lrp.w_square",
    "EpsilonPlus": "lrp.epsilon_plus",
    "EpsilonPlusFlat": "lrp.epsilon_plus_flat",
    "EpsilonGammaBox": "lrp.epsilon_gamma_box",
}
"""Key -> the name of tfxai's method in the NumPy oracle (numpy_lrp.py), for the documented differences."""


def tfxai_relevance(network, method, dtype="float32", **extra):
    spec = METHODS[method]
    relevance = golden.analyze(network, spec.analyzer, dtype=dtype, **spec.params, **extra)
    return relevance / golden.target_logits(network) if spec.per_logit else relevance


@functools.lru_cache(maxsize=None)
def oracle(network, method):
    """tfxai's documented convention for ``method``, from the float64 NumPy oracle, per unit logit."""
    relevance = numpy_lrp.relevance(golden.load("networks"), network, ORACLE_METHODS[method], "tfxai")
    return relevance / golden.target_logits(network)


def matching(network, method):
    """tfxai with zennit's convention: the default, or the reproduction of a documented difference."""
    reason = DIFFERENCES.get((network, method))
    extra = REPRODUCTIONS[(method, reason)] if reason else {}
    return tfxai_relevance(network, method, **extra)


def reference(network, key):
    return golden.load("zennit")[f"{network}/{key}"]


def test_golden_file_covers_every_pair():
    stored = golden.load("zennit")
    keys = [f"{net}/{m}" for net, m in PAIRS]
    keys += [f"{net}/{m}@stock" for net, m in PAIRS if METHODS[m].per_logit]
    missing = [key for key in keys if key not in stored]
    assert not missing, f"regenerate tests/reference/data (see its README): missing {missing}"


def test_reference_logits_match_keras3():
    for network in networks.NETWORKS:
        x, _ = golden.inputs(network)
        logits = golden.model(network)(x, training=False)
        assert golden.relative_difference(logits, golden.load("zennit")[f"{network}/logits"]) < 1e-6


@pytest.mark.parametrize("network, method", [p for p in PAIRS if p not in DIFFERENCES])
def test_agrees_with_zennit(network, method):
    difference = golden.relative_difference(tfxai_relevance(network, method), reference(network, method))
    assert difference <= golden.TOLERANCE


@pytest.mark.parametrize("network, method", sorted(DIFFERENCES))
def test_documented_difference(network, method):
    reason = DIFFERENCES[(network, method)]
    own = golden.relative_difference(tfxai_relevance(network, method, "float64"), oracle(network, method))
    assert own <= golden.ORACLE_TOLERANCE, "tfxai no longer computes its documented convention"
    reproduced = golden.relative_difference(matching(network, method), reference(network, method))
    assert reproduced <= golden.TOLERANCE, reason
    default = golden.relative_difference(tfxai_relevance(network, method), reference(network, method))
    assert default > golden.DIFFERENCE_FLOOR, f"documented difference no longer shows: {reason}"


@pytest.mark.parametrize("network, method", [p for p in PAIRS if METHODS[p[1]].per_logit])
def test_close_to_stock_zennit(network, method):
    difference = golden.relative_difference(matching(network, method), reference(network, f"{method}@stock"))
    assert difference <= STOCK_TOLERANCE
