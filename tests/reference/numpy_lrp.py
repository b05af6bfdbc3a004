"""LRP on the four reference networks in float64 NumPy, in tfxai's and in iNNvestigate's conventions.

An oracle for the reference tests that shares no code with tfxai: every
weighted layer becomes an explicit connection matrix and every rule is a
literal formula from ``tests/numpy_reference.py`` (explicit ``z_jk``), run on
the weights and inputs stored in ``data/networks.npz``. The networks are those
of ``networks.py``, written out by hand (:data:`GRAPHS`).

Two conventions (:func:`relevance`):

* ``"tfxai"``: what tfxai documents (LRP_REFERENCE.md): inference BatchNorm
  folded into the layer before it (``W s``, ``(b - mean) s + beta``,
  ``s = gamma / sqrt(var + eps)``); alpha-beta adds ``b+`` to ``z+`` and
  ``b-`` to ``z-``; average pooling and ``Add`` split in proportion to the
  contributions; max pooling winner-take-all.
* ``"innvestigate"``: what iNNvestigate 2.1.2's source does
  (``analyzer/relevance_based``, ``analyzer/deeptaylor.py``,
  ``backend/graph.py``): alpha-beta adds the FULL bias to both denominators;
  a BatchNorm is a layer of its own, an element-wise affine "surrogate" with
  scale ``gamma / sqrt(var**2 + eps)`` and shift
  ``beta - mean / sqrt(var**2 + eps)``, to which the analyzer's
  ``bn_layer_rule`` is applied (the sequential presets: ``AlphaBetaX2m100``;
  the others: their own rule); deep Taylor passes BatchNorm, average pooling
  and ``Add`` by their gradient.

Relevance starts from the explained logit (``R = y_c``) in both.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np

import numpy_reference as ref
from reference import networks

BN_EPSILON = 1e-3
"""Keras' default BatchNormalization epsilon, which ``networks.py`` uses."""


@dataclasses.dataclass(frozen=True)
class Op:
    """One layer of a reference network: ``output = kind(inputs)``."""

    name: str
    kind: str  # dense, conv, bn, relu, activation, maxpool, avgpool, flatten, add, concat
    inputs: tuple
    padding: str = "same"


def _chain(*layers):
    """Ops of a sequential network: each reads the previous output (``"x"`` first)."""
    ops, previous = [], "x"
    for name, kind in layers:
        ops.append(Op(name, kind, (previous,)))
        previous = name
    return tuple(ops)


GRAPHS = {
    "mlp": _chain(("dense1", "dense"), ("relu1", "relu"), ("dense2", "dense"), ("relu2", "relu"),
                  ("logits", "dense")),
    "cnn": _chain(("conv1", "conv"), ("relu1", "relu"), ("maxpool", "maxpool"), ("conv2", "conv"),
                  ("relu2", "relu"), ("avgpool", "avgpool"), ("flatten", "flatten"), ("dense1", "dense"),
                  ("relu3", "relu"), ("logits", "dense")),
    "residual": (
        Op("conv1", "conv", ("x",)),
        Op("relu1", "relu", ("conv1",)),
        Op("conv2", "conv", ("relu1",)),
        Op("relu2", "relu", ("conv2",)),
        Op("conv3", "conv", ("relu2",)),
        Op("skip_add", "add", ("relu1", "conv3")),
        Op("relu_add", "activation", ("skip_add",)),
        Op("conv_side", "conv", ("relu1",), padding="valid"),
        Op("relu_side", "relu", ("conv_side",)),
        Op("branch_concat", "concat", ("relu_add", "relu_side")),
        Op("maxpool", "maxpool", ("branch_concat",)),
        Op("flatten", "flatten", ("maxpool",)),
        Op("logits", "dense", ("flatten",)),
    ),
    "bn": _chain(("conv1", "conv"), ("bn1", "bn"), ("relu1", "activation"), ("maxpool", "maxpool"),
                 ("conv2", "conv"), ("bn2", "bn"), ("relu2", "activation"), ("avgpool", "avgpool"),
                 ("flatten", "flatten"), ("dense1", "dense"), ("bn3", "bn"), ("relu3", "activation"),
                 ("logits", "dense")),
}
"""The layers of each network of ``networks.py``: a fused ReLU (``Dense(activation="relu")``) is the
op ``relu``, an ``Activation("relu")`` layer the op ``activation``."""

FIRST = {"mlp": "dense1", "cnn": "conv1", "residual": "conv1", "bn": "conv1"}
"""The weighted layer that sees the input."""


# --------------------------------------------------------------------------- rules of weighted layers
# Each takes (a, W, b, R, connected) on flattened samples and returns the input relevance.


def z_rule():
    return lambda a, W, b, R, connected: ref.lrp_z(a, W, b, R)[0]


def epsilon_rule(epsilon):
    return lambda a, W, b, R, connected: ref.lrp_epsilon(a, W, b, R, epsilon)[0]


def alpha_beta_rule(alpha, beta, ignore_bias=False):
    """tfxai's (and zennit's) alpha-beta: ``b+`` joins ``z+``, ``b-`` joins ``z-``."""

    def rule(a, W, b, R, connected):
        return ref.lrp_alpha_beta(a, W, 0 * b if ignore_bias else b, R, alpha, beta)[0]

    return rule


def full_bias_alpha_beta_rule(alpha, beta):
    """iNNvestigate's alpha-beta with a bias: the full ``b`` joins both ``z+`` and ``z-``."""

    def rule(a, W, b, R, connected):
        a, W, b, R = (np.asarray(v, np.float64) for v in (a, W, b, R))
        result = np.zeros_like(a)
        for n in range(len(a)):
            zjk = a[n][:, None] * W
            z_pos, z_neg = np.maximum(zjk, 0.0), np.minimum(zjk, 0.0)
            r_pos, _ = ref.redistribute(z_pos, z_pos.sum(axis=0) + b, R[n], np.abs(zjk).sum(axis=0))
            r_neg, _ = ref.redistribute(z_neg, z_neg.sum(axis=0) + b, R[n], np.abs(zjk).sum(axis=0))
            result[n] = alpha * r_pos - beta * r_neg
        return result

    return rule


def alpha_beta_x2m100_rule():
    """iNNvestigate's ``AlphaBetaX2m100Rule`` (its presets' BatchNorm rule), bias kept.

    ``2 * R(a+ w+; z = a+ w+ + b+)  -  R(a+ w-; z = a+ w- + b-)``: contributions
    of negative inputs get nothing.
    """

    def part(a_pos, W_part, b_part, R_n):
        zjk = a_pos[:, None] * W_part
        return ref.redistribute(zjk, zjk.sum(axis=0) + b_part, R_n, np.abs(zjk).sum(axis=0))[0]

    def rule(a, W, b, R, connected):
        a, W, b, R = (np.asarray(v, np.float64) for v in (a, W, b, R))
        W_pos, W_neg = np.maximum(W, 0.0), np.minimum(W, 0.0)
        b_pos, b_neg = np.maximum(b, 0.0), np.minimum(b, 0.0)
        result = np.zeros_like(a)
        for n in range(len(a)):
            a_pos = np.maximum(a[n], 0.0)
            result[n] = 2.0 * part(a_pos, W_pos, b_pos, R[n]) - part(a_pos, W_neg, b_neg, R[n])
        return result

    return rule


def gamma_rule(gamma):
    return lambda a, W, b, R, connected: ref.lrp_gamma(a, W, b, R, gamma)[0]


def zbox_rule(low, high):
    def rule(a, W, b, R, connected):
        return ref.lrp_zbox(a, W, R, np.full(a.shape, low), np.full(a.shape, high))[0]

    return rule


def flat_rule():
    return lambda a, W, b, R, connected: ref.lrp_flat(connected, R)[0]


def w_square_rule():
    return lambda a, W, b, R, connected: ref.lrp_wsquare(W, R)[0]


# --------------------------------------------------------------------------- methods


@dataclasses.dataclass(frozen=True)
class Convention:
    """How one analyzer treats every layer of a network."""

    weighted: Callable
    """``weighted(kind, is_first) -> rule`` for Dense and Conv layers."""
    batchnorm: object = "fold"
    """``"fold"``, ``"gradient"``, or a rule applied to iNNvestigate's surrogate layer."""
    gradient_merges: bool = False
    """Average pooling, ``Add`` and ``Activation`` layers by their gradient (iNNvestigate's deep Taylor).

    Otherwise pooling and ``Add`` split in proportion to the contributions and
    activations pass relevance unchanged; a ReLU fused into a Dense or Conv
    layer always passes it (iNNvestigate applies the layer's rule to the
    relevance of the activated output)."""


def _uniform(rule, first=None):
    return lambda kind, is_first: first if (is_first and first is not None) else rule


def _preset(conv, epsilon=0.1, first=None):
    def weighted(kind, is_first):
        if is_first and first is not None:
            return first
        return epsilon_rule(epsilon) if kind == "dense" else conv

    return weighted


LOW_HIGH = (networks.LOW, networks.HIGH)


def conventions(method: str, library: str) -> Convention:
    """The :class:`Convention` of ``method`` in ``library``.

    ``method`` is a key of ``data/innvestigate.npz`` (``"lrp.z"``,
    ``"lrp.epsilon_0.1"``, ``"deep_taylor"``...); for ``library="tfxai"`` also
    ``"lrp.gamma"`` (0.25), ``"lrp.epsilon_plus"``, ``"lrp.epsilon_plus_flat"``
    and, on the MLP, ``"lrp.epsilon_gamma_box"`` (tfxai's defaults, epsilon 1e-6).
    """
    inn = library == "innvestigate"
    if library not in ("tfxai", "innvestigate"):
        raise ValueError(library)

    def alpha_beta(alpha, beta):
        return full_bias_alpha_beta_rule(alpha, beta) if inn else alpha_beta_rule(alpha, beta)

    def lrp(rule, first=None, bn_rule=None):
        return Convention(_uniform(rule, first), bn_rule if inn else "fold")

    z_plus = alpha_beta_rule(1.0, 0.0, ignore_bias=True)
    table = {
        "lrp.z": lambda: lrp(z_rule(), bn_rule=z_rule()),
        "lrp.epsilon": lambda: lrp(epsilon_rule(1e-7), bn_rule=epsilon_rule(1e-7)),
        "lrp.epsilon_0.1": lambda: lrp(epsilon_rule(0.1), bn_rule=epsilon_rule(0.1)),
        "lrp.alpha_1_beta_0": lambda: lrp(alpha_beta(1.0, 0.0), bn_rule=alpha_beta(1.0, 0.0)),
        "lrp.alpha_2_beta_1": lambda: lrp(alpha_beta(2.0, 1.0), bn_rule=alpha_beta(2.0, 1.0)),
        "lrp.alpha_1_beta_0_IB": lambda: lrp(
            alpha_beta_rule(1.0, 0.0, True), bn_rule=alpha_beta_rule(1.0, 0.0, True)
        ),
        "lrp.alpha_2_beta_1_IB": lambda: lrp(
            alpha_beta_rule(2.0, 1.0, True), bn_rule=alpha_beta_rule(2.0, 1.0, True)
        ),
        "lrp.z_plus": lambda: lrp(z_plus, bn_rule=z_plus),
        "lrp.w_square": lambda: lrp(w_square_rule(), bn_rule=w_square_rule()),
        "lrp.flat": lambda: lrp(flat_rule(), bn_rule=flat_rule()),
        "lrp.bounded": lambda: lrp(z_rule(), first=zbox_rule(*LOW_HIGH), bn_rule=z_rule()),
    }
    for name, (alpha, beta) in {"a": (1.0, 0.0), "b": (2.0, 1.0)}.items():
        for suffix, first in (("", None), ("_flat", flat_rule())):
            weighted = _preset(alpha_beta(alpha, beta), first=first)
            bn = alpha_beta_x2m100_rule() if inn else "fold"
            table[f"lrp.sequential_preset_{name}{suffix}"] = (
                lambda weighted=weighted, bn=bn: Convention(weighted, bn)
            )
    for name, first in (("deep_taylor", None), ("deep_taylor.bounded", zbox_rule(*LOW_HIGH))):
        table[name] = lambda first=first: Convention(
            _uniform(z_plus, first), "gradient" if inn else "fold", gradient_merges=inn
        )
    if not inn:  # tfxai's own rules and composites (the zennit tests' documented differences)
        table["lrp.gamma"] = lambda: Convention(_uniform(gamma_rule(0.25)))
        table["lrp.epsilon_plus"] = lambda: Convention(_preset(z_plus, epsilon=1e-6))
        table["lrp.epsilon_plus_flat"] = lambda: Convention(_preset(z_plus, epsilon=1e-6, first=flat_rule()))
        table["lrp.epsilon_gamma_box"] = lambda: Convention(_dense_only(epsilon_rule(1e-6), zbox_rule(*LOW_HIGH)))
    return table[method]()


def _dense_only(rule, first):
    """A composite for networks without convolutions (the Gamma variants of convolutions are not here)."""

    def weighted(kind, is_first):
        if kind != "dense":
            raise NotImplementedError("this NumPy composite covers Dense layers only")
        return first if is_first else rule

    return weighted


# --------------------------------------------------------------------------- the walk


def _weights(arrays, prefix, name):
    return [np.asarray(arrays[f"{prefix}/{name}/{i}"], np.float64) for i in range(2)]


def _batchnorm(arrays, prefix, name):
    gamma, beta, mean, var = (np.asarray(arrays[f"{prefix}/{name}/{i}"], np.float64) for i in range(4))
    return gamma, beta, mean, var


@functools.lru_cache(maxsize=None)
def _matrix(kind, kernel_bytes, kernel_shape, input_shape, padding):
    kernel = np.frombuffer(kernel_bytes, np.float64).reshape(kernel_shape)
    if kind == "dense":
        return ref.dense_matrix(kernel, input_shape)
    return ref.conv2d_matrix(kernel, input_shape, (1, 1), padding)


def _linear(kind, kernel, input_shape, padding):
    kernel = np.ascontiguousarray(kernel, np.float64)
    return _matrix(kind, kernel.tobytes(), kernel.shape, tuple(input_shape), padding)


def relevance(arrays: dict, prefix: str, method: str, library: str) -> np.ndarray:
    """Relevance of each stored input of ``prefix`` for its target logit, float64, shaped as the inputs.

    ``arrays`` is ``data/networks.npz`` (weights, inputs, targets);
    ``prefix`` a network (or ``"bn_unit"``), ``method`` a golden key and
    ``library`` ``"tfxai"`` or ``"innvestigate"``.
    """
    network = "bn" if prefix.startswith("bn") else prefix
    convention = conventions(method, library)
    x = np.asarray(arrays[f"{prefix}/x"], np.float64)
    targets = np.asarray(arrays[f"{prefix}/targets"])
    batch = len(x)
    ops = list(GRAPHS[network])
    producers = {op.name: op for op in ops}
    if convention.batchnorm == "fold":
        ops = [op for op in ops if op.kind != "bn"]
    bn_after = {producers[op.inputs[0]].name: op.name for op in GRAPHS[network] if op.kind == "bn"}
    reads = {}  # a BN removed by folding: its consumer reads the folded layer
    if convention.batchnorm == "fold":
        reads = {bn: linear for linear, bn in bn_after.items()}

    values = {"x": x.reshape(batch, -1)}
    shapes = {"x": x.shape[1:]}
    saved = {}  # op name -> what its backward needs
    for op in ops:
        inputs = [reads.get(name, name) for name in op.inputs]
        a = [values[name] for name in inputs]
        in_shapes = [shapes[name] for name in inputs]
        if op.kind in ("dense", "conv"):
            kernel, bias = _weights(arrays, prefix, op.name)
            W, connected, out_shape = _linear(op.kind, kernel, in_shapes[0], op.padding)
            b = ref.expand_bias(bias, out_shape)
            if op.name in bn_after and convention.batchnorm == "fold":
                gamma, beta, mean, var = _batchnorm(arrays, prefix, bn_after[op.name])
                scale = gamma / np.sqrt(var + BN_EPSILON)
                s = ref.expand_bias(scale, out_shape)
                W, b = W * s[None, :], b * s + ref.expand_bias(beta - mean * scale, out_shape)
            out = a[0] @ W + b
            saved[op.name] = (a[0], W, b, connected)
        elif op.kind == "bn":
            gamma, beta, mean, var = _batchnorm(arrays, prefix, op.name)
            out_shape = in_shapes[0]
            true_scale = ref.expand_bias(gamma / np.sqrt(var + BN_EPSILON), out_shape)
            out = a[0] * true_scale + ref.expand_bias(beta - mean * gamma / np.sqrt(var + BN_EPSILON), out_shape)
            # iNNvestigate's surrogate (backend/graph.py, apply_mapping_to_fused_bn_layer)
            root = np.sqrt(var**2 + BN_EPSILON)
            k, shift = ref.expand_bias(gamma / root, out_shape), ref.expand_bias(beta - mean / root, out_shape)
            saved[op.name] = (a[0], np.diag(k), shift, np.eye(len(k), dtype=bool), true_scale)
        elif op.kind in ("relu", "activation"):
            out, out_shape = np.maximum(a[0], 0.0), in_shapes[0]
            saved[op.name] = a[0]
        elif op.kind in ("maxpool", "avgpool"):
            out_shape, windows = ref.pool2d_windows(in_shapes[0], (2, 2), (2, 2), "valid")
            pool = np.max if op.kind == "maxpool" else np.mean
            out = np.stack([[pool(sample[w]) for w in windows] for sample in a[0]])
            saved[op.name] = (a[0], windows)
        elif op.kind == "flatten":
            out, out_shape = a[0], (int(np.prod(in_shapes[0])),)
        elif op.kind == "add":
            out, out_shape = a[0] + a[1], in_shapes[0]
            saved[op.name] = a
        elif op.kind == "concat":
            parts = [v.reshape((batch,) + s) for v, s in zip(a, in_shapes)]
            joined = np.concatenate(parts, axis=-1)
            out, out_shape = joined.reshape(batch, -1), joined.shape[1:]
            saved[op.name] = in_shapes
        else:
            raise ValueError(op.kind)
        values[op.name], shapes[op.name] = out, tuple(out_shape)

    logits = values[ops[-1].name]
    start = np.zeros_like(logits)
    start[np.arange(batch), targets] = logits[np.arange(batch), targets]
    R = {ops[-1].name: start}
    for op in reversed(ops):
        r = R.pop(op.name)
        inputs = [reads.get(name, name) for name in op.inputs]
        if op.kind in ("dense", "conv"):
            a, W, b, connected = saved[op.name]
            rule = convention.weighted(op.kind, op.name == FIRST[network])
            back = [rule(a, W, b, r, connected)]
        elif op.kind == "bn":
            a, K, shift, connected, true_scale = saved[op.name]
            if convention.batchnorm == "gradient":
                back = [r * true_scale]
            else:
                back = [convention.batchnorm(a, K, shift, r, connected)]
        elif op.kind == "activation" and convention.gradient_merges:
            back = [r * (saved[op.name] > 0)]
        elif op.kind in ("relu", "activation", "flatten"):
            back = [r]
        elif op.kind == "maxpool":
            a, windows = saved[op.name]
            back = [ref.max_route(a, windows, r)]
        elif op.kind == "avgpool":
            a, windows = saved[op.name]
            if convention.gradient_merges:
                spread = np.zeros_like(a)
                for k, window in enumerate(windows):
                    spread[:, window] += r[:, k : k + 1] / len(window)
                back = [spread]
            else:
                back = [ref.norm_pooling(a, windows, r)[0]]
        elif op.kind == "add":
            if convention.gradient_merges:
                back = [r, r]
            else:
                parts = [ref.norm_add([v[n] for v in saved[op.name]], r[n])[0] for n in range(batch)]
                back = [np.stack([p[i] for p in parts]) for i in range(2)]
        elif op.kind == "concat":
            in_shapes = saved[op.name]
            batched = [(batch,) + s for s in in_shapes]
            pieces = ref.concatenate_split(batched, r.reshape((batch,) + shapes[op.name]), axis=-1)
            back = [p.reshape(batch, -1) for p in pieces]
        for name, piece in zip(inputs, back):
            R[name] = R[name] + piece if name in R else piece
    return R["x"].reshape(x.shape)
