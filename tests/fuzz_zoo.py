"""A seeded generator of random Keras models (DAGs of supported layers) and a checker.

``random_model(seed)`` draws, from ``numpy.random.default_rng(seed)``: one or two inputs
(vectors ``(6,)`` or images ``(6, 6, 2)``), 3 to 7 layers each applied to a tensor (or two)
drawn from those built so far (Dense, Conv2D, DepthwiseConv2D, pooling, BatchNormalization,
ReLU, Dropout, GaussianNoise, Add, Concatenate, Flatten, global pooling), one or two Dense
heads, and a variant: plain, bias-free (BatchNorms with ``t = 0``: conservation must hold),
very large or very small weights (all kernels times 1e3 / 1e-3 in float32; times 30 / 1e-3
under mixed precision, where 1e3 would overflow float16), or dead ReLUs (one layer's bias -100).
Every fourth model is built under ``mixed_float16``. Inputs include an all-zero sample.

``check_model(case)`` runs the analyzers given and returns a :class:`Tally`.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

import tfxai
from tfxai.analyzers import analyzer_names
from tfxai.errors import TfxaiError

L = keras.layers
LARGE_MIXED = 30.0
"""Kernel factor of the "large" variant under mixed precision: outputs reach 2e4 (seed 107), near float16's
largest 65504; 1e3 would overflow the model itself."""
VARIANTS = ("plain", "bias_free", "large", "small", "dead")
CAM = ("grad_cam", "grad_cam_plus_plus", "score_cam")
NEEDS_BACKGROUND = ("deep_shap", "gradient_shap")


def analyzer_kwargs(name, data) -> dict:
    """Required parameters: a background of one all-zero sample per input for the SHAP analyzers."""
    if name not in NEEDS_BACKGROUND:
        return {}
    background = [np.zeros_like(x[:1]) for x in data]
    return {"background": background[0] if len(background) == 1 else background}


@dataclasses.dataclass
class Case:
    seed: int
    model: keras.Model
    data: list
    bias_free: bool
    mixed: bool
    has_conv: bool


@dataclasses.dataclass
class Tally:
    models: int = 0
    analyses: int = 0
    crashes: list = dataclasses.field(default_factory=list)
    non_finite: list = dataclasses.field(default_factory=list)
    conservation_checked: int = 0
    conservation_failures: list = dataclasses.field(default_factory=list)
    refusals: list = dataclasses.field(default_factory=list)
    exports: int = 0
    export_mismatches: list = dataclasses.field(default_factory=list)

    def add(self, other: "Tally") -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def counts(self) -> dict:
        return {f.name: v if isinstance(v, int) else len(v) for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}


def _layer(rng, tensor, use_bias, names):
    """One random layer applicable to ``tensor`` (rank 2 or 4)."""
    name = f"l{len(names)}"
    names.append(name)
    if len(tensor.shape) == 2:
        kind = rng.choice(["dense", "dense_relu", "relu", "bn", "dropout"])
        if kind.startswith("dense"):
            act = "relu" if kind == "dense_relu" else None
            return L.Dense(int(rng.integers(3, 7)), activation=act, use_bias=use_bias, name=name)
    else:
        spatial = tensor.shape[1]
        kinds = ["conv", "conv_relu", "depthwise", "relu", "bn", "noise", "flatten", "gap", "gmp"]
        kinds += ["maxpool", "avgpool"] if spatial >= 2 else []
        kind = rng.choice(kinds)
        padding = "same" if spatial < 3 else str(rng.choice(["same", "valid"]))
        if kind.startswith("conv"):
            size = int(rng.integers(1, 4)) if padding == "same" else int(rng.integers(1, min(3, spatial) + 1))
            act = "relu" if kind == "conv_relu" else None
            return L.Conv2D(int(rng.integers(2, 4)), size, padding=padding, activation=act, use_bias=use_bias, name=name)
        if kind == "depthwise":
            return L.DepthwiseConv2D(1 if padding == "valid" else 3, padding=padding, use_bias=use_bias, name=name)
        pools = {"maxpool": L.MaxPooling2D, "avgpool": L.AveragePooling2D}
        if kind in pools:
            return pools[kind](2, padding="same", name=name)
        simple = {"flatten": L.Flatten, "gap": L.GlobalAveragePooling2D, "gmp": L.GlobalMaxPooling2D}
        if kind in simple:
            return simple[kind](name=name)
        if kind == "noise":
            return L.GaussianNoise(0.5, name=name)
    if kind == "relu":
        return L.ReLU(name=name)
    if kind == "dropout":
        return L.Dropout(0.5, name=name)
    return L.BatchNormalization(center=use_bias, name=name)  # bias-free models: t = 0


def _merge(rng, pool, names):
    """An Add or Concatenate of two tensors of equal shape (or equal rank-2 batch), else None."""
    for _ in range(4):
        a, b = rng.choice(len(pool), 2, replace=False)
        ta, tb = pool[a], pool[b]
        if ta.shape == tb.shape:
            names.append(f"m{len(names)}")
            layer = L.Add(name=names[-1]) if rng.random() < 0.5 else L.Concatenate(name=names[-1])
            return layer([ta, tb])
        if len(ta.shape) == len(tb.shape) == 2:
            names.append(f"m{len(names)}")
            return L.Concatenate(name=names[-1])([ta, tb])
    return None


def _to_vector(tensor, name):
    return tensor if len(tensor.shape) == 2 else L.GlobalAveragePooling2D(name=name)(tensor)


def _build(rng, variant):
    use_bias = variant != "bias_free"
    inputs = [
        keras.Input((6,) if rng.random() < 0.4 else (6, 6, 2), name=f"in{i}")
        for i in range(1 if rng.random() < 0.7 else 2)
    ]
    pool, names = list(inputs), []
    for _ in range(int(rng.integers(3, 8))):
        if len(pool) > 1 and rng.random() < 0.25:
            merged = _merge(rng, pool, names)
            if merged is not None:
                pool.append(merged)
                continue
        source = pool[int(rng.integers(len(pool)))] if rng.random() < 0.5 else pool[-1]
        pool.append(_layer(rng, source, use_bias, names)(source))
    vectors = [_to_vector(t, f"head_gap{i}") for i, t in enumerate([pool[-1], pool[int(rng.integers(len(pool)))]])]
    heads = [L.Dense(3, use_bias=use_bias, name="out0")(vectors[0])]
    if rng.random() < 0.3:
        heads.append(L.Dense(2, use_bias=use_bias, name="out1")(vectors[1]))
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], heads if len(heads) > 1 else heads[0], name="fuzz")


def _perturb(rng, model, variant, mixed):
    scale = {"large": LARGE_MIXED if mixed else 1e3, "small": 1e-3}.get(variant, 1.0)
    weighted = [layer for layer in model.layers if hasattr(layer, "kernel") or hasattr(layer, "depthwise_kernel")]
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.moving_variance.shape
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, c).astype("float32"))
            layer.gamma.assign((rng.uniform(0.5, 2.0, c) * rng.choice([-1, 1], c)).astype("float32"))
            if layer.center:
                layer.moving_mean.assign(rng.normal(0, 0.5, c).astype("float32"))
                layer.beta.assign(rng.normal(0, 0.5, c).astype("float32"))
    for layer in weighted:
        kernel = layer.kernel if hasattr(layer, "kernel") else layer.depthwise_kernel
        kernel.assign(kernel * scale)
        if getattr(layer, "use_bias", False) and layer.bias is not None:
            layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape).astype("float32") * scale)
    if variant == "dead" and weighted:
        layer = weighted[int(rng.integers(len(weighted)))]
        if layer.use_bias:
            layer.bias.assign(np.full(layer.bias.shape, -100.0, "float32"))


def random_case(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    variant = VARIANTS[seed % len(VARIANTS)]
    mixed = seed % 4 == 3
    keras.utils.set_random_seed(seed)
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _build(rng, variant)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    _perturb(rng, model, variant, mixed)
    data = []
    for spec in model.inputs:
        x = rng.normal(size=(3,) + tuple(spec.shape[1:])).astype("float32")
        x[0] = 0.0  # an all-zero sample
        data.append(x)
    has_conv = any(isinstance(layer, (L.Conv2D, L.DepthwiseConv2D)) for layer in model.layers)
    return Case(seed, model, data, variant == "bias_free", mixed, has_conv)


def names_for(seed: int, per_model: int = 4) -> list:
    """The analyzers model ``seed`` is checked with: a rotation through every registered name."""
    names = analyzer_names()
    return [names[(per_model * seed + j) % len(names)] for j in range(per_model)]


def _x(case):
    return case.data[0] if len(case.data) == 1 else case.data


def refusal_is_right(name, case) -> bool:
    """Where a clear refusal is the right answer: Grad-CAM without a convolution, RISE without one image input."""
    if name in CAM:
        return not case.has_conv
    if name == "rise":
        return not (len(case.data) == 1 and case.data[0].ndim == 4)
    return False


def check_case(case: Case, names, export_dir=None) -> Tally:
    tally = Tally(models=1)
    outputs = case.model(_x(case))
    for y in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
        assert np.all(np.isfinite(np.asarray(y, np.float64))), f"seed {case.seed}: the model itself is not finite"
    for name in names:
        tally.analyses += 1
        label = f"seed {case.seed} {name}"
        try:
            relevance = tfxai.create_analyzer(name, case.model, **analyzer_kwargs(name, case.data)).analyze(_x(case))
        except TfxaiError as error:
            if refusal_is_right(name, case):
                tally.refusals.append(label)
            else:
                tally.crashes.append(f"{label}: {type(error).__name__}: {error}")
            continue
        except Exception as error:  # noqa: BLE001 -- counting crashes is the point
            tally.crashes.append(f"{label}: {type(error).__name__}: {str(error)[:300]}")
            continue
        parts = relevance if isinstance(relevance, list) else [relevance]
        if not all(np.all(np.isfinite(np.asarray(r, np.float64))) for r in parts):
            tally.non_finite.append(label)
    if case.bias_free:
        _check_conservation(case, tally)
    if export_dir is not None:
        _check_export(case, tally, export_dir)
    return tally


def _check_conservation(case, tally):
    """LRP-0 on a bias-free ReLU net: the input relevance sums to the explained logit."""
    tally.conservation_checked += 1
    relevance, delta = tfxai.create_analyzer("lrp.z", case.model).analyze(_x(case), return_delta=True)
    outputs = case.model(_x(case))
    first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    scale = np.abs(np.asarray(first, np.float64)).max()
    # float32: rounding of a few dozen terms per unit; float16: 2 * depth * u, depth <= 9 linear/pool layers
    tolerance = (2 * 9 * 2.0**-11 if case.mixed else 1e-5) * scale + 1e-30
    if np.abs(delta).max() > tolerance:
        tally.conservation_failures.append(f"seed {case.seed}: |delta| {np.abs(delta).max():.3g} > {tolerance:.3g}")


def _check_export(case, tally, export_dir):
    """Eager ``analyze`` equals the reloaded SavedModel's ``serving_default``."""
    tally.exports += 1
    analyzer = tfxai.create_analyzer("lrp.epsilon", case.model)
    path = f"{export_dir}/seed{case.seed}"
    analyzer.export(path)
    serving = tf.saved_model.load(path).signatures["serving_default"]
    names = list(serving.structured_input_signature[1])
    feeds = {spec.name: tf.constant(x) for spec, x in zip(analyzer.input_specs, case.data) if spec.name in names}
    outputs = serving(**feeds)
    want = analyzer.analyze(_x(case))
    want = want if isinstance(want, list) else [want]
    got = [np.asarray(outputs[k], np.float32) for k in sorted(outputs) if "relevance" in k]
    ok = len(got) == len(want) and all(
        np.allclose(g, w, rtol=1e-5, atol=1e-6 * max(np.abs(w).max(), 1e-30)) for g, w in zip(got, want)
    )
    if not ok:
        tally.export_mismatches.append(f"seed {case.seed}")
