"""Layer coverage for modern CNNs: depthwise / separable / transposed / grouped
convolutions, resampling, merges, gated products, LayerNorm / GroupNorm,
element-wise constant ops, activations, and the canonizers behind them.

References are independent of tfxai's own graph code: input x gradient is taken
on the Keras model itself, and the gating and normalisation rules are checked
against NumPy formulas written out by hand.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import canonizers, linear, reverse, rules
from tfxai.graph import application_layer_classes, build_view
from conftest import make_inputs, predict, summed

try:
    from tests import numpy_reference as ref
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import numpy_reference as ref

L = keras.layers
RTOL = 1e-5


def _he(name=None, **kwargs):
    return dict(use_bias=False, kernel_initializer="he_normal", name=name, **kwargs)


def _dw(name):
    return {"use_bias": False, "depthwise_initializer": "he_normal", "name": name}


def _sep(name):
    return {
        "use_bias": False,
        "depthwise_initializer": "he_normal",
        "pointwise_initializer": "he_normal",
        "name": name,
    }


def _logit_ixg(model, x, index):
    """``x * d logit[index] / d x``, differentiating the Keras model itself."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = model(xt, training=False)
        picked = tf.reduce_sum(tf.reshape(y, (len(x), -1)) * tf.one_hot(index, int(np.prod(y.shape[1:]))))
    return x * tape.gradient(picked, xt).numpy()


def _assert_close(got, want, rtol=RTOL, what=""):
    want = np.asarray(want, np.float64)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(np.abs(want).max(), 1e-30), err_msg=what)


def _head(h, classes=3):
    h = L.Flatten(name="flat")(h)
    return L.Dense(classes, use_bias=False, name="logits")(h)


# --------------------------------------------------------------------------- bias-free ReLU zoo


def _depthwise2d():
    x = keras.Input((8, 8, 3))
    h = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, **_dw("dw"))(x)
    h = L.ReLU()(h)
    return keras.Model(x, _head(h))


def _depthwise1d():
    x = keras.Input((10, 3))
    h = L.DepthwiseConv1D(3, depth_multiplier=2, activation="relu", **_dw("dw"))(x)
    return keras.Model(x, _head(h))


def _separable2d():
    x = keras.Input((8, 8, 3))
    h = L.SeparableConv2D(5, 3, padding="same", depth_multiplier=2, activation="relu", **_sep("sep"))(x)
    h = L.SeparableConv2D(4, 3, strides=2, **_sep("sep2"))(h)
    return keras.Model(x, _head(L.ReLU()(h)))


def _separable1d():
    x = keras.Input((10, 3))
    h = L.SeparableConv1D(4, 3, padding="same", activation="relu", **_sep("sep"))(x)
    return keras.Model(x, _head(h))


def _transpose2d():
    x = keras.Input((4, 4, 3))
    h = L.Conv2DTranspose(
        4, 3, strides=2, padding="same", output_padding=1, activation="relu", **_he("tconv")
    )(x)
    h = L.Conv2DTranspose(2, 2, strides=2, **_he("tconv2"))(h)
    return keras.Model(x, _head(L.ReLU()(h)))


def _transpose1d():
    x = keras.Input((5, 3))
    h = L.Conv1DTranspose(4, 3, strides=2, activation="relu", **_he("tconv"))(x)
    return keras.Model(x, _head(h))


def _transpose3d():
    x = keras.Input((3, 3, 3, 2))
    h = L.Conv3DTranspose(3, 2, strides=2, activation="relu", **_he("tconv"))(x)
    return keras.Model(x, _head(h))


def _grouped_conv():
    x = keras.Input((6, 6, 4))
    h = L.Conv2D(4, 3, padding="same", groups=4, activation="relu", **_he("depthwise_groups"))(x)
    h = L.Conv2D(6, 3, groups=2, activation="relu", **_he("two_groups"))(h)
    return keras.Model(x, _head(h))


def _resampling():
    x = keras.Input((4, 4, 2))
    h = L.Conv2D(3, 3, padding="same", activation="relu", **_he("c1"))(x)
    near = L.UpSampling2D(2, name="up_nearest")(h)
    bilinear = L.UpSampling2D(2, interpolation="bilinear", name="up_bilinear")(h)
    resized = L.Resizing(8, 8, name="resize")(h)
    h = L.Concatenate()([near, bilinear, resized])
    return keras.Model(x, _head(h))


def _upsampling_1d_3d():
    x1 = keras.Input((4, 2), name="seq")
    x3 = keras.Input((2, 2, 2, 2), name="vol")
    h1 = L.UpSampling1D(3)(L.Conv1D(3, 2, activation="relu", **_he("c1"))(x1))
    h3 = L.UpSampling3D(2)(L.Conv3D(2, 1, activation="relu", **_he("c3"))(x3))
    h = L.Concatenate()([L.Flatten()(h1), L.Flatten()(h3)])
    return keras.Model([x1, x3], L.Dense(3, use_bias=False)(h))


def _merges():
    x = keras.Input((6,))
    a = L.Dense(5, activation="relu", **_he("a"))(x)
    b = L.Dense(5, activation="relu", **_he("b"))(x)
    c = L.Dense(5, activation="relu", **_he("c"))(x)
    h = L.Concatenate()(
        [
            L.Subtract(name="sub")([a, b]),
            L.Average(name="avg")([a, b, c]),
            L.Maximum(name="max")([a, c]),
            a - c,
        ]
    )
    return keras.Model(x, L.Dense(3, use_bias=False)(h))


RELU_MODELS = {
    "depthwise2d": _depthwise2d,
    "depthwise1d": _depthwise1d,
    "separable2d": _separable2d,
    "separable1d": _separable1d,
    "transpose2d": _transpose2d,
    "transpose1d": _transpose1d,
    "transpose3d": _transpose3d,
    "grouped_conv": _grouped_conv,
    "resampling": _resampling,
    "upsampling_1d_3d": _upsampling_1d_3d,
    "merges": _merges,
}


@pytest.fixture(scope="module")
def relu_model():
    cache = {}

    def get(name):
        if name not in cache:
            keras.utils.set_random_seed(sum(map(ord, name)))
            cache[name] = RELU_MODELS[name]()
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(RELU_MODELS))
@pytest.mark.slow
def test_lrp_zero_equals_input_times_gradient_of_the_keras_model(relu_model, name):
    """On bias-free ReLU networks LRP-0 is input x gradient, and conservative."""
    model = relu_model(name)
    x = make_inputs(model, 3, "both", seed=1)
    index = predict(model, x).reshape(3, -1).argmax(axis=1)
    xs = x if isinstance(x, list) else [x]
    reference = [_logit_ixg(model, x, index)] if not isinstance(x, list) else None
    relevance, delta = tfxai.create_analyzer("lrp.z", model).analyze(x, return_delta=True)
    if reference is not None:
        _assert_close(relevance, reference[0], rtol=1e-4, what=name)
    explained = predict(model, x).reshape(3, -1).max(axis=1)
    _assert_close(summed(relevance), explained, rtol=1e-4, what=f"{name} conservation")
    np.testing.assert_allclose(delta, 0.0, atol=1e-4 * np.abs(explained).max())
    assert all(r.shape == a.shape for r, a in zip(relevance if isinstance(x, list) else [relevance], xs))


def test_multi_input_resampling_matches_input_times_gradient(relu_model):
    model = relu_model("upsampling_1d_3d")
    x = make_inputs(model, 3, "both", seed=2)
    index = predict(model, x).argmax(axis=1)
    xt = [tf.constant(a) for a in x]
    with tf.GradientTape() as tape:
        tape.watch(xt)
        picked = tf.reduce_sum(model(xt, training=False) * tf.one_hot(index, 3))
    reference = [a * g.numpy() for a, g in zip(x, tape.gradient(picked, xt))]
    relevance = tfxai.create_analyzer("lrp.z", model).analyze(x)
    for got, want in zip(relevance, reference):
        _assert_close(got, want, rtol=1e-4)


@pytest.mark.parametrize("name", ["depthwise2d", "separable2d", "separable1d", "transpose2d", "grouped_conv"])
@pytest.mark.parametrize("method", ["lrp.alpha_1_beta_0", "lrp.gamma"])
def test_positive_rules_conserve_on_new_convolutions(relu_model, name, method):
    """Bias-free ReLU nets, positive inputs: z+ and gamma are conservative wherever z' != 0."""
    model = relu_model(name)
    x = make_inputs(model, 3, "positive", seed=3)
    relevance = tfxai.create_analyzer(method, model).analyze(x)
    explained = predict(model, x).reshape(3, -1).max(axis=1)
    _assert_close(summed(relevance), explained, rtol=1e-4, what=f"{name} {method}")


@pytest.mark.parametrize("name", ["depthwise2d", "separable2d", "transpose2d", "grouped_conv"])
@pytest.mark.parametrize(
    "method", ["lrp.epsilon_gamma_box", "lrp.epsilon_plus_flat", "lrp.epsilon_alpha2_beta1"]
)
def test_composites_run_on_new_convolutions(relu_model, name, method):
    model = relu_model(name)
    x = make_inputs(model, 2, "both", seed=4)
    relevance = tfxai.create_analyzer(method, model).analyze(x)
    assert relevance.shape == x.shape and np.all(np.isfinite(relevance))


def test_new_convolutions_are_in_the_conv_group_of_composites(relu_model):
    for name, node in (
        ("depthwise2d", "dw"),
        ("separable2d", "sep"),
        ("transpose2d", "tconv"),
        ("grouped_conv", "two_groups"),
    ):
        assert tfxai.create_analyzer("lrp.epsilon_plus", relu_model(name)).assignment[node] == rules.ZPlus()


# --------------------------------------------------------------------------- separable convolutions


@pytest.mark.parametrize(
    "name, layer_name", [("separable2d", "sep"), ("separable2d", "sep2"), ("separable1d", "sep")]
)
def test_separable_conv_is_one_convolution_with_the_composed_kernel(relu_model, name, layer_name):
    model = relu_model(name)
    view = tfxai.create_analyzer("lrp.z", model).view
    layer = model.get_layer(layer_name)
    (node,) = [n for n in view.nodes if n.layer is layer and n.params is not None]
    assert node.name == layer_name and node.op_type is type(layer)
    kernel, bias = node.params()
    depthwise, pointwise = layer.depthwise_kernel.numpy(), layer.pointwise_kernel.numpy()
    channels, multiplier = depthwise.shape[-2:]
    want = np.zeros(depthwise.shape[:-1] + (pointwise.shape[-1],))
    for c in range(channels):
        for m in range(multiplier):
            want[..., c, :] += (
                depthwise[..., c, m : m + 1] * pointwise.reshape(-1, pointwise.shape[-1])[c * multiplier + m]
            )
    _assert_close(kernel.numpy(), want, rtol=1e-6)
    assert bias is None
    x = np.random.default_rng(7).normal(size=(2,) + tuple(layer.input.shape[1:])).astype("float32")
    z = node.forward([tf.constant(x)], (kernel, bias))[0]
    _assert_close(layer.activation(z).numpy(), layer(x).numpy(), rtol=1e-5)


# --------------------------------------------------------------------------- affine folding


def _randomize_affine(model, seed):
    """Non-trivial BatchNorm statistics / LayerScale gammas, so folding is really tested."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.5, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, c).astype("float32"))
            if layer.gamma is not None:
                layer.gamma.assign((rng.uniform(0.5, 2.0, c) * rng.choice([-1, 1], c)).astype("float32"))
            if layer.beta is not None:
                layer.beta.assign(rng.normal(0, 0.5, c).astype("float32"))
        elif isinstance(layer, canonizers.AFFINE_LAYERS):
            layer.gamma.assign(rng.uniform(-2.0, 2.0, layer.gamma.shape).astype("float32"))


def _affine_model():
    layer_scale = application_layer_classes(("convnext", "LayerScale"))[0]
    x = keras.Input((8, 8, 3), name="img")
    h = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False, name="dw")(x)
    h = L.BatchNormalization(name="bn_dw")(h)
    h = L.ReLU()(h)
    h = L.SeparableConv2D(4, 3, padding="same", name="sep")(h)
    h = L.BatchNormalization(name="bn_sep")(h)
    h = L.ReLU()(h)
    h = L.Conv2DTranspose(4, 2, strides=2, name="tconv")(h)
    h = L.BatchNormalization(name="bn_tconv")(h)
    h = L.Conv2D(4, 3, padding="same", groups=2, name="grouped")(L.ReLU()(h))
    h = L.BatchNormalization(name="bn_grouped")(h)
    h = L.Dense(5, name="pointwise")(L.ReLU()(h))  # a Dense on a 4-D tensor, as in ConvNeXt
    h = layer_scale(0.5, 5, name="layer_scale")(h)
    h = layer_scale(0.5, 5, name="layer_scale_alone")(L.ReLU()(h))
    h = L.GlobalAveragePooling2D()(h)
    y = L.Dense(3, name="logits")(h)
    model = keras.Model(x, y, name="affine")
    _randomize_affine(model, seed=3)
    return model


FOLDS = {
    "dw": "dw+bn_dw",
    "sep": "sep+bn_sep",
    "tconv": "tconv+bn_tconv",
    "grouped": "grouped+bn_grouped",
    "pointwise": "pointwise+layer_scale",
}


@pytest.fixture(scope="module")
def affine_model():
    keras.utils.set_random_seed(8)
    return _affine_model()


def test_affine_layers_fold_into_every_linear_type(affine_model):
    view = tfxai.create_analyzer("lrp.epsilon", affine_model).view
    names = [node.name for node in view.nodes]
    for folded in FOLDS.values():
        assert folded in names
    for gone in ("bn_dw", "bn_sep", "bn_tconv", "bn_grouped", "layer_scale"):
        assert gone not in names
    # after a ReLU: folded forward, through the global pooling, into the logits
    (alone,) = [node for node in view.nodes if "layer_scale_alone" in node.origin]
    assert alone.name == "layer_scale_alone+logits" and alone.rewrite == "fold_affine"
    assert alone.origin == ("layer_scale_alone", "logits")


@pytest.mark.parametrize("linear_name", sorted(FOLDS))
def test_folded_weights_reproduce_the_linear_layer_then_the_affine_layer(affine_model, linear_name):
    """Each folded node computes exactly affine(linear(a)) on its own input."""
    view = tfxai.create_analyzer("lrp.epsilon", affine_model).view
    x = make_inputs(affine_model, 2, "both", seed=5)
    _, states = reverse.forward(view, [tf.constant(x)])
    node = next(n for n in view.nodes if n.name == FOLDS[linear_name])
    state = states[node.name]
    layer = node.layer
    affine = affine_model.get_layer(FOLDS[linear_name].split("+")[1])
    inner = state.inputs[0]
    plain = layer(inner)
    want = affine(plain, training=False)
    _assert_close(state.outputs[0].numpy(), want.numpy(), rtol=1e-5, what=linear_name)


def test_canonized_affine_model_equals_the_original_and_lrp_zero_is_ixg(affine_model):
    x = make_inputs(affine_model, 4, "both", seed=6)
    analyzer = tfxai.create_analyzer("lrp.z", affine_model)
    _, _, predictions = analyzer.compiled("max_activation")(tf.constant(x))
    want = predict(affine_model, x)
    _assert_close(predictions[0].numpy(), want, rtol=1e-5)
    index = want.argmax(axis=1)
    ixg = _logit_ixg(affine_model, x, index)
    _assert_close(tfxai.create_analyzer("input_t_gradient", affine_model).analyze(x), ixg, rtol=1e-4)


def test_batch_norm_before_a_zero_padded_depthwise_conv_is_an_element_wise_node():
    """Zero padding stops the forward fold: the BatchNorm passes relevance, the conv is FIRST."""
    keras.utils.set_random_seed(9)
    x = keras.Input((6, 6, 2))
    h = L.BatchNormalization(name="bn_first")(x)
    h = L.DepthwiseConv2D(3, padding="same", name="dw")(h)
    model = keras.Model(x, _head(h))
    _randomize_affine(model, seed=9)
    analyzer = tfxai.create_analyzer("lrp.epsilon_gamma_box", model)
    node = next(n for n in analyzer.view.nodes if n.name == "bn_first")
    assert node.params is not None and analyzer.assignment["bn_first"] == rules.Pass()
    assert analyzer.assignment["dw"] == rules.ZBox(-1.0, 1.0)
    x_data = make_inputs(model, 2, "both", seed=9)
    _, _, predictions = analyzer.compiled("max_activation")(tf.constant(x_data))
    _assert_close(predictions[0].numpy(), predict(model, x_data), rtol=1e-5)


# --------------------------------------------------------------------------- gated products


def _gated_mlp(gate_first=True, raw=False):
    """``logits = W_y (relu(W_a x) * sigmoid(W_g x + b_g))``; the signal path is bias-free."""
    x = keras.Input((6,), name="x")
    a = L.Dense(5, activation="relu", **_he("signal"))(x)
    g = L.Dense(
        5, activation="sigmoid", kernel_initializer="he_normal", bias_initializer="ones", name="gate"
    )(x)
    if raw:
        m = g * a if gate_first else a * g
    else:
        m = L.Multiply(name="gated")([g, a] if gate_first else [a, g])
    y = L.Dense(3, **_he("logits"))(m)
    return keras.Model(x, y, name="gated_mlp")


def _numpy_gated_reference(model, x, index):
    """LRP-0 by hand: z-rule at the logits, all relevance of the product to the signal, z-rule again."""
    w_a = model.get_layer("signal").kernel.numpy().astype(np.float64)
    w_g = model.get_layer("gate").kernel.numpy().astype(np.float64)
    b_g = model.get_layer("gate").bias.numpy().astype(np.float64)
    w_y = model.get_layer("logits").kernel.numpy().astype(np.float64)
    x = x.astype(np.float64)
    z_a = x @ w_a
    a = np.maximum(z_a, 0.0)
    g = 1.0 / (1.0 + np.exp(-(x @ w_g + b_g)))
    m = a * g
    r_m = m * w_y[:, index].T  # R_m_j = m_j w_jc y_c / y_c
    r_a = r_m  # signal-take-all; ReLU passes
    s = np.divide(r_a, z_a, out=np.zeros_like(r_a), where=z_a != 0)
    return x * (s @ w_a.T)


@pytest.mark.parametrize("gate_first", [True, False])
@pytest.mark.parametrize("raw", [False, True])
def test_signal_take_all_against_a_numpy_reference(gate_first, raw):
    keras.utils.set_random_seed(10)
    model = _gated_mlp(gate_first, raw)
    x = make_inputs(model, 5, "both", seed=10)
    analyzer = tfxai.create_analyzer("lrp.z", model)
    product = next(n for n in analyzer.view.nodes if n.op_type is canonizers.GatedProduct)
    assert analyzer.assignment[product.name] == rules.SignalTakeAll()
    assert (
        product.inputs[0] == next(n for n in analyzer.view.nodes if n.name == "signal/activation").outputs[0]
    )
    index = predict(model, x).argmax(axis=1)
    relevance, delta = analyzer.analyze(x, return_delta=True)
    _assert_close(relevance, _numpy_gated_reference(model, x, index), rtol=1e-5)
    # The gate gets nothing and the signal path is bias-free: conservative.
    np.testing.assert_allclose(delta, 0.0, atol=1e-5 * np.abs(predict(model, x)).max())
    # The reordered node still computes the model.
    _, _, predictions = analyzer.compiled("max_activation")(tf.constant(x))
    _assert_close(predictions[0].numpy(), predict(model, x), rtol=1e-6)


def _se_block(hard_sigmoid_written_out, spatial):
    """A squeeze-and-excitation block: channel weights from the feature map gate the feature map."""
    x = keras.Input((spatial, spatial, 3), name="img")
    h = L.Conv2D(4, 3, padding="same", activation="relu", **_he("features"))(x)
    s = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(h)
    s = L.Conv2D(2, 1, activation="relu", name="reduce")(s)
    if hard_sigmoid_written_out:  # MobileNetV3
        s = L.Conv2D(4, 1, name="expand")(s)
        s = L.ReLU(6.0, name="relu6")(s + 3.0) * (1.0 / 6.0)
        gated = L.Multiply(name="excite")([h, s])
    else:  # EfficientNet
        s = L.Conv2D(4, 1, activation="sigmoid", name="expand")(s)
        s = L.Reshape((1, 1, 4), name="se_reshape")(s)
        gated = L.multiply([h, s], name="excite")
    return keras.Model(x, _head(gated), name="se")


@pytest.mark.parametrize("hard_sigmoid", [False, True])
@pytest.mark.parametrize("spatial", [4, 1])  # at 1x1 the gate has the signal's shape: found by its activation
def test_squeeze_and_excitation_gate_gets_no_relevance(hard_sigmoid, spatial):
    keras.utils.set_random_seed(11)
    model = _se_block(hard_sigmoid, spatial)
    analyzer = tfxai.create_analyzer("lrp.z", model)
    excite = next(n for n in analyzer.view.nodes if n.name == "excite")
    assert excite.op_type is canonizers.GatedProduct
    features = next(n for n in analyzer.view.nodes if n.name == "features/activation")
    assert excite.inputs[0] == features.outputs[0]
    if hard_sigmoid:
        scale = next(n for n in analyzer.view.nodes if n.op_type is canonizers.ConstantAffine and n.inputs)
        assert tfxai.registry.default_rule(scale.op_type) == rules.Pass()
        assert scale.name not in analyzer.assignment  # on the gate path, which no relevance reaches
    x = make_inputs(model, 3, "both", seed=11)
    relevance, delta = analyzer.analyze(x, return_delta=True)
    explained = predict(model, x).max(axis=1)
    # The signal path (features -> excite -> logits) is bias-free: all relevance arrives.
    _assert_close(summed(relevance), explained, rtol=1e-4)
    np.testing.assert_allclose(delta, 0.0, atol=1e-4 * np.abs(explained).max())
    # And equals input x gradient of the model with its gate held at its value (a constant factor).
    _, states = reverse.forward(analyzer.view, [tf.constant(x)])
    gate = states["excite"].inputs[1].numpy()
    frozen_in, gate_in = keras.Input((spatial, spatial, 3)), keras.Input(gate.shape[1:])
    h = L.Conv2D(4, 3, padding="same", activation="relu", use_bias=False, name="features")(frozen_in)
    frozen = keras.Model([frozen_in, gate_in], _head(L.Multiply()([h, gate_in])))
    for name in ("features", "logits"):
        frozen.get_layer(name).set_weights(model.get_layer(name).get_weights())
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        picked = tf.reduce_sum(
            frozen([xt, tf.constant(gate)]) * tf.one_hot(predict(model, x).argmax(axis=1), 3)
        )
    _assert_close(relevance, x * tape.gradient(picked, xt).numpy(), rtol=1e-4)


def test_product_without_a_gate_splits_relevance_equally():
    keras.utils.set_random_seed(12)
    x = keras.Input((6,))
    a = L.Dense(4, activation="relu", **_he("a"))(x)
    b = L.Dense(4, activation="relu", **_he("b"))(x)
    m = L.Multiply(name="product")([a, b])
    model = keras.Model(x, L.Dense(2, **_he("logits"))(m))
    analyzer = tfxai.create_analyzer("lrp.z", model)
    product = next(n for n in analyzer.view.nodes if n.name == "product")
    assert product.op_type is L.Multiply and analyzer.assignment["product"] == rules.Uniform()
    x_data = make_inputs(model, 4, "both", seed=12)
    _, states = reverse.forward(analyzer.view, [tf.constant(x_data)])
    r = tf.constant(np.random.default_rng(0).normal(size=(4, 4)).astype("float32"))
    r_a, r_b = rules.Uniform().backward(product, states["product"], [r])
    np.testing.assert_allclose(r_a, r.numpy() / 2)
    np.testing.assert_allclose(r_b, r.numpy() / 2)
    relevance = analyzer.analyze(x_data)
    explained = predict(model, x_data).max(axis=1)
    _assert_close(summed(relevance), explained, rtol=1e-4)


def test_gate_rules_sum_relevance_over_broadcast_axes():
    signal = tf.constant(np.arange(6, dtype="float32").reshape(1, 1, 6))
    gate = tf.constant(np.ones((1, 4, 1), "float32"))
    relevance = tf.constant(np.random.default_rng(1).normal(size=(1, 4, 6)).astype("float32"))
    state = rules.NodeState([signal, gate], [signal * gate])
    r_signal, r_gate = rules.SignalTakeAll().backward(None, state, [relevance])
    np.testing.assert_allclose(r_signal, relevance.numpy().sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(r_gate, 0.0)
    r1, r2 = rules.Uniform().backward(None, state, [relevance])
    assert r1.shape == signal.shape and r2.shape == gate.shape
    np.testing.assert_allclose(
        float(tf.reduce_sum(r1) + tf.reduce_sum(r2)), float(tf.reduce_sum(relevance)), rtol=1e-5
    )


# --------------------------------------------------------------------------- LayerNorm / GroupNorm


def _numpy_frozen_scale_lrp(x, gamma, beta, relevance, groups, epsilon_layer, epsilon_rule):
    """LRP-epsilon through ``(x - mean) / sigma * gamma + beta`` with sigma constant, by explicit Jacobians.

    ``groups`` lists, per normalised group, the flat feature indices it contains.
    """
    n_features = x.shape[1]
    out = np.zeros_like(x)
    for sample in range(x.shape[0]):
        jacobian = np.zeros((n_features, n_features))  # jacobian[k, i] = d y_k / d x_i at constant sigma
        y = np.zeros(n_features)
        for members in groups:
            values = x[sample, members]
            sigma = np.sqrt(values.var() + epsilon_layer)
            size = len(members)
            for k in members:
                y[k] = (x[sample, k] - values.mean()) / sigma * gamma[k] + beta[k]
                for i in members:
                    jacobian[k, i] = ((k == i) - 1.0 / size) / sigma * gamma[k]
        z = y + epsilon_rule * np.where(y >= 0, 1.0, -1.0)
        out[sample] = x[sample] * (jacobian.T @ (relevance[sample] / z))
    return out


def _run_single(layer, x, relevance, rule):
    inp = keras.Input(x.shape[1:], dtype=x.dtype)
    model = keras.Model(inp, layer(inp))
    view = canonizers.canonize(build_view(model))
    _, states = reverse.forward(view, [tf.constant(x)])
    node = view.nodes[0]
    return model, rule.backward(node, states[node.name], [tf.constant(relevance)])[0].numpy()


@pytest.mark.parametrize("center", [True, False])
def test_layer_norm_rule_against_numpy(center):
    rng = np.random.default_rng(13)
    x = rng.normal(size=(3, 7)).astype("float64")
    layer = L.LayerNormalization(epsilon=1e-3, center=center, dtype="float64")
    layer.build((None, 7))
    layer.gamma.assign(rng.uniform(-2, 2, 7))
    if center:
        layer.beta.assign(rng.normal(0, 0.5, 7))
    relevance = rng.normal(size=(3, 7))
    _, got = _run_single(layer, x, relevance, rules.FrozenScale(epsilon=0.01))
    beta = layer.beta.numpy() if center else np.zeros(7)
    want = _numpy_frozen_scale_lrp(x, layer.gamma.numpy(), beta, relevance, [list(range(7))], 1e-3, 0.01)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_group_norm_rule_against_numpy():
    rng = np.random.default_rng(14)
    x = rng.normal(size=(2, 3, 6)).astype("float64")  # (batch, steps, channels), 3 groups of 2 channels
    layer = L.GroupNormalization(groups=3, epsilon=1e-3, dtype="float64")
    layer.build((None, 3, 6))
    layer.gamma.assign(rng.uniform(-2, 2, 6))
    layer.beta.assign(rng.normal(0, 0.5, 6))
    relevance = rng.normal(size=(2, 3, 6))
    _, got = _run_single(layer, x, relevance, rules.FrozenScale(epsilon=0.0))
    flat = np.arange(18).reshape(3, 6)
    groups = [flat[:, 2 * g : 2 * g + 2].ravel().tolist() for g in range(3)]
    gamma = np.tile(layer.gamma.numpy(), 3)
    beta = np.tile(layer.beta.numpy(), 3)
    want = _numpy_frozen_scale_lrp(x.reshape(2, -1), gamma, beta, relevance.reshape(2, -1), groups, 1e-3, 0.0)
    np.testing.assert_allclose(got.reshape(2, -1), want, rtol=1e-8, atol=1e-12)


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: L.LayerNormalization(),
        lambda: L.LayerNormalization(axis=[1, 2]),
        lambda: L.LayerNormalization(rms_scaling=True),
        lambda: L.LayerNormalization(center=False, scale=False),
        lambda: L.GroupNormalization(groups=2),
        lambda: L.GroupNormalization(groups=4, axis=1),
    ],
    ids=["last_axis", "two_axes", "rms_scaling", "plain", "groups", "groups_axis1"],
)
def test_constant_scale_function_computes_the_layer(make_layer):
    layer = make_layer()
    rng = np.random.default_rng(15)
    x = rng.normal(1.0, 2.0, size=(2, 4, 4)).astype("float32")
    layer.build(x.shape)
    for weight in layer.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    y = layer(x).numpy()
    np.testing.assert_allclose(linear.frozen_scale_function(layer)(tf.constant(x)).numpy(), y, rtol=1e-5, atol=1e-5)


def test_layer_norm_without_shift_conserves_relevance_in_a_model():
    keras.utils.set_random_seed(16)
    x = keras.Input((4, 5))
    h = L.Dense(6, **_he("d1"))(x)
    h = L.LayerNormalization(center=False, name="ln")(h)
    h = L.GroupNormalization(groups=2, center=False, name="gn")(L.ReLU()(h))
    y = L.Dense(3, **_he("logits"))(L.Flatten()(h))
    model = keras.Model(x, y)
    analyzer = tfxai.create_analyzer("lrp.z", model)
    assert (
        analyzer.assignment["ln"] == rules.FrozenScale() and analyzer.assignment["gn"] == rules.FrozenScale()
    )
    x_data = make_inputs(model, 3, "both", seed=16)
    relevance, delta = analyzer.analyze(x_data, return_delta=True)
    explained = predict(model, x_data).max(axis=1)
    _assert_close(summed(relevance), explained, rtol=1e-4)
    np.testing.assert_allclose(delta, 0.0, atol=1e-4 * np.abs(explained).max())
    # The gradient analyzers still see the true layer (sigma is not frozen for them).
    ixg = tfxai.create_analyzer("input_t_gradient", model).analyze(x_data)
    _assert_close(ixg, _logit_ixg(model, x_data, predict(model, x_data).argmax(axis=1)), rtol=1e-4)
    assert np.abs(ixg - relevance).max() > 1e-3 * np.abs(relevance).max()


# --------------------------------------------------------------------------- constant ops, activations


def test_raw_ops_with_constants_are_constant_affine_and_pass_relevance():
    keras.utils.set_random_seed(17)
    x = keras.Input((5,), name="pixels")
    h = x / 255.0
    h = h - np.array([0.1, 0.2, 0.3, 0.4, 0.5], "float32")
    h = keras.ops.multiply(h, 2.0)
    h = 1.0 + h
    h = L.Dense(4, activation="relu", **_he("d1"))(h)
    y = L.Dense(3, **_he("logits"))(h)
    model = keras.Model(x, y)
    analyzer = tfxai.create_analyzer("lrp.z", model)
    affine = [n for n in analyzer.view.nodes if n.op_type is canonizers.ConstantAffine]
    assert len(affine) == 4
    assert all(analyzer.assignment[n.name] == rules.Pass() for n in affine)
    x_data = make_inputs(model, 3, "positive", seed=17) * 255
    relevance, delta = analyzer.analyze(x_data, return_delta=True)
    explained = predict(model, x_data).max(axis=1)
    _assert_close(summed(relevance), explained, rtol=1e-4)
    np.testing.assert_allclose(delta, 0.0, atol=1e-4 * np.abs(explained).max())
    # Pass: the relevance of the input is that of the first Dense's input.
    _, states = reverse.forward(analyzer.view, [tf.constant(x_data)])
    dense_in = states["d1"].inputs[0].numpy()
    w1, w2 = model.get_layer("d1").kernel.numpy(), model.get_layer("logits").kernel.numpy()
    z1 = dense_in @ w1
    index = predict(model, x_data).argmax(axis=1)
    r_h = np.maximum(z1, 0) * w2[:, index].T
    want = dense_in * ((r_h / np.where(z1 == 0, 1, z1) * (z1 != 0)) @ w1.T)
    _assert_close(relevance, want, rtol=1e-4)


def test_two_tensor_raw_ops_keep_their_type():
    x = keras.Input((4,))
    a, b = L.Dense(4)(x), L.Dense(4)(x)
    model = keras.Model(x, [a + b, a - b, a * b])
    view = canonizers.canonize(build_view(model))
    types = {n.op_type.__name__ for n in view.nodes if n.params is None}
    assert types == {"Add", "Subtract", "Multiply"}


ACTIVATION_NAMES = [
    "relu6",
    "swish",
    "silu",
    "gelu",
    "hard_swish",
    "sigmoid",
    "tanh",
    "elu",
    "softplus",
    "selu",
]


def test_every_activation_passes_relevance():
    keras.utils.set_random_seed(18)
    x = keras.Input((4,))
    h = L.Dense(4, **_he("d0"))(x)
    for name in ACTIVATION_NAMES:
        h = L.Activation(name, name=f"act_{name}")(h)
    h = L.ReLU(max_value=6.0, name="relu_6")(h)
    for op in (
        keras.ops.relu6,
        keras.ops.silu,
        keras.ops.gelu,
        keras.ops.hard_silu,
        keras.ops.sigmoid,
        keras.ops.elu,
        keras.ops.softplus,
        keras.ops.tanh,
        keras.ops.hard_sigmoid,
        keras.ops.selu,
    ):
        h = op(h)
    h = L.Dense(4, **_he("d1"))(h)
    h = L.Dense(3, activation="swish", **_he("d2"))(h)
    model = keras.Model(x, h)
    analyzer = tfxai.create_analyzer("lrp.epsilon", model)
    weightless = [n for n in analyzer.view.nodes if n.params is None]
    assert len(weightless) == len(ACTIVATION_NAMES) + 1 + 10 + 1
    assert all(analyzer.assignment[n.name] == rules.Pass() for n in weightless)
    relevance = analyzer.analyze(make_inputs(model, 2, "both", seed=18))
    assert np.all(np.isfinite(relevance))


# --------------------------------------------------------------------------- keras.applications' own layers


def test_inception_resnet_scale_layer_splits_relevance_by_contribution():
    custom_scale = application_layer_classes(("inception_resnet_v2", "CustomScaleLayer"))[0]
    keras.utils.set_random_seed(19)
    x = keras.Input((6,))
    shortcut = L.Dense(5, activation="relu", **_he("shortcut"))(x)
    branch = L.Dense(5, activation="relu", **_he("branch"))(x)
    h = custom_scale(0.17, name="scaled_add")([shortcut, branch])
    model = keras.Model(x, L.Dense(3, **_he("logits"))(h))
    analyzer = tfxai.create_analyzer("lrp.z", model)
    assert analyzer.assignment["scaled_add"] == rules.Norm()
    x_data = make_inputs(model, 3, "both", seed=19)
    relevance = analyzer.analyze(x_data)
    _assert_close(relevance, _logit_ixg(model, x_data, predict(model, x_data).argmax(axis=1)), rtol=1e-4)


def test_convnext_stochastic_depth_is_the_identity():
    stochastic_depth = application_layer_classes(("convnext", "StochasticDepth"))[0]
    keras.utils.set_random_seed(20)
    x = keras.Input((6,))
    h = L.Dense(5, activation="relu", **_he("d1"))(x)
    h = L.Add()([h, stochastic_depth(0.5, name="drop_path")(L.Dense(5, **_he("d2"))(h))])
    model = keras.Model(x, L.Dense(3, **_he("logits"))(h))
    analyzer = tfxai.create_analyzer("lrp.z", model)
    assert analyzer.assignment["drop_path"] == rules.Pass()
    x_data = make_inputs(model, 3, "both", seed=20)
    relevance = analyzer.analyze(x_data)
    _assert_close(relevance, _logit_ixg(model, x_data, predict(model, x_data).argmax(axis=1)), rtol=1e-4)


def test_lambda_and_unknown_layers_fail_with_one_clear_error_or_take_a_registered_rule():
    class Scale(L.Layer):
        def call(self, inputs):
            return tf.math.scalar_mul(3.0, inputs)  # a raw TF op: tfxai cannot capture it

    x = keras.Input((4,))
    h = L.Lambda(lambda t: t * 2.0, name="double")(L.Dense(4, name="d1")(x))
    model = keras.Model(x, L.Dense(2, name="logits")(Scale(name="triple")(h)))
    with pytest.raises(tfxai.UnsupportedLayerError) as info:
        tfxai.create_analyzer("lrp.epsilon", model)
    assert sorted(info.value.nodes) == [("double", "Lambda"), ("triple", "Scale")]
    assert "tfxai.register_rule(" in str(info.value)
    try:
        tfxai.register_rule(Scale, rules.Pass())
        analyzer = tfxai.create_analyzer("lrp.epsilon", model, rules=[("double", rules.Pass())])
        assert np.all(np.isfinite(analyzer.analyze(make_inputs(model, 2, "both"))))
    finally:
        tfxai.unregister_rule(Scale)


def test_augmentation_layers_are_the_identity_at_inference():
    keras.utils.set_random_seed(21)
    x = keras.Input((8, 8, 3))
    h = x
    for layer in (
        L.RandomFlip(),
        L.RandomRotation(0.2),
        L.RandomTranslation(0.1, 0.1),
        L.RandomZoom(0.2),
        L.RandomContrast(0.3),
        L.RandomBrightness(0.2, value_range=(-3.0, 3.0)),
    ):
        h = layer(h)
    model = keras.Model(x, L.Dense(3, **_he("logits"))(L.Flatten()(h)))
    analyzer = tfxai.create_analyzer("lrp.z", model)
    augment = [n for n in analyzer.view.nodes if n.params is None and n.name.startswith("random")]
    assert len(augment) == 6 and all(analyzer.assignment[n.name] == rules.Pass() for n in augment)
    x_data = make_inputs(model, 2, "both", seed=21)
    _, _, predictions = analyzer.compiled("max_activation")(tf.constant(x_data))
    _assert_close(predictions[0].numpy(), predict(model, x_data), rtol=1e-6)
    relevance = analyzer.analyze(x_data)
    _assert_close(relevance, _logit_ixg(model, x_data, predict(model, x_data).argmax(axis=1)), rtol=1e-4)


# --------------------------------------------------------------------------- generalized gamma


def _numpy_generalized_gamma(a, W, b, R, gamma):
    """``R_j = sum_k (z_jk + g z_jk^s) / (z_k + g (sum_j z_jk^s + b_k^s)) R_k``, ``s`` the sign of ``z_k``.

    ``a`` (batch, n_in), ``W`` (n_in, n_out), ``b`` (n_out,), ``R`` (batch, n_out); explicit ``z_jk``.
    """
    out = np.zeros_like(a)
    for n in range(a.shape[0]):
        zjk = a[n][:, None] * W
        z = zjk.sum(axis=0) + b
        same = np.where(z >= 0, np.maximum(zjk, 0), np.minimum(zjk, 0))
        b_same = np.where(z >= 0, np.maximum(b, 0), np.minimum(b, 0))
        numerator = zjk + gamma * same
        denominator = z + gamma * (same.sum(axis=0) + b_same)
        out[n] = (numerator * (R[n] / denominator)).sum(axis=1)
    return out


def _one_layer(layer, input_shape, seed, signs="both"):
    rng = np.random.default_rng(seed)
    inp = keras.Input(input_shape, dtype="float64")
    model = keras.Model(inp, layer(inp))
    weights = [rng.normal(size=w.shape) for w in layer.get_weights()]
    if len(weights) == 2:
        weights[1] = np.where(np.arange(weights[1].size) % 2 == 0, 1.0, -1.0) * rng.uniform(
            0.2, 1.0, weights[1].size
        )
    layer.set_weights(weights)
    x = rng.normal(size=(3,) + input_shape) if signs == "both" else rng.uniform(0, 1, size=(3,) + input_shape)
    view = canonizers.canonize(build_view(model))
    _, states = reverse.forward(view, [tf.constant(x)])
    node = view.nodes[0]
    return node, states[node.name], x, rng


@pytest.mark.parametrize("gamma", [0.0, 0.25, 1.0])
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_generalized_gamma_against_numpy(kind, gamma):
    if kind == "dense":
        layer = L.Dense(4, dtype="float64")
        node, state, x, rng = _one_layer(layer, (6,), seed=30)
        W, out_shape = layer.kernel.numpy(), (4,)
    else:
        layer = L.Conv2D(3, 3, strides=2, padding="same", dtype="float64")
        node, state, x, rng = _one_layer(layer, (5, 5, 2), seed=31)
        W, _, out_shape = ref.conv2d_matrix(layer.kernel.numpy(), (5, 5, 2), (2, 2), "same")
    b = ref.expand_bias(layer.bias.numpy(), out_shape)
    R = rng.normal(size=(3, W.shape[1]))
    got = rules.GeneralizedGamma(gamma).backward(node, state, [tf.constant(R.reshape((3,) + out_shape))])[0]
    want = _numpy_generalized_gamma(x.reshape(3, -1), W, b, R, gamma)
    np.testing.assert_allclose(np.asarray(got).reshape(3, -1), want, rtol=1e-9, atol=1e-12)
    # Outputs of both signs received relevance: the case Gamma is not meant for.
    z = np.asarray(state.outputs[0]).reshape(3, -1)
    assert (z > 0).any() and (z < 0).any()


def test_generalized_gamma_is_gamma_on_rectified_outputs_of_non_negative_inputs():
    layer = L.Dense(5, dtype="float64")
    node, state, _, rng = _one_layer(layer, (6,), seed=32, signs="positive")
    z = np.asarray(state.outputs[0])
    relevance = tf.constant(np.where(z > 0, rng.normal(size=z.shape), 0.0))
    got = rules.GeneralizedGamma(0.3).backward(node, state, [relevance])[0]
    want = rules.Gamma(0.3).backward(node, state, [relevance])[0]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match="GeneralizedGamma expects gamma to be a finite number >= 0"):
        rules.GeneralizedGamma(-1.0)


def test_generalized_gamma_is_conservative_without_bias():
    layer = L.Conv2D(3, 3, padding="same", use_bias=False, dtype="float64")
    node, state, _, rng = _one_layer(layer, (4, 4, 2), seed=33)
    relevance = rng.normal(size=state.outputs[0].shape)
    got = rules.GeneralizedGamma(0.5).backward(node, state, [tf.constant(relevance)])[0]
    np.testing.assert_allclose(float(tf.reduce_sum(got)), relevance.sum(), rtol=1e-9)


def test_epsilon_gamma_box_gives_gamma_before_a_relu_and_generalized_gamma_elsewhere():
    keras.utils.set_random_seed(34)
    x = keras.Input((8, 8, 3))
    h = L.Conv2D(4, 3, padding="same", name="first")(x)
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="fused_relu")(h)
    b = L.ReLU(6.0, name="relu6")(L.BatchNormalization(name="bn")(L.Conv2D(4, 1, name="bn_relu")(a)))
    c = L.Conv2D(4, 1, activation="swish", name="swish")(b)
    d = L.Add(name="residual")([L.Conv2D(4, 1, name="to_add")(c), b])
    e = L.Conv2D(4, 1, name="leaky")(d)
    h = L.LeakyReLU(name="leaky_relu")(e)
    model = keras.Model(x, _head(h))
    assignment = tfxai.create_analyzer("lrp.epsilon_gamma_box", model).assignment
    assert assignment["first"] == rules.ZBox(-1.0, 1.0)
    assert assignment["fused_relu"] == rules.Gamma(0.25)
    assert assignment["bn_relu+bn"] == rules.Gamma(0.25)
    for name in ("swish", "to_add", "leaky"):
        assert assignment[name] == rules.GeneralizedGamma(0.25), name
    assert assignment["logits"] == rules.Epsilon(1e-6)
