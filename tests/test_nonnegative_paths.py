"""The shorter path of sign-splitting rules on inputs that are >= 0 by construction.

:mod:`tfxai.signs` marks the tensors a ReLU (and pooling, reshaping, merging
of ReLU outputs) makes non-negative; AlphaBeta, ZPlus and GeneralizedGamma
then skip the terms of ``a^-`` and reuse the forward pass's ``z``. Each case
here checks that path against a literal float64 NumPy re-implementation of
the rule and against the general path on the same tensors.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxai import canonizers, graph, reverse, rules, signs

try:
    from tests import numpy_reference as ref
    from tests.test_rules import DTYPES, assert_close
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import numpy_reference as ref
    from test_rules import DTYPES, assert_close

L = keras.layers
BATCH = 3


def generalized_gamma_reference(a, W, b, R, gamma):
    """``R_j = sum_k (z_jk + g z_jk^s) / (z_k + g (sum_j z_jk^s + b_k^s)) R_k``, ``s`` the sign of ``z_k``."""

    def one(a_n, R_n):
        zjk = a_n[:, None] * W
        z = zjk.sum(axis=0) + b
        up = z >= 0
        same = np.where(up, np.maximum(zjk, 0.0), np.minimum(zjk, 0.0))
        same_b = np.where(up, np.maximum(b, 0.0), np.minimum(b, 0.0))
        denominator = z + gamma * (same.sum(axis=0) + same_b)
        magnitude = (1 + gamma) * (np.abs(zjk).sum(axis=0) + np.abs(b))
        return ref.redistribute(zjk + gamma * same, denominator, R_n, magnitude)

    return ref._per_sample(one, a.shape[0], a, R)


@dataclasses.dataclass
class ReluCase:
    node: object
    state: object
    a: np.ndarray  # (batch, n_in): the ReLU output the weighted layer saw, float64
    W: np.ndarray
    b: np.ndarray
    R: np.ndarray
    out_shape: tuple


def relu_case(kind, use_bias, dtype) -> ReluCase:
    """``Input -> ReLU -> Dense/Conv2D`` with seeded weights and bias of both signs."""
    rng = np.random.default_rng(17 + (kind == "conv") + 2 * use_bias)
    input_shape = (7,) if kind == "dense" else (5, 5, 2)
    if kind == "dense":
        layer = L.Dense(4, use_bias=use_bias, dtype=dtype)
        kernel = rng.normal(size=(7, 4))
    else:
        layer = L.Conv2D(3, 3, padding="same", use_bias=use_bias, dtype=dtype)
        kernel = rng.normal(size=(3, 3, 2, 3))
    inputs = keras.Input(input_shape, dtype=dtype)
    model = keras.Model(inputs, layer(L.ReLU(dtype=dtype)(inputs)))
    bias = np.where(np.arange(kernel.shape[-1]) % 2 == 0, 1.0, -1.0) * rng.uniform(0.2, 1.0, kernel.shape[-1])
    layer.set_weights([kernel.astype(dtype)] + ([bias.astype(dtype)] if use_bias else []))
    x = rng.normal(size=(BATCH,) + input_shape).astype(dtype)
    view = canonizers.canonize(graph.build_view(model))
    _, states = reverse.forward(view, [tf.constant(x)])
    node = next(n for n in view.nodes if n.layer is layer)
    kernel64 = kernel.astype(dtype).astype(np.float64)
    if kind == "dense":
        W, _, out_shape = ref.dense_matrix(kernel64, input_shape)
    else:
        W, _, out_shape = ref.conv2d_matrix(kernel64, input_shape, (1, 1), "same")
    b = ref.expand_bias(bias.astype(dtype).astype(np.float64) if use_bias else None, out_shape)
    a = np.maximum(x.astype(np.float64), 0.0).reshape(BATCH, -1)
    R = rng.normal(size=(BATCH, W.shape[1])).astype(dtype).astype(np.float64)
    return ReluCase(node, states[node.name], a, W, b, R, out_shape)


CASES = {
    "AlphaBeta_2_1": (
        lambda: rules.AlphaBeta(2.0, 1.0),
        lambda c: ref.lrp_alpha_beta(c.a, c.W, c.b, c.R, 2, 1),
    ),
    "AlphaBeta_2_1_IB": (
        lambda: rules.AlphaBeta(2.0, 1.0, ignore_bias=True),
        lambda c: ref.lrp_alpha_beta(c.a, c.W, 0 * c.b, c.R, 2, 1),
    ),
    "AlphaBeta_1_0": (
        lambda: rules.AlphaBeta(1.0, 0.0),
        lambda c: ref.lrp_alpha_beta(c.a, c.W, c.b, c.R, 1, 0),
    ),
    "ZPlus": (lambda: rules.ZPlus(), lambda c: ref.lrp_alpha_beta(c.a, c.W, 0 * c.b, c.R, 1, 0)),
    "GeneralizedGamma": (
        lambda: rules.GeneralizedGamma(0.25),
        lambda c: generalized_gamma_reference(c.a, c.W, c.b, c.R, 0.25),
    ),
    "GeneralizedGamma_1_IB": (
        lambda: rules.GeneralizedGamma(1.0, ignore_bias=True),
        lambda c: generalized_gamma_reference(c.a, c.W, 0 * c.b, c.R, 1.0),
    ),
}


def run(rule, case, state, dtype):
    relevance = tf.constant(case.R.reshape((BATCH,) + case.out_shape), dtype)
    (got,) = rule.backward(case.node, state, [relevance])
    return np.asarray(got, np.float64).reshape(BATCH, -1)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("use_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("rule_name", list(CASES))
def test_nonnegative_path_matches_reference_and_general_path(rule_name, kind, use_bias, dtype):
    make, reference = CASES[rule_name]
    case = relu_case(kind, use_bias, dtype)
    assert case.state.nonnegative == (True,)
    expected, scale = reference(case)
    fast = run(make(), case, case.state, dtype)
    assert_close(fast, expected, scale, dtype, f"{rule_name} on a ReLU output")
    general = run(make(), case, dataclasses.replace(case.state, nonnegative=()), dtype)
    assert_close(fast, general, scale, dtype, f"{rule_name}: short path against the general path")


@pytest.mark.parametrize(
    "make, fast_terms, general_terms",
    [
        (lambda: rules.AlphaBeta(2.0, 1.0), 2, 4),
        (lambda: rules.ZPlus(), 1, 2),
        (lambda: rules.GeneralizedGamma(0.25), 2, 5),
    ],
    ids=["AlphaBeta_2_1", "ZPlus", "GeneralizedGamma"],
)
def test_nonnegative_inputs_halve_the_terms(make, fast_terms, general_terms):
    """Each term is a convolution's transposed convolution: the short path runs fewer."""
    case = relu_case("conv", True, "float32")
    assert len(make().terms(case.node, case.state)) == fast_terms
    general = dataclasses.replace(case.state, nonnegative=())
    assert len(make().terms(case.node, general)) == general_terms


def test_nonnegative_keys_follow_rectifiers_through_sign_keeping_layers():
    inputs = keras.Input((8, 8, 2))
    c1 = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    pooled = L.MaxPooling2D(name="pool")(c1)
    c2 = L.Conv2D(4, 3, padding="same", name="c2")(pooled)
    added = L.Add(name="add")([c2, pooled])
    rectified = L.ReLU(name="relu")(added)
    leaky = L.LeakyReLU(negative_slope=0.1, name="leaky")(rectified)
    mixed = L.Concatenate(name="concat")([rectified, leaky])
    flat = L.Flatten(name="flat")(L.GlobalAveragePooling2D(name="gap")(rectified))
    d1 = L.Dense(3, name="d1")(flat)
    d2 = L.Dense(3, name="d2")(L.Flatten(name="flat2")(mixed))
    model = keras.Model(inputs, [d1, d2])
    view = canonizers.canonize(graph.build_view(model))
    _, states = reverse.forward(view, [tf.zeros((1, 8, 8, 2))])
    flags = {name: state.nonnegative for name, state in states.items()}
    assert flags["c1"] == (False,)  # the model input
    assert flags["c1/activation"] == (False,)  # z of c1
    assert flags["pool"] == (True,)
    assert flags["c2"] == (True,)
    assert flags["add"] == (False, True)  # c2's z is signed
    assert flags["leaky"] == (True,)
    assert flags["concat"] == (True, False)  # a leaky ReLU output can be < 0
    assert flags["d1"] == (True,)  # ReLU -> global average pooling -> flatten
    assert flags["d2"] == (False,)
    nonnegative = signs.nonnegative_keys(view)
    relu_node = next(n for n in view.nodes if n.name == "relu")
    assert relu_node.outputs[0] in nonnegative
    # a value given from outside (Integrated Gradients' overrides) is never assumed >= 0
    assert relu_node.outputs[0] not in signs.nonnegative_keys(view, unknown={relu_node.outputs[0]: None})
