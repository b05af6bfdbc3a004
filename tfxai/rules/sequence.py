"""Rules of recurrent and attention layers.

The propagation itself lives in :mod:`tfxai.recurrent` and :mod:`tfxai.attention`;
these rules check the node and call into them.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxai import attention, recurrent
from tfxai.errors import ModelError, ParameterTypeError
from tfxai.rules.engine import LinearRule, Rule
from tfxai.rules.lrp import Epsilon


def _linear_rule(rule, owner):
    rule = Epsilon(1e-3) if rule is None else rule
    if not isinstance(rule, LinearRule):
        raise ParameterTypeError(
            f"{owner} takes a linear rule (Z, Epsilon, Gamma...) for its linear maps. Received: {rule!r}"
        )
    return rule


class Recurrent(Rule):
    """LRP through SimpleRNN, GRU, LSTM and Bidirectional layers (Arras et al. 2017, 2019).

    The recurrence is re-run and relevance propagated backwards in time (see
    :mod:`tfxai.recurrent`): linear maps with ``linear``, gates
    signal-take-all (a gate gets no relevance), sums of gated terms split in
    proportion, element-wise activations pass-through. Masked time steps pass
    the state's relevance through and give their input none.

    Parameters
    ----------
    linear : LinearRule, optional
        Rule of the linear maps (its weight modifier and stabiliser also split
        the gated sums). Default ``Epsilon(1e-3)``, Arras et al.'s choice.

    References
    ----------
    Arras, Montavon, Mueller, Samek (2017). Explaining recurrent neural network
    predictions in sentiment analysis. WASSA workshop.
    Arras et al. (2019). Explaining and interpreting LSTMs. In: Explainable AI,
    LNCS 11700.
    """

    def __init__(self, linear=None):
        self.linear = _linear_rule(linear, "Recurrent")

    def backward(self, node, state, relevance):
        x, *others = state.inputs
        masks = [m for m in others if m.dtype == tf.bool]
        if len(masks) != len(others):
            raise ModelError(
                f"Recurrent node {node.name!r} receives initial states; tfxai explains recurrent layers "
                "that start from zero states only."
            )
        mask = masks[0] if masks else (state.masks[0] if state.masks else None)
        layer = node.layer
        if isinstance(layer, keras.layers.Bidirectional):
            recurrent.check_layer(layer.forward_layer)
            result = recurrent.bidirectional_relevance(layer, self.linear, x, mask, relevance)
        else:
            recurrent.check_layer(layer)
            result = recurrent.relevance(layer, self.linear, x, mask, relevance)
        return [result] + [None] * len(others)


class ConservativeAttention(Rule):
    """Multi-head attention with the attention weights held constant (Ali et al. 2022).

    Relevance flows through the output projection, the mixing by the (fixed)
    attention weights and the value projection with ``linear``; the query
    and key get none. Conservative up to the relevance biases absorb. See
    :mod:`tfxai.attention`.

    Parameters
    ----------
    linear : LinearRule, optional
        Its stabiliser divides at each linear step (``Z`` or ``Epsilon``).
        Default ``Epsilon(1e-3)``.

    References
    ----------
    Ali, Schnake, Eberle, Montavon, Mueller, Wolf (2022). XAI for
    transformers: better explanations through conservative propagation. ICML.
    """

    def __init__(self, linear=None):
        self.linear = _linear_rule(linear, type(self).__name__)

    def relevance(self, layer, att, relevance):
        """``(R_query, R_value, R_key)`` of one attention call."""
        return attention.conservative_relevance(layer, att, relevance[0], self.linear.divide)

    def backward(self, node, state, relevance):
        q_at, v_at, k_at = attention.roles(node)
        masks = state.masks or [None] * len(state.inputs)
        pick = lambda items, i: None if i is None else items[i]  # noqa: E731
        att = attention.compute(
            node.layer,
            state.inputs[q_at],
            state.inputs[v_at],
            pick(state.inputs, k_at),
            (masks[q_at], masks[v_at], pick(masks, k_at)),
            bool(node.call_kwargs.get("use_causal_mask", False)),
            bool(node.call_kwargs.get("return_attention_scores", False)),
            pick(state.inputs, node.call_kwargs.get("attention_mask")),
        )
        r_query, r_value, r_key = self.relevance(node.layer, att, relevance)
        result = [None] * len(state.inputs)
        for position, r in ((q_at, r_query), (v_at, r_value)):
            result[position] = r if result[position] is None else result[position] + r
        if k_at is None:
            result[v_at] = result[v_at] + r_key
        else:
            result[k_at] = r_key
        return result


class AttnLRP(ConservativeAttention):
    """AttnLRP (Achtibat et al. 2024) through multi-head attention.

    As :class:`ConservativeAttention`, plus relevance through the attention
    weights: ``A v`` and ``q k^T`` split relevance equally between their
    factors (uniform rule), the softmax gets ``R_s = s (R_A - A sum R_A)``.
    Not conservative (the softmax rule absorbs relevance).

    Parameters
    ----------
    linear : LinearRule, optional
        As for :class:`ConservativeAttention`.

    References
    ----------
    Achtibat, Hatefi, Dreyer, Jain, Wiegand, Lapuschkin, Samek (2024).
    AttnLRP: attention-aware layer-wise relevance propagation for
    transformers. ICML.
    """

    def relevance(self, layer, att, relevance):
        extra = relevance[1] if len(relevance) > 1 else None
        return attention.attnlrp_relevance(layer, att, relevance[0], self.linear.divide, extra)
