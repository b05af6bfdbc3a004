"""Multi-head attention as explicit steps for LRP.

``keras.layers.MultiHeadAttention`` computes, per head,
``A = softmax(q k^T / sqrt(d) + mask)`` from ``q = query W_q``,
``k = key W_k``, then ``y = (A v) W_o`` with ``v = value W_v``. This module
recomputes those steps from the layer's public projections (``query_dense``,
``key_dense``, ``value_dense``, ``output_dense``) and its Keras masks, and
propagates relevance through them:

* :func:`conservative_relevance` (Ali et al. 2022): the attention weights
  ``A`` are constants, so ``y`` is linear in ``value``; relevance flows
  through the output projection, the mixing by ``A`` and the value
  projection with a linear rule. The query and the key get none.
* :func:`attnlrp_relevance` (Achtibat et al. 2024, AttnLRP): as above, plus
  relevance through ``A``: the bilinear products ``A v`` and ``q k^T`` split
  relevance equally between their two factors (uniform rule, each half
  distributed with the linear rule's stabiliser), and the softmax gets
  ``R_s = s (R_A - A sum(R_A))`` on its input scores ``s``. Not conservative
  (the softmax rule's bias term absorbs relevance), as in the paper.

Supported: rank-3 inputs ``(batch, time, features)`` with the default
attention axes, Keras masks (``mask_zero``, ``Masking``), an explicit
``attention_mask`` tensor, ``key=``, and ``use_causal_mask=True``. Not
supported (a ``ValueError`` names them): explicit ``query_mask`` /
``value_mask`` / ``key_mask`` arguments, ``use_gate``, sliding windows,
other attention axes.

References
----------
Ali, Schnake, Eberle, Montavon, Mueller, Wolf (2022). XAI for transformers:
better explanations through conservative propagation. ICML.
Achtibat, Hatefi, Dreyer, Jain, Wiegand, Lapuschkin, Samek (2024). AttnLRP:
attention-aware layer-wise relevance propagation for transformers. ICML.
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from tfxai.errors import ModelError

_SCORES = "bsnh,btnh->bnts"
_COMBINE = "bnts,bsnh->btnh"


@dataclasses.dataclass
class Attention:
    """The tensors of one attention call (see the module docstring)."""

    query: tf.Tensor
    key: tf.Tensor
    value: tf.Tensor
    q: tf.Tensor
    k: tf.Tensor
    v: tf.Tensor
    scores: tf.Tensor
    weights: tf.Tensor
    context: tf.Tensor
    output: tf.Tensor


def roles(node):
    """Input positions of ``(query, value, key)`` of a MultiHeadAttention node (key may be None)."""
    kwargs = node.call_kwargs
    unsupported = sorted(
        name for name in ("query_mask", "value_mask", "key_mask") if kwargs.get(name) is not None
    )
    config = node.layer.get_config()
    if unsupported or config.get("use_gate") or config.get("sliding_window"):
        raise ModelError(
            f"MultiHeadAttention node {node.name!r}: tfxai's attention rules support Keras masks, "
            f"attention_mask and use_causal_mask, not explicit {unsupported or 'use_gate / sliding_window'}."
        )
    named = {
        kwargs[name]
        for name in ("query", "value", "key", "attention_mask")
        if isinstance(kwargs.get(name), int)
    }
    positional = [i for i in range(len(node.inputs)) if i not in named]
    order = iter(positional)
    found = {}
    for name in ("query", "value", "key"):
        found[name] = kwargs[name] if isinstance(kwargs.get(name), int) else next(order, None)
    return found["query"], found["value"], found["key"]


def _check_shapes(layer, query):
    axes = layer.attention_axes
    if query.shape.rank != 3 or (axes is not None and tuple(axes) != (1,)):
        raise ModelError(
            f"MultiHeadAttention {layer.name!r}: tfxai's attention rules need inputs of shape "
            f"(batch, time, features) attending over time. Received: input rank {query.shape.rank}, "
            f"attention_axes={axes}"
        )


def _mask(query, key, query_mask, value_mask, key_mask, causal, attention_mask=None):
    """Boolean ``(batch, 1, T, S)`` mask as MultiHeadAttention builds it, or None."""
    mask = None if attention_mask is None else tf.cast(attention_mask, tf.bool)
    for part in (
        None if query_mask is None else tf.cast(query_mask, tf.bool)[:, :, None],
        None if value_mask is None else tf.cast(value_mask, tf.bool)[:, None, :],
        None if key_mask is None else tf.cast(key_mask, tf.bool)[:, None, :],
    ):
        if part is not None:
            mask = part if mask is None else mask & part
    if causal:
        t, s = tf.shape(query)[1], tf.shape(key)[1]
        lower = tf.range(t)[:, None] >= tf.range(s)[None, :]
        mask = lower[None] if mask is None else mask & lower[None]
    return None if mask is None else mask[:, None]


def compute(
    layer,
    query,
    value,
    key=None,
    masks=(None, None, None),
    causal=False,
    scores_returned=False,
    attention_mask=None,
):
    """Recompute a MultiHeadAttention call step by step: an :class:`Attention`.

    ``masks`` are the Keras masks of ``(query, value, key)``; with ``key=None``
    the key is the value (and its mask the value's). ``attention_mask`` is an
    explicit ``(batch, T, S)`` mask (KerasHub's padding masks come so). As in Keras, a query row
    whose keys are all masked (a padding query) attends uniformly, except on
    the explicit-scores path (``return_attention_scores=True`` or dropout),
    where its weights are zeros.
    """
    _check_shapes(layer, query)
    query_mask, value_mask, key_mask = masks
    if key is None:
        key, key_mask = value, None
    q = _same_dtype(layer.query_dense, query)
    k = _same_dtype(layer.key_dense, key)
    v = _same_dtype(layer.value_dense, value)
    scores = tf.einsum(_SCORES, k, q * (1.0 / math.sqrt(float(layer.key_dim))))
    mask = _mask(query, key, query_mask, value_mask, key_mask, causal, attention_mask)
    if mask is None:
        weights = tf.nn.softmax(scores, axis=-1)
    else:
        weights = tf.nn.softmax(tf.where(mask, scores, tf.constant(-1e9, scores.dtype)), axis=-1)
        if scores_returned or layer.dropout > 0:
            weights = tf.where(mask, weights, tf.zeros_like(weights))
    context = tf.einsum(_COMBINE, weights, v)
    return Attention(query, key, value, q, k, v, scores, weights, context, _same_dtype(layer.output_dense, context))


def _same_dtype(function, x):
    """``function(x)`` in ``x``'s dtype (a sublayer under a mixed policy computes in float16)."""
    y = function(x)
    return tf.cast(y, x.dtype) if y.dtype != x.dtype else y


def linear_relevance(function, x, relevance, divide):
    """``x * J^T (R / stab(f(x)))`` through a linear (or affine) ``function``."""
    x = tf.identity(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = _same_dtype(function, x)
    return x * tape.gradient(z, x, output_gradients=divide(relevance, z))


def _bilinear_relevance(equation, a, b, relevance, divide):
    """Uniform rule through ``einsum(equation, a, b)``: half of the relevance to each factor."""
    a, b = tf.identity(a), tf.identity(b)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([a, b])
        z = tf.einsum(equation, a, b)
    s = divide(relevance, z)
    grad_a, grad_b = tape.gradient(z, [a, b], output_gradients=s)
    return 0.5 * a * grad_a, 0.5 * b * grad_b


def conservative_relevance(layer, att: Attention, relevance, divide):
    """Relevance of ``(query, value, key)`` with the attention weights held constant.

    Returns
    -------
    tuple of tf.Tensor
        ``(R_query, R_value, R_key)``; the query and key get zeros.
    """
    r_context = linear_relevance(layer.output_dense, att.context, relevance, divide)
    r_v = linear_relevance(lambda v: tf.einsum(_COMBINE, att.weights, v), att.v, r_context, divide)
    r_value = linear_relevance(layer.value_dense, att.value, r_v, divide)
    return tf.zeros_like(att.query), r_value, tf.zeros_like(att.key)


def softmax_relevance(scores, weights, relevance):
    """AttnLRP's softmax rule: ``R_s = s (R_A - A sum_j R_A_j)`` over the last axis."""
    return scores * (relevance - weights * tf.reduce_sum(relevance, axis=-1, keepdims=True))


def attnlrp_relevance(layer, att: Attention, relevance, divide, weights_relevance=None):
    """Relevance of ``(query, value, key)`` by AttnLRP (Achtibat et al. 2024).

    ``weights_relevance`` is relevance arriving at the attention weights from
    outside (``return_attention_scores=True`` outputs), if any.
    """
    r_context = linear_relevance(layer.output_dense, att.context, relevance, divide)
    r_weights, r_v = _bilinear_relevance(_COMBINE, att.weights, att.v, r_context, divide)
    if weights_relevance is not None:
        r_weights = r_weights + weights_relevance
    r_value = linear_relevance(layer.value_dense, att.value, r_v, divide)
    r_scores = softmax_relevance(att.scores, att.weights, r_weights)
    scale = 1.0 / math.sqrt(float(layer.key_dim))
    r_k, r_q = _bilinear_relevance(_SCORES, att.k, att.q * scale, r_scores, divide)
    r_query = linear_relevance(layer.query_dense, att.query, r_q, divide)
    r_key = linear_relevance(layer.key_dense, att.key, r_k, divide)
    return r_query, r_value, r_key
