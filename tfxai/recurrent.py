"""Recurrent layers (SimpleRNN, GRU, LSTM) as explicit recurrences for LRP.

LRP through a recurrent layer needs the gates and states of every time step.
This module re-runs a layer's recurrence in TensorFlow from the public weights
of its cell (``cell.kernel``, ``cell.recurrent_kernel``, ``cell.bias``) with
``tf.scan`` (a ``tf.while_loop``; the sequence length may be dynamic), keeping
what the backward pass needs, then propagates relevance backwards in time with
a second ``tf.scan`` (Arras et al. 2017, 2019):

* the linear maps ``x W + h U + b`` use a linear LRP rule (LRP-epsilon by
  default): the bias absorbs its share;
* a multiplicative gate gets no relevance: all of ``o * tanh(c)`` goes to
  ``c``, all of ``f * c_prev`` to ``c_prev``, all of ``i * g`` to ``g``
  (signal-take-all); a GRU's reset gate scales ``h_prev U_h`` and is held
  constant;
* a sum of gated terms (``c = f c_prev + i g``, ``h = z h_prev + (1 - z) h~``)
  is split in proportion to the terms;
* element-wise activations (``tanh``, the SimpleRNN activation) pass
  relevance through.

Keras' gate order is ``i, f, c, o`` for LSTM and ``z, r, h`` for GRU. Masked
time steps (``mask_zero`` embeddings, ``Masking``) are the identity on the
state: their input gets no relevance.

References
----------
Arras, Montavon, Mueller, Samek (2017). Explaining recurrent neural network
predictions in sentiment analysis. WASSA workshop.
Arras, Arjona-Medina, Widrich, Montavon, Gillhofer, Mueller, Hochreiter, Samek
(2019). Explaining and interpreting LSTMs. In: Explainable AI, LNCS 11700.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxai.errors import ModelError, ParameterTypeError

RNN_LAYERS = (keras.layers.SimpleRNN, keras.layers.GRU, keras.layers.LSTM)
"""Recurrent layer types whose recurrence this module re-runs."""


def _tensor(value):
    return None if value is None else tf.convert_to_tensor(value)


def _weights(cell, rule=None):
    """``(kernel, recurrent_kernel, bias)`` of a cell, modified by ``rule`` if given."""
    kernel, recurrent, bias = _tensor(cell.kernel), _tensor(cell.recurrent_kernel), _tensor(cell.bias)
    if rule is not None:
        kernel, bias = rule.modify_weights(kernel, bias)
        recurrent, _ = rule.modify_weights(recurrent, None)
    return kernel, recurrent, bias


class SimpleCell:
    """``h = act(x W + h_prev U + b)``; relevance passes through ``act``."""

    def __init__(self, cell):
        self.cell = cell
        self.units = cell.units

    def initial_states(self, batch, dtype):
        return [tf.zeros((batch, self.units), dtype)]

    def step(self, x, states):
        """One time step: ``(new states, record of what the backward pass needs)``."""
        kernel, recurrent, bias = _weights(self.cell)
        h_prev = states[0]
        z = x @ kernel + h_prev @ recurrent
        z = z if bias is None else z + bias
        h = self.cell.activation(z)
        return [h], {"h_prev": h_prev}

    def relevance(self, rule, x, record, r_states):
        """``(R_x, relevance of the previous states)`` from the relevance of the new states."""
        kernel, recurrent, bias = _weights(self.cell, rule)
        return affine_relevance(rule, x, record["h_prev"], kernel, recurrent, bias, r_states[0])


class GRUCell:
    """GRU: ``h = z h_prev + (1 - z) h~``, ``h~ = tanh(x W_h + b + r * (h_prev U_h + b'))``.

    (``reset_after=False``: ``h~ = tanh(x W_h + (r * h_prev) U_h + b)``.) The
    update gate ``z`` and the reset gate ``r`` get no relevance; ``r`` is a
    constant of the linear map into ``h~``.
    """

    def __init__(self, cell):
        self.cell = cell
        self.units = cell.units

    def initial_states(self, batch, dtype):
        return [tf.zeros((batch, self.units), dtype)]

    def _biases(self, bias):
        if bias is None:
            return None, None
        if self.cell.reset_after:
            return bias[0], bias[1]
        return bias, None

    def step(self, x, states):
        kernel, recurrent, bias = _weights(self.cell)
        h_prev, n = states[0], self.units
        input_bias, recurrent_bias = self._biases(bias)
        xw = x @ kernel if input_bias is None else x @ kernel + input_bias
        x_z, x_r, x_h = xw[:, :n], xw[:, n : 2 * n], xw[:, 2 * n :]
        if self.cell.reset_after:
            inner = h_prev @ recurrent if recurrent_bias is None else h_prev @ recurrent + recurrent_bias
        else:
            inner = h_prev @ recurrent[:, : 2 * n]
        z = self.cell.recurrent_activation(x_z + inner[:, :n])
        r = self.cell.recurrent_activation(x_r + inner[:, n : 2 * n])
        if self.cell.reset_after:
            candidate_in = x_h + r * inner[:, 2 * n :]
        else:
            candidate_in = x_h + (r * h_prev) @ recurrent[:, 2 * n :]
        candidate = self.cell.activation(candidate_in)
        h = z * h_prev + (1.0 - z) * candidate
        return [h], {"h_prev": h_prev, "z": z, "r": r, "candidate": candidate, "h": h}

    def relevance(self, rule, x, record, r_states):
        kernel, recurrent, bias = _weights(self.cell, rule)
        n = self.units
        h_prev, z, r = record["h_prev"], record["z"], record["r"]
        share = rule.divide(r_states[0], record["h"])
        r_direct = z * h_prev * share
        r_candidate = (1.0 - z) * record["candidate"] * share
        input_bias, recurrent_bias = self._biases(bias)
        b = None if input_bias is None else input_bias[2 * n :]
        if recurrent_bias is not None:
            b = b + r * recurrent_bias[2 * n :]
        r_x, r_h = affine_relevance(
            rule,
            x,
            h_prev,
            kernel[:, 2 * n :],
            recurrent[:, 2 * n :],
            b,
            r_candidate,
            gate=r,
            gate_after=self.cell.reset_after,
        )
        return r_x, [r_h[0] + r_direct]


class LSTMCell:
    """LSTM: ``c = f c_prev + i g``, ``g = tanh(x W_g + h_prev U_g + b_g)``, ``h = o tanh(c)``.

    The gates ``i``, ``f``, ``o`` get no relevance: all of ``h`` goes to
    ``c``, and ``c`` is split between ``f c_prev`` and ``i g`` in proportion.
    """

    def __init__(self, cell):
        self.cell = cell
        self.units = cell.units

    def initial_states(self, batch, dtype):
        return [tf.zeros((batch, self.units), dtype), tf.zeros((batch, self.units), dtype)]

    def step(self, x, states):
        kernel, recurrent, bias = _weights(self.cell)
        h_prev, c_prev = states
        z = x @ kernel + h_prev @ recurrent
        z = z if bias is None else z + bias
        z_i, z_f, z_g, z_o = tf.split(z, 4, axis=-1)
        gate = self.cell.recurrent_activation
        i, f, o = gate(z_i), gate(z_f), gate(z_o)
        g = self.cell.activation(z_g)
        c = f * c_prev + i * g
        h = o * self.cell.activation(c)
        return [h, c], {"h_prev": h_prev, "c_prev": c_prev, "i": i, "f": f, "g": g, "c": c}

    def relevance(self, rule, x, record, r_states):
        kernel, recurrent, bias = _weights(self.cell, rule)
        n = self.units
        r_c = r_states[0] + r_states[1]  # o * tanh(c): signal-take-all, tanh passes
        share = rule.divide(r_c, record["c"])
        r_c_prev = record["f"] * record["c_prev"] * share
        r_g = record["i"] * record["g"] * share
        b = None if bias is None else bias[2 * n : 3 * n]
        r_x, r_h = affine_relevance(
            rule, x, record["h_prev"], kernel[:, 2 * n : 3 * n], recurrent[:, 2 * n : 3 * n], b, r_g
        )
        return r_x, [r_h[0], r_c_prev]


def affine_relevance(rule, x, h_prev, kernel, recurrent, bias, relevance, gate=None, gate_after=True):
    """Linear-rule LRP through ``a = x W + gate * (h_prev U) + b``.

    ``gate`` (a GRU's reset gate) is a constant, applied after the recurrent
    matmul (``gate_after``) or to ``h_prev`` before it. Returns
    ``(R_x, [R_h_prev])``; the bias keeps its share.
    """
    if gate is None:
        a = x @ kernel + h_prev @ recurrent
    elif gate_after:
        a = x @ kernel + gate * (h_prev @ recurrent)
    else:
        a = x @ kernel + (gate * h_prev) @ recurrent
    if bias is not None:
        a = a + bias
    s = rule.divide(relevance, a)
    r_x = x * tf.matmul(s, kernel, transpose_b=True)
    if gate is None:
        r_h = h_prev * tf.matmul(s, recurrent, transpose_b=True)
    elif gate_after:
        r_h = h_prev * tf.matmul(gate * s, recurrent, transpose_b=True)
    else:
        r_h = gate * h_prev * tf.matmul(s, recurrent, transpose_b=True)
    return r_x, [r_h]


def cell_of(layer):
    """The :class:`SimpleCell` / :class:`GRUCell` / :class:`LSTMCell` of a recurrent layer."""
    for layer_type, cell_type in (
        (keras.layers.LSTM, LSTMCell),
        (keras.layers.GRU, GRUCell),
        (keras.layers.SimpleRNN, SimpleCell),
    ):
        if isinstance(layer, layer_type):
            return cell_type(layer.cell)
    raise ParameterTypeError(
        f"No recurrence for {type(layer).__name__}; expected one of {[t.__name__ for t in RNN_LAYERS]}."
    )


def check_layer(layer) -> None:
    """Raise ``ValueError`` for recurrent-layer options the relevance pass does not cover."""
    if getattr(layer, "stateful", False):
        raise ModelError(f"Recurrent layer {layer.name!r} is stateful; tfxai explains stateless layers only.")


def _time_major(x):
    return tf.transpose(x, [1, 0] + list(range(2, x.shape.rank)))


def run(layer, x, mask=None):
    """Re-run a recurrent layer: ``(cell, records, states_last)``; records are time-major.

    Time runs in processing order (reversed for ``go_backwards``). Masked steps
    keep the previous states.
    """
    cell = cell_of(layer)
    steps_x = _time_major(x)
    steps_m = _time_major(_full_mask(x, mask))
    if layer.go_backwards:
        steps_x, steps_m = tf.reverse(steps_x, [0]), tf.reverse(steps_m, [0])
    initial = cell.initial_states(tf.shape(x)[0], x.dtype)
    _, probe = cell.step(steps_x[0], initial)

    def step(carry, inputs):
        states, _ = carry
        x_t, m_t = inputs
        new, record = cell.step(x_t, states)
        keep = m_t[:, None]
        new = [tf.where(keep, n, s) for n, s in zip(new, states)]
        return new, record

    initializer = (initial, {k: tf.zeros_like(v) for k, v in probe.items()})
    states, records = tf.scan(step, (steps_x, steps_m), initializer=initializer)
    return cell, records, [s[-1] for s in states], states[0], steps_x, steps_m


def _full_mask(x, mask):
    if mask is None:
        return tf.ones(tf.shape(x)[:2], tf.bool)
    return tf.cast(mask, tf.bool)


def outputs(layer, x, mask=None):
    """The layer's main output recomputed by :func:`run` (for tests and merge splits)."""
    _, _, last, hs, _, steps_m = run(layer, x, mask)
    if not layer.return_sequences:
        return last[0]
    if getattr(layer, "zero_output_for_mask", False):
        hs = hs * tf.cast(steps_m[..., None], hs.dtype)
    return _time_major(hs)


def relevance(layer, rule, x, mask, output_relevance):
    """LRP of a recurrent layer: relevance of its input sequence ``x``.

    Parameters
    ----------
    layer : keras.layers.SimpleRNN, GRU or LSTM
        The layer (its cell's weights are read).
    rule : tfxai.rules.LinearRule
        Rule of the linear maps and of the splits of gated sums (its
        ``modify_weights`` and ``divide``).
    x : tf.Tensor
        Input sequence ``(batch, time, features)``.
    mask : tf.Tensor or None
        Boolean ``(batch, time)``; False steps are skipped.
    output_relevance : list of tf.Tensor
        Relevance of each layer output: the main output (the last state, or
        the sequence with ``return_sequences``) then, with ``return_state``,
        the final states.

    Returns
    -------
    tf.Tensor
        Relevance of ``x``, shape of ``x``.
    """
    cell, records, _, _, steps_x, steps_m = run(layer, x, mask)
    r_main = output_relevance[0]
    r_seq = _sequence_relevance(layer, r_main, steps_x)
    r_final = [_zeros_state(cell, x)] * len(cell.initial_states(1, x.dtype))
    if not layer.return_sequences:
        r_final[0] = r_final[0] + r_main
    for i, extra in enumerate(output_relevance[1:]):
        r_final[i] = r_final[i] + extra

    zero_masked = layer.return_sequences and getattr(layer, "zero_output_for_mask", False)

    def step(carry, inputs):
        r_states, _ = carry
        x_t, m_t, r_out_t, record = inputs
        keep = m_t[:, None]
        if zero_masked:
            r_out_t = tf.where(keep, r_out_t, tf.zeros_like(r_out_t))
        r_states = [r_states[0] + r_out_t] + list(r_states[1:])
        r_x, r_prev = cell.relevance(rule, x_t, record, r_states)
        r_prev = [tf.where(keep, p, s) for p, s in zip(r_prev, r_states)]
        return r_prev, tf.where(keep, r_x, tf.zeros_like(r_x))

    def reverse(t):
        return tf.reverse(t, [0])

    elems = (reverse(steps_x), reverse(steps_m), reverse(r_seq), tf.nest.map_structure(reverse, records))
    _, r_x = tf.scan(step, elems, initializer=(r_final, tf.zeros_like(steps_x[0])))
    r_x = reverse(r_x)
    if layer.go_backwards:
        r_x = tf.reverse(r_x, [0])
    return _time_major(r_x)


def _zeros_state(cell, x):
    return tf.zeros((tf.shape(x)[0], cell.units), x.dtype)


def _sequence_relevance(layer, r_main, steps_x):
    """Time-major relevance arriving at each step's output (zeros without ``return_sequences``)."""
    if not layer.return_sequences:
        shape = tf.concat([tf.shape(steps_x)[:2], tf.shape(r_main)[-1:]], 0)
        return tf.zeros(shape, r_main.dtype)
    return _time_major(r_main)


def bidirectional_relevance(layer, rule, x, mask, output_relevance):
    """LRP of a ``keras.layers.Bidirectional`` recurrent layer: relevance of ``x``.

    The merged output is split between the two directions: ``concat`` and
    ``merge_mode=None`` by position; ``sum`` and ``ave`` in proportion to each
    direction's output (with ``rule.divide``); ``mul`` in equal halves (the
    uniform rule for products of two signals). Each direction then runs
    :func:`relevance`; the backward direction's sequence is flipped as Keras
    flips it.
    """
    forward_layer, backward_layer = layer.forward_layer, layer.backward_layer
    n_states = len(cell_of(forward_layer).initial_states(1, x.dtype))
    merged = 2 if layer.merge_mode is None else 1
    r_forward, r_backward = _split_merge(layer, rule, x, mask, output_relevance[:merged])
    extras = output_relevance[merged:]
    if layer.return_sequences:
        r_backward = tf.reverse(r_backward, [1])
    return relevance(forward_layer, rule, x, mask, [r_forward] + list(extras[:n_states])) + relevance(
        backward_layer, rule, x, mask, [r_backward] + list(extras[n_states:])
    )


def _split_merge(layer, rule, x, mask, r_merged):
    mode = layer.merge_mode
    if mode is None:
        return r_merged[0], r_merged[1]
    r = r_merged[0]
    if mode == "concat":
        return tf.split(r, 2, axis=-1)
    if mode == "mul":
        return r / 2.0, r / 2.0
    y_forward = outputs(layer.forward_layer, x, mask)
    y_backward = outputs(layer.backward_layer, x, mask)
    if layer.return_sequences:
        y_backward = tf.reverse(y_backward, [1])
    share = rule.divide(r, y_forward + y_backward)
    return y_forward * share, y_backward * share
