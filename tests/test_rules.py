"""Each rule of tfxai.rules against a literal NumPy re-implementation.

Every test builds a one-layer Keras model, canonizes its graph, runs the
forward replay and calls ``rule.backward(node, state, [R])`` directly with a
random relevance ``R``. The expected values come from ``numpy_reference``
(float64, explicit loops / explicit ``z_jk`` matrices, no TensorFlow).

Models run in float64 (tight tolerance: checks the formula) and in float32
(the usual case: tolerance from the reference's rounding bound).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import canonizers, graph, reverse, rules

try:
    from tests import numpy_reference as ref
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import numpy_reference as ref

# dtype -> (rtol, unit roundoff)
DTYPES = {"float64": (1e-9, 2.0**-53), "float32": (1e-5, 2.0**-24)}


def assert_close(got, expected, scale=None, dtype="float64", what=""):
    """``|got - expected| <= rtol |expected| + atol`` element-wise.

    ``atol`` is ``rtol * max|expected|`` plus a multiple of the unit roundoff
    times the reference's rounding bound ``scale`` (large only where a
    denominator is nearly cancelled).
    """
    rtol, unit = DTYPES[dtype]
    expected = np.asarray(expected, np.float64)
    got = np.asarray(got, np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != expected {expected.shape}"
    assert np.all(np.isfinite(got)), f"{what}: non-finite values {got}"
    atol = rtol * max(np.max(np.abs(expected), initial=0.0), 1e-30)
    if scale is not None:
        atol = atol + 256 * unit * np.asarray(scale, np.float64).reshape(expected.shape)
    excess = np.abs(got - expected) - (rtol * np.abs(expected) + atol)
    if np.any(excess > 0):
        worst = np.unravel_index(np.argmax(excess), expected.shape)
        raise AssertionError(
            f"{what}: {int(np.sum(excess > 0))} of {expected.size} values differ; worst at {worst}: "
            f"got {got[worst]!r}, expected {expected[worst]!r} "
            f"(max abs diff {np.max(np.abs(got - expected)):.3e})"
        )


def seed_of(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


def run_node(model, xs, dtype):
    """Canonize ``model``, replay it on ``xs``; return ``(view, values, states)``."""
    view = canonizers.canonize(graph.build_view(model))
    values, states = reverse.forward(view, [tf.constant(x, dtype) for x in xs])
    return view, values, states


def first_node_of(view, layer):
    node = view.nodes[0]
    assert node.layer is layer, [n.name for n in view.nodes]
    return node


def backward(rule, node, state, relevance, dtype):
    out = rule.backward(node, state, [tf.constant(r, dtype) for r in relevance])
    return [np.asarray(r) for r in out]


def as_dtype(array, dtype):
    """The values a model of ``dtype`` actually sees, back in float64."""
    return np.asarray(array).astype(dtype).astype(np.float64)


# --------------------------------------------------------------------------
# One weighted layer: Dense / Conv2D, its explicit matrix and a forward pass
# --------------------------------------------------------------------------

LAYERS = {
    "dense": dict(kind="dense", input_shape=(7,), units=4),
    "dense_relu": dict(kind="dense", input_shape=(7,), units=4, activation="relu"),
    "dense_seq": dict(kind="dense", input_shape=(3, 5), units=4),
    "conv_valid_s1": dict(kind="conv", input_shape=(5, 5, 2), kernel=(3, 3), strides=(1, 1), padding="valid"),
    "conv_same_s1": dict(kind="conv", input_shape=(5, 5, 2), kernel=(3, 3), strides=(1, 1), padding="same"),
    "conv_valid_s2": dict(kind="conv", input_shape=(5, 5, 2), kernel=(3, 3), strides=(2, 2), padding="valid"),
    "conv_same_s2": dict(kind="conv", input_shape=(5, 5, 2), kernel=(3, 3), strides=(2, 2), padding="same"),
    # even size, stride 2, 'same': asymmetric padding (all of it after)
    "conv_same_s2_even": dict(
        kind="conv", input_shape=(6, 6, 2), kernel=(3, 3), strides=(2, 2), padding="same"
    ),
    "conv_rect_relu": dict(
        kind="conv", input_shape=(5, 6, 2), kernel=(2, 3), strides=(2, 1), padding="same", activation="relu"
    ),
}
BATCH = 3
FILTERS = 3


def bounds_for(name, input_shape, rng):
    """ZBox bounds (exactly representable in float32): scalar, per channel, per input."""
    if name == "scalar":
        return -1.0, 1.5
    if name == "channel":
        d = input_shape[-1]
        low = np.array([-1.0, -0.5, 0.0, -0.25, 0.25, -2.0, -0.75][:d])
        high = low + np.array([2.0, 1.0, 0.5, 1.25, 1.5, 3.0, 0.75][:d])
        return low.tolist(), high.tolist()
    if name == "mixed":  # scalar low, per-channel high
        d = input_shape[-1]
        return -0.5, (0.5 + 0.25 * np.arange(d)).tolist()
    if name == "pixel":
        low = -0.25 * rng.integers(0, 6, size=input_shape)
        high = low + 0.25 * rng.integers(1, 8, size=input_shape)
        return low, high
    raise ValueError(name)


@dataclasses.dataclass
class LinearCase:
    dtype: str
    view: object
    node: object
    state: object
    a: np.ndarray  # (batch, n_in), float64, the values the model saw
    R: np.ndarray  # (batch, n_out)
    W: np.ndarray  # (n_in, n_out)
    connected: np.ndarray
    b: np.ndarray  # (n_out,), zeros without bias
    out_shape: tuple
    bounds: tuple | None

    def relevance(self):
        return self.R.reshape((BATCH,) + self.out_shape)

    def in_shape(self):
        return self.state.inputs[0].shape


@functools.lru_cache(maxsize=None)
def linear_case(layer_name, use_bias, dtype, box=None) -> LinearCase:
    """A one-layer model with seeded weights of both signs and its reference matrix.

    Inputs are N(0, 1) (both signs) or, with ``box``, uniform in the ZBox bounds
    of that name.
    """
    spec = LAYERS[layer_name]
    rng = np.random.default_rng(seed_of(layer_name, use_bias, box))
    input_shape = spec["input_shape"]
    if spec["kind"] == "dense":
        layer = keras.layers.Dense(
            spec["units"], use_bias=use_bias, activation=spec.get("activation"), dtype=dtype
        )
        kernel_shape, n_out_units = (input_shape[-1], spec["units"]), spec["units"]
    else:
        layer = keras.layers.Conv2D(
            FILTERS,
            spec["kernel"],
            strides=spec["strides"],
            padding=spec["padding"],
            use_bias=use_bias,
            activation=spec.get("activation"),
            dtype=dtype,
        )
        kernel_shape, n_out_units = spec["kernel"] + (input_shape[-1], FILTERS), FILTERS
    inputs = keras.Input(input_shape, dtype=dtype)
    model = keras.Model(inputs, layer(inputs))
    kernel = rng.normal(size=kernel_shape)
    weights = [kernel]
    if use_bias:
        # both signs for sure
        signs = np.where(np.arange(n_out_units) % 2 == 0, 1.0, -1.0)
        weights.append(signs * rng.uniform(0.2, 1.0, size=n_out_units))
    layer.set_weights([w.astype(dtype) for w in weights])

    bounds = None
    if box is None:
        x = rng.normal(size=(BATCH,) + input_shape)
    else:
        bounds = bounds_for(box, input_shape, rng)
        low = np.broadcast_to(np.asarray(bounds[0], np.float64), input_shape)
        high = np.broadcast_to(np.asarray(bounds[1], np.float64), input_shape)
        x = rng.uniform(low, high, size=(BATCH,) + input_shape)
    x = as_dtype(x, dtype)

    view, _, states = run_node(model, [x], dtype)
    node = first_node_of(view, layer)
    state = states[node.name]

    kernel64, bias64 = as_dtype(weights[0], dtype), as_dtype(weights[1], dtype) if use_bias else None
    if spec["kind"] == "dense":
        W, connected, out_shape = ref.dense_matrix(kernel64, input_shape)
    else:
        W, connected, out_shape = ref.conv2d_matrix(kernel64, input_shape, spec["strides"], spec["padding"])
    b = ref.expand_bias(bias64, out_shape)
    R = as_dtype(rng.normal(size=(BATCH, W.shape[1])), dtype)
    return LinearCase(dtype, view, node, state, x.reshape(BATCH, -1), R, W, connected, b, out_shape, bounds)


# --------------------------------------------------------------------------
# The rules under test and their references
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RuleCase:
    make: object  # () -> Rule
    reference: object  # (LinearCase) -> (relevance, scale)
    box: str | None = None  # ZBox cases: inputs inside these bounds


def _bias(case, ignore_bias=False):
    return np.zeros_like(case.b) if ignore_bias else case.b


def _zbox_reference(case):
    low, high = case.bounds
    shape = (BATCH,) + tuple(case.in_shape()[1:])
    low = np.broadcast_to(np.asarray(low, np.float64), shape).reshape(BATCH, -1)
    high = np.broadcast_to(np.asarray(high, np.float64), shape).reshape(BATCH, -1)
    return ref.lrp_zbox(case.a, case.W, case.R, low, high)


def _zbox_case(name):
    def make_rule(case):
        return rules.ZBox(*case.bounds)

    return RuleCase(make_rule, _zbox_reference, box=name)


def _eps(epsilon, ignore_bias=False):
    return RuleCase(
        lambda c: rules.Epsilon(epsilon, ignore_bias=ignore_bias),
        lambda c: ref.lrp_epsilon(c.a, c.W, _bias(c, ignore_bias), c.R, epsilon),
    )


def _gamma(gamma, ignore_bias=False):
    return RuleCase(
        lambda c: rules.Gamma(gamma, ignore_bias=ignore_bias),
        lambda c: ref.lrp_gamma(c.a, c.W, _bias(c, ignore_bias), c.R, gamma),
    )


def _alpha_beta(alpha, beta, ignore_bias=False):
    return RuleCase(
        lambda c: rules.AlphaBeta(alpha, beta, ignore_bias=ignore_bias),
        lambda c: ref.lrp_alpha_beta(c.a, c.W, _bias(c, ignore_bias), c.R, alpha, beta),
    )


LINEAR_RULES = {
    "Z": RuleCase(lambda c: rules.Z(), lambda c: ref.lrp_z(c.a, c.W, c.b, c.R)),
    "Z_IB": RuleCase(lambda c: rules.Z(ignore_bias=True), lambda c: ref.lrp_z(c.a, c.W, 0 * c.b, c.R)),
    "Norm": RuleCase(lambda c: rules.Norm(), lambda c: ref.lrp_z(c.a, c.W, c.b, c.R)),
    "Epsilon_default": RuleCase(
        lambda c: rules.Epsilon(), lambda c: ref.lrp_epsilon(c.a, c.W, c.b, c.R, 1e-7)
    ),
    "Epsilon_0": _eps(0.0),
    "Epsilon_0.01": _eps(0.01),
    "Epsilon_0.25": _eps(0.25),
    "Epsilon_3": _eps(3.0),
    "Epsilon_0.25_IB": _eps(0.25, ignore_bias=True),
    "Gamma_default": RuleCase(lambda c: rules.Gamma(), lambda c: ref.lrp_gamma(c.a, c.W, c.b, c.R, 0.25)),
    "Gamma_0": _gamma(0.0),
    "Gamma_1": _gamma(1.0),
    "Gamma_0.5_IB": _gamma(0.5, ignore_bias=True),
    "AlphaBeta_default": RuleCase(
        lambda c: rules.AlphaBeta(), lambda c: ref.lrp_alpha_beta(c.a, c.W, c.b, c.R, 1.0, 0.0)
    ),
    "AlphaBeta_1_0": _alpha_beta(1.0, 0.0),
    "AlphaBeta_2_1": _alpha_beta(2.0, 1.0),
    "AlphaBeta_1.5_0.5": _alpha_beta(1.5, 0.5),
    "AlphaBeta_1_0_IB": _alpha_beta(1.0, 0.0, ignore_bias=True),
    "AlphaBeta_2_1_IB": _alpha_beta(2.0, 1.0, ignore_bias=True),
    # ZPlus ignores the bias unless told otherwise
    "ZPlus": RuleCase(
        lambda c: rules.ZPlus(), lambda c: ref.lrp_alpha_beta(c.a, c.W, 0 * c.b, c.R, 1.0, 0.0)
    ),
    "ZPlus_bias": RuleCase(
        lambda c: rules.ZPlus(ignore_bias=False), lambda c: ref.lrp_alpha_beta(c.a, c.W, c.b, c.R, 1.0, 0.0)
    ),
    "ZBox_scalar": _zbox_case("scalar"),
    "ZBox_channel": _zbox_case("channel"),
    "ZBox_mixed": _zbox_case("mixed"),
    "ZBox_pixel": _zbox_case("pixel"),
    "WSquare": RuleCase(lambda c: rules.WSquare(), lambda c: ref.lrp_wsquare(c.W, c.R)),
    "Flat": RuleCase(lambda c: rules.Flat(), lambda c: ref.lrp_flat(c.connected, c.R)),
}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("use_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("layer_name", list(LAYERS))
def test_reference_matrix_reproduces_the_layer(layer_name, use_bias, dtype):
    """The explicit patch-extraction matrix computes the layer's own pre-activation."""
    case = linear_case(layer_name, use_bias, dtype)
    expected = ref.linear_forward(case.a, case.W, case.b)
    got = np.asarray(case.state.outputs[0]).reshape(BATCH, -1)
    assert_close(got, expected, np.abs(case.a) @ np.abs(case.W) + np.abs(case.b), dtype, "forward")
    assert case.state.outputs[0].shape[1:] == case.out_shape


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("use_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("layer_name", list(LAYERS))
@pytest.mark.parametrize("rule_name", list(LINEAR_RULES))
def test_linear_rule_matches_reference(rule_name, layer_name, use_bias, dtype):
    spec = LINEAR_RULES[rule_name]
    case = linear_case(layer_name, use_bias, dtype, spec.box)
    rule = spec.make(case)
    (got,) = backward(rule, case.node, case.state, [case.relevance()], dtype)
    expected, scale = spec.reference(case)
    assert got.shape == tuple(case.in_shape())
    assert_close(got.reshape(BATCH, -1), expected, scale, dtype, f"{rule!r} on {layer_name}")


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("rule_name", list(LINEAR_RULES))
def test_linear_rule_in_tf_function_with_unknown_batch(rule_name, jit_compile):
    """Analyzers trace rules once with a ``None`` batch axis; the result must not change."""
    spec = LINEAR_RULES[rule_name]
    case = linear_case("conv_same_s2", True, "float32", spec.box)
    rule = spec.make(case)
    in_spec = tf.TensorSpec((None,) + tuple(case.in_shape()[1:]), tf.float32)
    out_spec = tf.TensorSpec((None,) + case.out_shape, tf.float32)

    @tf.function(input_signature=[in_spec, out_spec], jit_compile=jit_compile)
    def run(x, relevance):
        _, states = reverse.forward(case.view, [x])
        return rule.backward(case.node, states[case.node.name], [relevance])[0]

    x = np.asarray(case.state.inputs[0])
    got = np.asarray(run(tf.constant(x), tf.constant(case.relevance(), tf.float32)))
    expected, scale = spec.reference(case)
    assert_close(got.reshape(BATCH, -1), expected, scale, "float32", f"{rule!r} in tf.function")


def test_cases_exercise_both_signs_and_bias_parts():
    """Guard on the test data itself: the cases above are not degenerate."""
    case = linear_case("conv_same_s1", True, "float64")
    assert (case.a > 0).any() and (case.a < 0).any()
    assert (case.W > 0).any() and (case.W < 0).any()
    assert (case.b > 0).any() and (case.b < 0).any()
    # the bias actually changes AlphaBeta's and Z's results
    with_bias = ref.lrp_alpha_beta(case.a, case.W, case.b, case.R, 2.0, 1.0)[0]
    without = ref.lrp_alpha_beta(case.a, case.W, 0 * case.b, case.R, 2.0, 1.0)[0]
    assert not np.allclose(with_bias, without)
    # rules that must differ do differ on these data
    z = ref.lrp_z(case.a, case.W, case.b, case.R)[0]
    assert not np.allclose(z, ref.lrp_gamma(case.a, case.W, case.b, case.R, 0.25)[0])
    assert not np.allclose(z, ref.lrp_epsilon(case.a, case.W, case.b, case.R, 0.25)[0])
    assert not np.allclose(with_bias, ref.lrp_alpha_beta(case.a, case.W, case.b, case.R, 1.0, 0.0)[0])


@pytest.mark.parametrize("layer_name", ["dense", "conv_same_s2"])
def test_zbox_bounds_keep_the_precision_of_a_float64_model(layer_name):
    """Bounds such as 0.1 (not representable in float32) must not be rounded to float32."""
    case = linear_case(layer_name, True, "float64", "scalar")
    low, high = 0.1, 0.7
    a_rescaled = low + (case.a - case.a.min()) / (case.a.max() - case.a.min()) * (high - low)
    x = a_rescaled.reshape(case.in_shape())
    _, states = reverse.forward(case.view, [tf.constant(x, tf.float64)])
    (got,) = backward(rules.ZBox(low, high), case.node, states[case.node.name], [case.relevance()], "float64")
    expected, scale = ref.lrp_zbox(
        a_rescaled, case.W, case.R, np.full_like(a_rescaled, low), np.full_like(a_rescaled, high)
    )
    assert_close(got.reshape(BATCH, -1), expected, scale, "float64", "ZBox(0.1, 0.7) in float64")


def test_rules_compare_by_type_and_parameters():
    assert rules.Epsilon(0.1) == rules.Epsilon(0.1)
    assert hash(rules.Epsilon(0.1)) == hash(rules.Epsilon(0.1))
    assert rules.Epsilon(0.1) != rules.Epsilon(0.2)
    assert rules.Epsilon(0.1) != rules.Epsilon(0.1, ignore_bias=True)
    assert rules.AlphaBeta(2.0, 1.0) != rules.AlphaBeta(1.0, 0.0)
    assert rules.ZPlus() != rules.AlphaBeta(1.0, 0.0, ignore_bias=True)  # other type
    assert rules.Z() != rules.Norm()
    assert rules.ZBox(-1.0, 1.0) == rules.ZBox(-1.0, 1.0)
    assert rules.ZBox([0.0, -1.0], [1.0, 1.0]) == rules.ZBox([0.0, -1.0], [1.0, 1.0])


def test_zbox_with_array_bounds_compares_without_error():
    """``==`` on rules must not raise for ZBox bounds given as NumPy arrays."""
    low, high = np.zeros((2,)), np.ones((2,))
    assert rules.ZBox(low, high) == rules.ZBox(low.copy(), high.copy())
    assert rules.ZBox(low, high) != rules.ZBox(low, 2 * high)
    assert hash(rules.ZBox(low, high)) == hash(rules.ZBox(low.copy(), high.copy()))
    # a list and an array of the same values are the same bounds; equal rules hash equally
    assert rules.ZBox([0.0, 0.0], [1.0, 1.0]) == rules.ZBox(low, high)
    assert hash(rules.ZBox([0.0, 0.0], [1.0, 1.0])) == hash(rules.ZBox(low, high))


# --------------------------------------------------------------------------
# Epsilon at z == 0: sign(0) = +1
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("epsilon", [0.0, 1e-7, 0.01, 2.0])
def test_epsilon_sign_of_zero_is_plus_one(epsilon, dtype):
    # columns 0 and 2 have z_k == 0 exactly (column 2 through its bias), column 1 not
    kernel = np.array([[1.0, 0.5, 2.0], [-0.5, 0.25, -1.0], [0.0, 1.0, 0.5]])
    bias = np.array([0.0, 0.5, 0.5])
    x = np.array([[1.0, 2.0, -1.0]])
    R = np.array([[0.75, -1.5, 2.0]])
    inputs = keras.Input((3,), dtype=dtype)
    layer = keras.layers.Dense(3, dtype=dtype)
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([kernel.astype(dtype), bias.astype(dtype)])
    view, _, states = run_node(model, [x], dtype)
    node = first_node_of(view, layer)
    np.testing.assert_array_equal(np.asarray(states[node.name].outputs[0]), [[0.0, 0.5, 0.0]])

    (got,) = backward(rules.Epsilon(epsilon), node, states[node.name], [R], dtype)
    expected, scale = ref.lrp_epsilon(x, kernel, bias, R, epsilon)
    assert_close(got, expected, scale, dtype, f"Epsilon({epsilon})")
    # literal: R_j = sum_k a_j w_jk / (z_k + eps sign(z_k)) R_k, with sign(0) = +1
    by_hand = np.zeros(3)
    for j in range(3):
        for k, z in enumerate([0.0, 0.5, 0.0]):
            denominator = z + epsilon * 1.0
            if denominator != 0:
                by_hand[j] += x[0, j] * kernel[j, k] / denominator * R[0, k]
    assert_close(got[0], by_hand, None, dtype, "by hand")
    if epsilon >= 0.01:  # the zero columns dominate and carry the sign of +eps
        assert got[0, 0] > 0 and got[0, 1] < 0


# --------------------------------------------------------------------------
# Norm: average pooling and Add
# --------------------------------------------------------------------------

AVG_POOLS = {
    "pool2": dict(input_shape=(4, 4, 2), pool_size=(2, 2), strides=None, padding="valid"),
    "pool2_odd": dict(input_shape=(5, 5, 2), pool_size=(2, 2), strides=None, padding="valid"),
    "pool2_s1_overlap": dict(input_shape=(4, 4, 2), pool_size=(2, 2), strides=(1, 1), padding="valid"),
    "pool3_s1_same": dict(input_shape=(4, 5, 2), pool_size=(3, 3), strides=(1, 1), padding="same"),
    "pool3_s2_same": dict(input_shape=(5, 5, 3), pool_size=(3, 3), strides=(2, 2), padding="same"),
}


def _positive_or_mixed(rng, shape, sign):
    x = rng.normal(size=shape)
    return np.abs(x) + 0.05 if sign == "positive" else x


def _pool_model(layer_type, spec, dtype):
    inputs = keras.Input(spec["input_shape"], dtype=dtype)
    layer = layer_type(
        pool_size=spec["pool_size"], strides=spec["strides"], padding=spec["padding"], dtype=dtype
    )
    return keras.Model(inputs, layer(inputs)), layer


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("sign", ["positive", "mixed"])
@pytest.mark.parametrize("pool", list(AVG_POOLS))
def test_norm_on_average_pooling(pool, sign, dtype):
    spec = AVG_POOLS[pool]
    rng = np.random.default_rng(seed_of("avg", pool, sign))
    model, layer = _pool_model(keras.layers.AveragePooling2D, spec, dtype)
    x = as_dtype(_positive_or_mixed(rng, (BATCH,) + spec["input_shape"], sign), dtype)
    view, _, states = run_node(model, [x], dtype)
    node = first_node_of(view, layer)
    strides = spec["strides"] or spec["pool_size"]
    out_shape, windows = ref.pool2d_windows(spec["input_shape"], spec["pool_size"], strides, spec["padding"])
    assert states[node.name].outputs[0].shape[1:] == out_shape
    R = as_dtype(rng.normal(size=(BATCH,) + out_shape), dtype)
    (got,) = backward(rules.Norm(), node, states[node.name], [R], dtype)
    expected, scale = ref.norm_pooling(x.reshape(BATCH, -1), windows, R.reshape(BATCH, -1))
    assert_close(got.reshape(BATCH, -1), expected, scale, dtype, f"Norm on {pool}")
    if sign == "positive" and pool in ("pool2", "pool2_s1_overlap", "pool3_s1_same"):
        # every input is in some window and no sum vanishes: exactly conservative
        np.testing.assert_allclose(got.sum(axis=(1, 2, 3)), R.sum(axis=(1, 2, 3)), rtol=1e-5)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_norm_on_global_average_pooling(dtype):
    rng = np.random.default_rng(seed_of("gap"))
    shape = (4, 3, 3)
    inputs = keras.Input(shape, dtype=dtype)
    layer = keras.layers.GlobalAveragePooling2D(dtype=dtype)
    model = keras.Model(inputs, layer(inputs))
    x = as_dtype(rng.normal(size=(BATCH,) + shape), dtype)
    view, _, states = run_node(model, [x], dtype)
    node = first_node_of(view, layer)
    R = as_dtype(rng.normal(size=(BATCH, 3)), dtype)
    (got,) = backward(rules.Norm(), node, states[node.name], [R], dtype)
    _, windows = ref.global_pool_windows(shape)
    expected, scale = ref.norm_pooling(x.reshape(BATCH, -1), windows, R)
    assert_close(got.reshape(BATCH, -1), expected, scale, dtype, "Norm on GlobalAveragePooling2D")


def _add_model(kind, shape, dtype):
    if kind == "add2":
        inputs = [keras.Input(shape, dtype=dtype) for _ in range(2)]
        layer = keras.layers.Add(dtype=dtype)
        return keras.Model(inputs, layer(inputs)), layer
    if kind == "add3":
        inputs = [keras.Input(shape, dtype=dtype) for _ in range(3)]
        layer = keras.layers.Add(dtype=dtype)
        return keras.Model(inputs, layer(inputs)), layer
    inputs = [keras.Input(shape, dtype=dtype) for _ in range(2)]  # the raw operation x + y
    return keras.Model(inputs, inputs[0] + inputs[1]), None


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("kind", ["add2", "add3", "raw_plus"])
def test_norm_on_add(kind, dtype):
    rng = np.random.default_rng(seed_of("add", kind))
    shape = (3, 4)
    model, layer = _add_model(kind, shape, dtype)
    n_inputs = len(model.inputs)
    xs = [rng.normal(size=(BATCH,) + shape) for _ in range(n_inputs)]
    # a few positions where the inputs cancel exactly: nothing is propagated there
    xs[-1][0, 0, :2] = -sum(x[0, 0, :2] for x in xs[:-1])
    xs = [as_dtype(x, dtype) for x in xs]
    view, _, states = run_node(model, xs, dtype)
    node = view.nodes[0]
    if layer is not None:
        assert node.layer is layer
    state = states[node.name]
    R = as_dtype(rng.normal(size=(BATCH,) + shape), dtype)
    got = backward(rules.Norm(), node, state, [R], dtype)
    expected, scales = ref.norm_add(xs, R)
    assert len(got) == n_inputs
    for i in range(n_inputs):
        assert_close(got[i], expected[i], scales[i], dtype, f"Norm on {kind}, input {i}")
    if n_inputs == 2:  # exact cancellation is exact in floating point only for two terms
        for i in range(n_inputs):
            np.testing.assert_array_equal(got[i][0, 0, :2], 0.0)


# --------------------------------------------------------------------------
# Route: max pooling (winner-take-all), Concatenate (split)
# --------------------------------------------------------------------------

MAX_POOLS = {
    "pool2": dict(input_shape=(4, 4, 2), pool_size=(2, 2), strides=None, padding="valid"),
    "pool2_s1_overlap": dict(input_shape=(4, 4, 2), pool_size=(2, 2), strides=(1, 1), padding="valid"),
    "pool3_s1_same": dict(input_shape=(4, 5, 2), pool_size=(3, 3), strides=(1, 1), padding="same"),
    "pool3_s2_same": dict(input_shape=(5, 5, 3), pool_size=(3, 3), strides=(2, 2), padding="same"),
}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("pool", list(MAX_POOLS))
def test_route_on_max_pooling(pool, dtype):
    spec = MAX_POOLS[pool]
    rng = np.random.default_rng(seed_of("max", pool))
    model, layer = _pool_model(keras.layers.MaxPooling2D, spec, dtype)
    x = as_dtype(rng.normal(size=(BATCH,) + spec["input_shape"]), dtype)  # no ties
    view, _, states = run_node(model, [x], dtype)
    node = first_node_of(view, layer)
    strides = spec["strides"] or spec["pool_size"]
    out_shape, windows = ref.pool2d_windows(spec["input_shape"], spec["pool_size"], strides, spec["padding"])
    R = as_dtype(rng.normal(size=(BATCH,) + out_shape), dtype)
    (got,) = backward(rules.Route(), node, states[node.name], [R], dtype)
    expected = ref.max_route(x.reshape(BATCH, -1), windows, R.reshape(BATCH, -1))
    assert_close(got.reshape(BATCH, -1), expected, None, dtype, f"Route on max {pool}")
    # winner-take-all: relevance only where some window's maximum is, and conserved
    np.testing.assert_allclose(got.sum(axis=(1, 2, 3)), R.sum(axis=(1, 2, 3)), rtol=1e-5, atol=1e-6)
    assert np.count_nonzero(got) < got.size


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_route_on_global_max_pooling(dtype):
    rng = np.random.default_rng(seed_of("gmp"))
    shape = (3, 4, 2)
    inputs = keras.Input(shape, dtype=dtype)
    layer = keras.layers.GlobalMaxPooling2D(dtype=dtype)
    model = keras.Model(inputs, layer(inputs))
    x = as_dtype(rng.normal(size=(BATCH,) + shape), dtype)
    view, _, states = run_node(model, [x], dtype)
    node = first_node_of(view, layer)
    R = as_dtype(rng.normal(size=(BATCH, 2)), dtype)
    (got,) = backward(rules.Route(), node, states[node.name], [R], dtype)
    _, windows = ref.global_pool_windows(shape)
    expected = ref.max_route(x.reshape(BATCH, -1), windows, R)
    assert_close(got.reshape(BATCH, -1), expected, None, dtype, "Route on GlobalMaxPooling2D")


CONCATS = {
    "last_axis": dict(shapes=[(4, 4, 2), (4, 4, 3)], axis=-1),
    "axis1_three": dict(shapes=[(2, 3), (4, 3), (1, 3)], axis=1),
}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("concat", list(CONCATS))
def test_route_on_concatenate(concat, dtype):
    spec = CONCATS[concat]
    rng = np.random.default_rng(seed_of("concat", concat))
    inputs = [keras.Input(s, dtype=dtype) for s in spec["shapes"]]
    layer = keras.layers.Concatenate(axis=spec["axis"], dtype=dtype)
    model = keras.Model(inputs, layer(inputs))
    xs = [as_dtype(rng.normal(size=(BATCH,) + s), dtype) for s in spec["shapes"]]
    view, _, states = run_node(model, xs, dtype)
    node = first_node_of(view, layer)
    R = as_dtype(rng.normal(size=tuple(states[node.name].outputs[0].shape)), dtype)
    got = backward(rules.Route(), node, states[node.name], [R], dtype)
    expected = ref.concatenate_split([(BATCH,) + s for s in spec["shapes"]], R, spec["axis"])
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


# --------------------------------------------------------------------------
# Pass
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda dtype: keras.layers.ReLU(dtype=dtype),
        lambda dtype: keras.layers.Activation("tanh", dtype=dtype),
        lambda dtype: keras.layers.Dropout(0.5, dtype=dtype),
    ],
    ids=["ReLU", "tanh", "Dropout"],
)
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_pass_is_identity(make_layer, dtype):
    rng = np.random.default_rng(seed_of("pass"))
    inputs = keras.Input((3, 4), dtype=dtype)
    layer = make_layer(dtype)
    model = keras.Model(inputs, layer(inputs))
    x = as_dtype(rng.normal(size=(BATCH, 3, 4)), dtype)
    view, _, states = run_node(model, [x], dtype)
    node = first_node_of(view, layer)
    R = as_dtype(rng.normal(size=(BATCH, 3, 4)), dtype)
    (got,) = backward(rules.Pass(), node, states[node.name], [R], dtype)
    np.testing.assert_array_equal(got, R)


def test_pass_rejects_a_node_with_several_inputs():
    model, layer = _add_model("add2", (3,), "float32")
    view, _, states = run_node(model, [np.ones((1, 3)), np.ones((1, 3))], "float32")
    node = first_node_of(view, layer)
    with pytest.raises(ValueError, match="Pass expects one input"):
        rules.Pass().backward(node, states[node.name], [tf.ones((1, 3))])


# --------------------------------------------------------------------------
# Weightless nodes with Flat / WSquare / Epsilon (allowed)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("rule", [rules.Flat(), rules.WSquare()], ids=["Flat", "WSquare"])
def test_flat_and_wsquare_on_average_pooling_spread_uniformly(rule):
    """Without weights, both spread each output's relevance evenly over its window."""
    spec = AVG_POOLS["pool3_s1_same"]
    rng = np.random.default_rng(seed_of("flatpool"))
    model, layer = _pool_model(keras.layers.AveragePooling2D, spec, "float64")
    x = rng.normal(size=(BATCH,) + spec["input_shape"])
    view, _, states = run_node(model, [x], "float64")
    node = first_node_of(view, layer)
    out_shape, windows = ref.pool2d_windows(spec["input_shape"], spec["pool_size"], (1, 1), "same")
    R = rng.normal(size=(BATCH,) + out_shape)
    (got,) = backward(rule, node, states[node.name], [R], "float64")
    connected = np.zeros((x[0].size, len(windows)), bool)
    for k, window in enumerate(windows):
        connected[window, k] = True
    expected, scale = ref.lrp_flat(connected, R.reshape(BATCH, -1))
    assert_close(got.reshape(BATCH, -1), expected, scale, "float64", f"{rule!r} on average pooling")


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: rules.AlphaBeta(alpha=2.0, beta=0.0), "alpha - beta"),
        (lambda: rules.AlphaBeta(alpha=1.0, beta=1.0), "alpha - beta"),
        (lambda: rules.AlphaBeta(alpha=3.0, beta=1.0), "alpha - beta"),
        (lambda: rules.AlphaBeta(alpha=0.5, beta=-0.5), "beta to be a finite number >= 0"),
        (lambda: rules.Epsilon(-1e-3), "epsilon to be a finite number >= 0"),
        (lambda: rules.Epsilon(epsilon=-1.0, ignore_bias=True), "epsilon to be a finite number >= 0"),
        (lambda: rules.Gamma(-0.25), "gamma to be a finite number >= 0"),
        (lambda: rules.ZBox(low=1.0, high=0.0), "low <= high"),
        (lambda: rules.ZBox(low=[0.0, 2.0], high=[1.0, 1.0]), "low <= high"),
        (lambda: rules.ZBox(low=np.zeros((2, 2, 2)), high=-np.ones((2, 2, 2))), "low <= high"),
    ],
    ids=[
        "alphabeta_2_0",
        "alphabeta_1_1",
        "alphabeta_3_1",
        "alphabeta_negative_beta",
        "epsilon_negative",
        "epsilon_negative_ib",
        "gamma_negative",
        "zbox_scalar",
        "zbox_one_channel",
        "zbox_array",
    ],
)
def test_invalid_rule_parameters_are_rejected(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: rules.AlphaBeta(1.0, 0.0),
        lambda: rules.AlphaBeta(2.0, 1.0),
        lambda: rules.AlphaBeta(1.5, 0.5),
        lambda: rules.Epsilon(0.0),
        lambda: rules.Gamma(0.0),
        lambda: rules.ZBox(0.0, 0.0),
        lambda: rules.ZBox([-1.0, 0.0], [1.0, 0.0]),
    ],
)
def test_valid_boundary_parameters_are_accepted(make):
    assert isinstance(make(), rules.Rule)


def _model_with_pool(pool_type):
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    h = pool_type(2, name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    return keras.Model(inputs, keras.layers.Dense(2, name="dense")(h))


@functools.lru_cache(maxsize=None)
def _cached_pool_model(pool_type):
    return _model_with_pool(pool_type)


@pytest.mark.parametrize(
    "rule",
    [
        rules.Gamma(),
        rules.AlphaBeta(1.0, 0.0),
        rules.AlphaBeta(2.0, 1.0),
        rules.ZPlus(),
        rules.ZBox(-1.0, 1.0),
    ],
    ids=["Gamma", "AlphaBeta_1_0", "AlphaBeta_2_1", "ZPlus", "ZBox"],
)
@pytest.mark.parametrize(
    "pool_type", [keras.layers.AveragePooling2D, keras.layers.MaxPooling2D], ids=["avg", "max"]
)
def test_weight_rules_by_name_on_a_weightless_node_raise(rule, pool_type):
    model = _cached_pool_model(pool_type)
    assert rule.requires_weights
    with pytest.raises(tfxai.ModelError, match=r"modifies weights.*'pool'.*has none") as info:
        tfxai.create_analyzer("lrp.epsilon", model, rules=[("pool", rule)])
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "rule",
    [rules.Epsilon(0.1), rules.Z(), rules.Flat(), rules.WSquare()],
    ids=["Epsilon", "Z", "Flat", "WSquare"],
)
def test_rules_without_weight_changes_are_accepted_on_a_pool(rule):
    assert not rule.requires_weights
    model = _cached_pool_model(keras.layers.AveragePooling2D)
    analyzer = tfxai.create_analyzer("lrp.epsilon", model, rules=[("pool", rule)])
    assert analyzer.assignment["pool"] == rule
