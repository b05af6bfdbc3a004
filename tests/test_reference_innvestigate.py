"""tfxai against iNNvestigate 2.1.2 (TensorFlow 2.14), number for number.

The golden heatmaps in tests/reference/data/innvestigate.npz were computed by
iNNvestigate on the four reference networks (tests/reference/networks.py) with
the same weights and inputs; tests/reference/README.md says how to regenerate
them. Each (network, method) pair either agrees within
:data:`~reference.golden.TOLERANCE`, or differs by a convention documented in
docs/migrating_from_innvestigate.md. A documented difference is checked by
values, never by the difference alone:

1. tfxai's own heatmap (on a float64 twin of the network) equals the float64
   NumPy oracle of tests/reference/numpy_lrp.py in tfxai's documented
   convention, within :data:`~reference.golden.ORACLE_TOLERANCE`: explicit
   ``z_jk`` matrices, BatchNorm folded by hand, no tfxai code;
2. the same oracle in iNNvestigate's convention (full bias in both alpha-beta
   denominators; BatchNorm as a separate surrogate layer with
   ``gamma / sqrt(var**2 + eps)`` and the analyzer's BatchNorm rule; deep
   Taylor passing BatchNorm, average pooling, ``Add`` and ``Activation``
   layers by their gradient) reproduces the golden heatmap within
   :data:`~reference.golden.TOLERANCE`, so the documented convention is the
   whole difference;
3. where tfxai's rules can express iNNvestigate's convention
   (:data:`REPRODUCTIONS`: alpha-beta's bias, deep Taylor's routing), tfxai
   with them reproduces the golden heatmap too;
4. and the difference still shows (more than
   :data:`~reference.golden.DIFFERENCE_FLOOR`), so the documentation stays true.

No case is left out: iNNvestigate's BatchNorm treatment, which tfxai's rules
cannot express (tfxai always folds BatchNorm), is reproduced by the NumPy
oracle (2.) for every method on the BatchNorm networks.
"""

from __future__ import annotations

import dataclasses
import functools

import keras
import pytest

from reference import golden, networks, numpy_lrp
from reference.conventions import FullBiasAlphaBeta
from tfxai import registry, rules
from tfxai.composites import FIRST

LOW_HIGH = {"low": networks.LOW, "high": networks.HIGH}


@dataclasses.dataclass
class Method:
    """How to ask tfxai for what an iNNvestigate analyzer computes."""

    analyzer: str
    params: dict = dataclasses.field(default_factory=dict)
    times_logit: bool = False
    """iNNvestigate starts guided backprop and deconvnet from the logit, tfxai from 1."""


METHODS = {
    "gradient": Method("gradient"),
    "input_t_gradient": Method("input_t_gradient"),
    "integrated_gradients": Method("integrated_gradients", {"steps": 64, "method": "riemann_left"}),
    "guided_backprop": Method("guided_backprop", times_logit=True),
    "deconvnet": Method("deconvnet", times_logit=True),
    "lrp.z": Method("lrp.z"),
    "lrp.epsilon": Method("lrp.epsilon"),
    "lrp.epsilon_0.1": Method("lrp.epsilon", {"epsilon": 0.1}),
    "lrp.alpha_1_beta_0": Method("lrp.alpha_1_beta_0"),
    "lrp.alpha_1_beta_0_IB": Method("lrp.alpha_1_beta_0_IB"),
    "lrp.alpha_2_beta_1": Method("lrp.alpha_2_beta_1"),
    "lrp.alpha_2_beta_1_IB": Method("lrp.alpha_2_beta_1_IB"),
    "lrp.z_plus": Method("lrp.z_plus"),
    "lrp.w_square": Method("lrp.w_square"),
    "lrp.flat": Method("lrp.flat"),
    "lrp.bounded": Method("lrp.bounded", LOW_HIGH),
    "lrp.sequential_preset_a": Method("lrp.sequential_preset_a"),
    "lrp.sequential_preset_b": Method("lrp.sequential_preset_b"),
    "lrp.sequential_preset_a_flat": Method("lrp.sequential_preset_a_flat"),
    "lrp.sequential_preset_b_flat": Method("lrp.sequential_preset_b_flat"),
    "deep_taylor": Method("deep_taylor"),
    "deep_taylor.bounded": Method("deep_taylor.bounded", LOW_HIGH),
}
"""iNNvestigate method (golden key) -> the tfxai analyzer that computes it."""

BN_UNIT_METHODS = ("lrp.z", "lrp.epsilon", "lrp.epsilon_0.1")
"""Methods stored for ``bn_unit`` (BatchNorm gamma = variance = 1)."""

# Why tfxai's default differs from iNNvestigate (docs/migrating_from_innvestigate.md explains each).
ALPHA_BETA_BIAS = "alpha-beta: iNNvestigate adds the full bias to both denominators, tfxai b+ and b-"
DEEP_TAYLOR_ROUTING = "deep Taylor: iNNvestigate passes average pooling and Add by the plain gradient"
DEEP_TAYLOR_BATCHNORM = "deep Taylor: iNNvestigate passes BatchNorm by its gradient (scales by gamma / sigma)"
BATCHNORM_FORMULA = "BatchNorm: iNNvestigate's surrogate divides by sqrt(var**2 + eps), shifts without gamma"
BATCHNORM_SEPARATE = "BatchNorm: iNNvestigate applies the rule to BatchNorm as its own layer, tfxai folds it"

DEEP_TAYLOR_RULES = [(keras.layers.AveragePooling2D, rules.Route()), (keras.layers.Add, rules.Route())]


def _full_bias(selector, alpha, beta, first_flat=False):
    """``rules=`` giving ``selector`` iNNvestigate's alpha-beta.

    Entries of ``rules=`` come before the preset's own, so a preset's Flat first
    layer must be repeated.
    """
    first = [(FIRST, rules.Flat())] if first_flat else []
    return {"rules": first + [(selector, FullBiasAlphaBeta(alpha, beta))]}


REPRODUCTIONS = {
    "lrp.alpha_1_beta_0": _full_bias(registry.LINEAR, 1.0, 0.0),
    "lrp.alpha_2_beta_1": _full_bias(registry.LINEAR, 2.0, 1.0),
    "lrp.sequential_preset_a": _full_bias(registry.CONV, 1.0, 0.0),
    "lrp.sequential_preset_b": _full_bias(registry.CONV, 2.0, 1.0),
    "lrp.sequential_preset_a_flat": _full_bias(registry.CONV, 1.0, 0.0, first_flat=True),
    "lrp.sequential_preset_b_flat": _full_bias(registry.CONV, 2.0, 1.0, first_flat=True),
    "deep_taylor": {"rules": DEEP_TAYLOR_RULES},
    "deep_taylor.bounded": {"rules": DEEP_TAYLOR_RULES},
}
"""Extra analyzer parameters that make tfxai follow iNNvestigate's convention for a method."""

REPRODUCIBLE = (ALPHA_BETA_BIAS, DEEP_TAYLOR_ROUTING)
"""Differences :data:`REPRODUCTIONS` removes with tfxai's rules (tfxai cannot apply a rule to an
unfolded BatchNorm; the NumPy oracle reproduces the BatchNorm differences)."""

_PRESETS = [m for m in METHODS if m.startswith("lrp.sequential_preset")]
_ALPHA_BETA = ["lrp.alpha_1_beta_0", "lrp.alpha_2_beta_1"]
_DEEP_TAYLOR = ["deep_taylor", "deep_taylor.bounded"]
_BN_AGREE = {"lrp.w_square", "lrp.flat"}
"""LRP methods on ``bn`` whose rule makes BatchNorm's treatment irrelevant."""

DIFFERENCES = {
    **{("mlp", m): ALPHA_BETA_BIAS for m in _ALPHA_BETA},
    **{(net, m): ALPHA_BETA_BIAS for net in ("cnn", "residual") for m in _ALPHA_BETA + _PRESETS},
    **{(net, m): DEEP_TAYLOR_ROUTING for net in ("cnn", "residual") for m in _DEEP_TAYLOR},
    **{("bn", m): DEEP_TAYLOR_BATCHNORM for m in _DEEP_TAYLOR},
    **{
        ("bn", m): BATCHNORM_FORMULA if m in ("lrp.z", "lrp.epsilon") else BATCHNORM_SEPARATE
        for m in METHODS
        if m.startswith("lrp.") and m not in _BN_AGREE
    },
    ("bn_unit", "lrp.epsilon_0.1"): BATCHNORM_SEPARATE,
}
"""(network, method) -> the documented reason tfxai's default differs from iNNvestigate there."""

PAIRS = [(net, m) for net in networks.NETWORKS for m in METHODS] + [("bn_unit", m) for m in BN_UNIT_METHODS]


def tfxai_relevance(network, method, dtype="float32", **extra):
    spec = METHODS[method]
    relevance = golden.analyze(network, spec.analyzer, dtype=dtype, **spec.params, **extra)
    return relevance * golden.target_logits(network) if spec.times_logit else relevance


def reference(network, method):
    return golden.load("innvestigate")[f"{network}/{method}"]


@functools.lru_cache(maxsize=None)
def oracle(network, method, library):
    """The float64 NumPy oracle's heatmap of ``method`` in ``library``'s convention."""
    return numpy_lrp.relevance(golden.load("networks"), network, method, library)


def test_golden_file_covers_every_pair():
    stored = golden.load("innvestigate")
    assert not [key for key in stored if key.endswith("/error")]
    missing = [f"{net}/{m}" for net, m in PAIRS if f"{net}/{m}" not in stored]
    assert not missing, f"regenerate tests/reference/data (see its README): missing {missing}"


def test_reference_logits_match_keras3():
    for network in networks.NETWORKS + ("bn_unit",):
        x, _ = golden.inputs(network)
        logits = golden.model(network)(x, training=False)
        assert golden.relative_difference(logits, golden.load("innvestigate")[f"{network}/logits"]) < 1e-6


@pytest.mark.parametrize("network, method", [p for p in PAIRS if p not in DIFFERENCES])
def test_agrees_with_innvestigate(network, method):
    difference = golden.relative_difference(tfxai_relevance(network, method), reference(network, method))
    assert difference <= golden.TOLERANCE


@pytest.mark.parametrize("network, method", sorted(DIFFERENCES))
@pytest.mark.slow
def test_documented_difference(network, method):
    reason = DIFFERENCES[(network, method)]
    own = golden.relative_difference(tfxai_relevance(network, method, "float64"), oracle(network, method, "tfxai"))
    assert own <= golden.ORACLE_TOLERANCE, "tfxai no longer computes its documented convention"
    reproduced = golden.relative_difference(oracle(network, method, "innvestigate"), reference(network, method))
    assert reproduced <= golden.TOLERANCE, f"the NumPy oracle does not reproduce iNNvestigate: {reason}"
    if reason in REPRODUCIBLE:
        with_rules = tfxai_relevance(network, method, **REPRODUCTIONS[method])
        assert golden.relative_difference(with_rules, reference(network, method)) <= golden.TOLERANCE, reason
    default = golden.relative_difference(tfxai_relevance(network, method), reference(network, method))
    assert default > golden.DIFFERENCE_FLOOR, f"documented difference no longer shows: {reason}"
