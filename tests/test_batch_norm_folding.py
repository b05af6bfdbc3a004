"""BatchNorm folding: backward, forward (through pooling / Flatten), no-ops, and the element-wise default.

The forward fold moves ``y = s * x + t`` into the next linear layer:
``W (s x + t) + b = (W s) x + (W t + b)``. Each case checks (1) the canonized
replay equals ``model(x)``, (2) the folded kernel and bias equal a literal
NumPy computation from the layers' weights, (3) provenance. LRP results on a
model with a forward-folded BatchNorm are compared with a literal NumPy
re-implementation of the folded network (the exact-merge convention of
zennit's ``SequentialMergeBatchNorm``, applied to the layer after).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
import tfxai
from tfxai import registry, reverse, rules
from tfxai.errors import ModelError
from conftest import make_inputs, predict

L = keras.layers
SHAPE = (6, 6, 3)


def _randomize(model, seed, center=True):
    """Non-trivial statistics (and negative scales) for every BatchNorm."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.5, c).astype("float32") if center else np.zeros(c, "float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, c).astype("float32"))
            layer.gamma.assign((rng.uniform(0.5, 2.0, c) * rng.choice([-1, 1], c)).astype("float32"))
            if layer.beta is not None:
                layer.beta.assign(rng.normal(0, 0.5, c).astype("float32"))
    return model


def _scale_shift(layer):
    """``s, t`` of an inference BatchNorm, in float64 NumPy."""
    var = np.asarray(layer.moving_variance, np.float64)
    s = np.asarray(layer.gamma, np.float64) / np.sqrt(var + layer.epsilon)
    t = -np.asarray(layer.moving_mean, np.float64) * s
    return s, t + (0.0 if layer.beta is None else np.asarray(layer.beta, np.float64))


def _model(head, seed=0, before=None):
    keras.utils.set_random_seed(seed)
    x = keras.Input(SHAPE, name="x")
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    h = L.BatchNormalization(name="bn")(h if before is None else before(h))
    y = head(h)
    return _randomize(keras.Model(x, y, name="bn_forward"), seed)


def _dense(name="fc"):
    return L.Dense(3, bias_initializer="he_normal", name=name)


FORWARD = {
    # name: (head after the BatchNorm, folded node name, flattened before the Dense?)
    "gap_dense": (lambda h: _dense()(L.GlobalAveragePooling2D()(h)), "bn+fc"),
    "flatten_dense": (lambda h: _dense()(L.Flatten()(h)), "bn+fc"),
    "avgpool_same_flatten_dense": (
        lambda h: _dense()(L.Flatten()(L.AveragePooling2D(4, 2, padding="same")(h))),
        "bn+fc",
    ),
    "dropout_noise_gap_dense": (
        lambda h: _dense()(L.GlobalAveragePooling2D()(L.GaussianNoise(0.5)(L.Dropout(0.5)(h)))),
        "bn+fc",
    ),
    "conv_valid": (lambda h: L.GlobalAveragePooling2D()(L.Conv2D(3, 3, name="c2")(h)), "bn+c2"),
    "conv_1x1_same_strided": (
        lambda h: L.GlobalAveragePooling2D()(L.Conv2D(3, 1, strides=2, padding="same", name="c2")(h)),
        "bn+c2",
    ),
    "depthwise_valid": (
        lambda h: L.GlobalAveragePooling2D()(L.DepthwiseConv2D(3, depth_multiplier=2, name="c2")(h)),
        "bn+c2",
    ),
    "separable_valid": (
        lambda h: L.GlobalAveragePooling2D()(L.SeparableConv2D(3, 2, name="c2")(h)),
        "bn+c2",
    ),
}


@pytest.fixture(scope="module", params=sorted(FORWARD))
def forward_case(request):
    head, folded = FORWARD[request.param]
    return request.param, _model(head, seed=len(request.param)), folded


def test_forward_fold_is_made_with_provenance(forward_case):
    _, model, folded = forward_case
    view = tfxai.create_analyzer("lrp.epsilon", model).view
    names = [node.name for node in view.nodes]
    assert folded in names and "bn" not in names
    node = next(n for n in view.nodes if n.name == folded)
    assert node.rewrite == "fold_affine" and node.origin[0] == "bn" and node.origin[-1] == folded.split("+")[1]
    assert not any(issubclass(n.op_type, registry.AFFINE) for n in view.nodes)
    assert not any(issubclass(n.op_type, (L.Dropout, L.GaussianNoise)) for n in view.nodes)


def test_forward_fold_keeps_the_function(forward_case):
    _, model, _ = forward_case
    x = make_inputs(model, 3, "both", seed=1) * 2.0
    view = tfxai.create_analyzer("lrp.epsilon", model).view
    values, _ = reverse.forward(view, [tf.constant(x)])
    want = predict(model, x)
    np.testing.assert_allclose(values[view.outputs[0]].numpy(), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def _numpy_fold(model, linear_name):
    """Literal ``(W s, W t + b)`` of the linear layer after the BatchNorm (Dense: per flattened feature)."""
    s, t = _scale_shift(model.get_layer("bn"))
    layer = model.get_layer(linear_name)
    if isinstance(layer, L.SeparableConv2D):
        dw = np.asarray(layer.depthwise_kernel, np.float64)
        pw = np.asarray(layer.pointwise_kernel, np.float64)
        kernel = np.einsum("hwcm,cmf->hwcf", dw, pw.reshape(dw.shape[2], dw.shape[3], -1))
    else:
        kernel = np.asarray(layer.kernel, np.float64)
    bias = np.asarray(layer.bias, np.float64)
    if isinstance(layer, L.Dense):
        n = kernel.shape[0]
        repeat = n // len(s)  # C-order flattening: channels vary fastest
        s_in, t_in = np.tile(s, repeat), np.tile(t, repeat)
        return kernel * s_in[:, None], bias + t_in @ kernel
    if isinstance(layer, L.DepthwiseConv2D):
        added = (kernel.sum(axis=(0, 1)) * t[:, None]).reshape(-1)
        return kernel * s[:, None], bias + added
    added = np.einsum("hwcf,c->f", kernel, t)
    return kernel * s[:, None], bias + added


def test_forward_folded_weights_equal_numpy(forward_case):
    _, model, folded = forward_case
    view = tfxai.create_analyzer("lrp.epsilon", model).view
    node = next(n for n in view.nodes if n.name == folded)
    kernel, bias = node.params()
    want_kernel, want_bias = _numpy_fold(model, folded.split("+")[1])
    np.testing.assert_allclose(kernel.numpy(), want_kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias.numpy(), want_bias, rtol=1e-5, atol=1e-5)


NOT_FOLDED = {
    "conv_3x3_same": lambda h: L.GlobalAveragePooling2D()(L.Conv2D(3, 3, padding="same")(h)),
    "max_pooling": lambda h: _dense()(L.Flatten()(L.MaxPooling2D(2)(h))),
    "transposed_conv": lambda h: L.GlobalAveragePooling2D()(L.Conv2DTranspose(3, 2)(h)),
    "grouped_conv": lambda h: L.GlobalAveragePooling2D()(L.Conv2D(2, 3, groups=2)(h)),
    "fan_out": lambda h: L.Add()([_dense("a")(L.GlobalAveragePooling2D()(h)), _dense("b")(L.Flatten()(h))]),
    "model_output": lambda h: h,
}


@pytest.mark.parametrize("case", sorted(NOT_FOLDED))
def test_unfoldable_batch_norm_is_an_element_wise_node_passing_relevance(case):
    model = _model(NOT_FOLDED[case], seed=3)
    analyzer = tfxai.create_analyzer("lrp.alpha_2_beta_1", model)
    node = next(n for n in analyzer.view.nodes if n.name == "bn")
    assert node.params is not None and issubclass(node.op_type, L.BatchNormalization)
    assert analyzer.assignment["bn"] == rules.Pass()
    x = make_inputs(model, 2, "both", seed=2)
    values, _ = reverse.forward(analyzer.view, [tf.constant(x)])
    want = predict(model, x)
    np.testing.assert_allclose(values[analyzer.view.outputs[0]].numpy(), want, rtol=1e-5, atol=1e-5)


def test_batch_norm_over_the_pooled_axis_is_not_folded():
    """A BatchNorm over rows (axis 1), then average pooling over rows: s varies inside each pool."""
    keras.utils.set_random_seed(4)
    x = keras.Input((5, 4), name="x")
    h = L.BatchNormalization(axis=1, name="bn")(L.ReLU()(x))
    model = _randomize(keras.Model(x, _dense()(L.GlobalAveragePooling1D()(h))), 4)
    view = tfxai.create_analyzer("lrp.epsilon", model).view
    assert "bn" in [n.name for n in view.nodes]


def test_alpha_beta_is_refused_on_an_element_wise_node():
    model = _model(NOT_FOLDED["conv_3x3_same"], seed=5)
    with pytest.raises(ModelError, match="element-wise"):
        tfxai.create_analyzer("lrp.epsilon", model, rules=[(L.BatchNormalization, rules.AlphaBeta(2.0, 1.0))])
    with pytest.raises(ModelError, match="element-wise"):
        tfxai.create_analyzer("lrp.z", model, rules=[("bn", rules.ZPlus())])


def test_epsilon_on_element_wise_nodes_is_the_documented_option():
    """``rules=[(registry.AFFINE, Epsilon(e))]``: R_in = s x / (s x + t + e sign) R, element by element."""
    model = _model(NOT_FOLDED["conv_3x3_same"], seed=6)
    analyzer = tfxai.create_analyzer("lrp.z", model, rules=[(registry.AFFINE, rules.Epsilon(0.01))])
    node = next(n for n in analyzer.view.nodes if n.name == "bn")
    x = make_inputs(model, 2, "both", seed=3)
    _, states = reverse.forward(analyzer.view, [tf.constant(x)])
    state = states["bn"]
    r_out = np.random.default_rng(0).normal(size=state.outputs[0].shape).astype("float32")
    got = analyzer.assignment["bn"].backward(node, state, [tf.constant(r_out)])[0].numpy()
    s, t = _scale_shift(model.get_layer("bn"))
    a = state.inputs[0].numpy().astype(np.float64)
    z = a * s + t
    want = a * s / (z + 0.01 * np.where(z >= 0, 1.0, -1.0)) * r_out
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- no-ops never block folding


def _backward_model(no_op, seed=7):
    keras.utils.set_random_seed(seed)
    x = keras.Input(SHAPE, name="x")
    h = L.Conv2D(4, 3, padding="same", use_bias=False, name="c1")(x)
    h = L.BatchNormalization(name="bn1")(no_op()(h) if no_op else h)
    h = L.ReLU()(h)
    h = L.Dense(5, use_bias=False, name="d1")(L.Flatten()(h))
    h = L.BatchNormalization(name="bn2")(no_op()(h) if no_op else h)
    y = L.Dense(3, use_bias=False, name="logits")(L.ReLU()(h))
    return _randomize(keras.Model(x, y), seed)


@pytest.mark.parametrize(
    "no_op", [lambda: L.Dropout(0.5), lambda: L.GaussianNoise(1.0), lambda: L.SpatialDropout2D(0.5)]
)
@pytest.mark.slow
def test_no_ops_do_not_block_backward_folding(no_op):
    plain = _backward_model(None)
    try:
        noisy = _backward_model(no_op)
    except ValueError:  # SpatialDropout2D needs 4-D inputs: only between c1 and bn1
        keras.utils.set_random_seed(7)
        x = keras.Input(SHAPE, name="x")
        h = L.BatchNormalization(name="bn1")(no_op()(L.Conv2D(4, 3, padding="same", use_bias=False, name="c1")(x)))
        h = L.Dense(5, use_bias=False, name="d1")(L.Flatten()(L.ReLU()(h)))
        h = L.BatchNormalization(name="bn2")(h)
        noisy = _randomize(keras.Model(x, L.Dense(3, use_bias=False, name="logits")(L.ReLU()(h))), 7)
    noisy.set_weights(plain.get_weights())
    analyzer = tfxai.create_analyzer("lrp.alpha_2_beta_1", noisy)
    names = [n.name for n in analyzer.view.nodes]
    assert "c1+bn1" in names and "d1+bn2" in names
    assert len(next(n for n in analyzer.view.nodes if n.name == "c1+bn1").origin) == 3
    x = make_inputs(plain, 3, "both", seed=4)
    want = tfxai.create_analyzer("lrp.alpha_2_beta_1", plain).analyze(x)
    np.testing.assert_allclose(analyzer.analyze(x), want, rtol=1e-6, atol=1e-7 * np.abs(want).max())


# --------------------------------------------------------------------------- the model vs NumPy


@pytest.fixture(scope="module")
def relu_bn_gap_model():
    """Conv(relu) -> BN -> GAP -> Dense, bias-free; ``center=False`` and zero mean: ``t = 0``."""
    keras.utils.set_random_seed(11)
    x = keras.Input((5, 5, 2), name="x")
    h = L.Conv2D(3, 3, padding="valid", use_bias=False, activation="relu", name="c1")(x)
    h = L.BatchNormalization(center=False, name="bn")(h)
    y = L.Dense(2, use_bias=False, name="fc")(L.GlobalAveragePooling2D()(h))
    return _randomize(keras.Model(x, y), 11, center=False)


def _numpy_lrp(model, x, rule):
    """The folded network ``x -> conv -> relu -> GAP -> (W s)`` in float64, backwards with ``rule``."""
    a0 = x.reshape(len(x), -1).astype(np.float64)
    kernel = np.asarray(model.get_layer("c1").kernel)
    W1, _, out_shape = ref.conv2d_matrix(kernel, x.shape[1:], (1, 1), "valid")
    z1 = ref.linear_forward(a0, W1, np.zeros(W1.shape[1]))
    a1 = np.maximum(z1, 0.0)
    _, windows = ref.global_pool_windows(out_shape)
    a2 = a1.reshape((len(x),) + out_shape).mean(axis=(1, 2))
    s, _ = _scale_shift(model.get_layer("bn"))
    W3 = np.asarray(model.get_layer("fc").kernel, np.float64) * s[:, None]
    z3 = a2 @ W3
    start = np.zeros_like(z3)
    start[np.arange(len(x)), z3.argmax(axis=1)] = z3.max(axis=1)
    zeros3, zeros1 = np.zeros(W3.shape[1]), np.zeros(W1.shape[1])
    R2, _ = rule(a2, W3, zeros3, start)
    R1, _ = ref.norm_pooling(a1, windows, R2)
    R0, _ = rule(a0, W1, zeros1, R1)
    return R0.reshape(x.shape), start.sum(axis=1)


NUMPY_RULES = {
    "lrp.alpha_2_beta_1": lambda a, W, b, R: ref.lrp_alpha_beta(a, W, b, R, 2.0, 1.0),
    "lrp.alpha_1_beta_0": lambda a, W, b, R: ref.lrp_alpha_beta(a, W, b, R, 1.0, 0.0),
    "lrp.epsilon": lambda a, W, b, R: ref.lrp_epsilon(a, W, b, R, 1e-7),
}


@pytest.mark.parametrize("name", sorted(NUMPY_RULES))
def test_forward_folded_lrp_equals_numpy_on_the_folded_network(relu_bn_gap_model, name):
    x = make_inputs(relu_bn_gap_model, 3, "both", seed=8)
    want, logit = _numpy_lrp(relu_bn_gap_model, x, NUMPY_RULES[name])
    got, delta = tfxai.create_analyzer(name, relu_bn_gap_model).analyze(x, return_delta=True)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    # bias-free, no zero denominators: every one of these rules conserves the logit
    np.testing.assert_allclose(got.reshape(len(x), -1).sum(axis=1), logit, rtol=1e-4)
    np.testing.assert_allclose(delta, 0.0, atol=1e-4 * np.abs(logit).max())
