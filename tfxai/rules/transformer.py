"""Rules for what transformers are made of, once their layers are captured (see :mod:`tfxai.capture`).

A captured transformer block is a graph of Keras layers and raw operations:
``Dense``/``EinsumDense`` projections, ``einsum``/``matmul`` products of two
activations, a (masked) softmax, LayerNorm or RMSNorm, GELU/SiLU, gated
feed-forward products, residual adds, rotary or learned positions and (tied)
embeddings. Two ways to propagate relevance through attention are offered:

* **CP-LRP** (Ali et al. 2022), the default: the attention weights ``A`` are
  constants, so ``A v`` is linear in ``v`` (:class:`ConstantWeights`) and
  no relevance flows into the softmax, the query or the key. Conservative
  up to what biases absorb.
* **AttnLRP** (Achtibat et al. 2024): products of activations (``A v``,
  ``q k^T``, gated FFNs) split relevance uniformly between their factors
  (:class:`Bilinear`), and the softmax gets
  ``R_s = s (R_A - A sum(R_A))`` (:class:`AttnSoftmax`), which absorbs
  relevance as the paper says.

Both hold a normalisation's scale constant (LayerNorm:
:class:`~tfxai.rules.FrozenScale`; an RMSNorm written with ``keras.ops``:
its ``x * rsqrt(mean(x^2))`` product is a gate, signal-take-all), and pass
relevance through element-wise activations. Learned position embeddings
depend on the input only through its shape: :class:`Constant` (they absorb
their share of a residual sum, like a bias). Rotary embeddings are linear
in their input for fixed positions (LRP-0 through the layer).

References
----------
Ali, Schnake, Eberle, Montavon, Mueller, Wolf (2022). XAI for transformers:
better explanations through conservative propagation. ICML.
Achtibat, Hatefi, Dreyer, Jain, Wiegand, Lapuschkin, Samek (2024). AttnLRP:
attention-aware layer-wise relevance propagation for transformers. ICML.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxai import reverse, validation
from tfxai.graph import GraphView, raw_op_classes
from tfxai.rules.engine import Rule, signed_stabilize, sum_to_shape, vjp
from tfxai.rules.structural import EmbeddingSum, SignalTakeAll, Stop


def _divide(relevance, z, epsilon):
    if not epsilon:
        return tf.math.divide_no_nan(relevance, z)
    return relevance / signed_stabilize(z, epsilon)


def carried_inputs(rule, node) -> list:
    """Positions of ``node``'s inputs that ``rule`` can send relevance to.

    Nodes only feeding positions no relevance is carried to (the statistics
    of a normalisation, mask computations) need no rule.
    """
    if hasattr(rule, "carried"):
        return rule.carried(node)
    if isinstance(rule, Stop):
        return []
    if isinstance(rule, SignalTakeAll):
        return [0]
    return list(range(len(node.inputs)))


class Bilinear(Rule):
    """Products of activations (``einsum``, ``matmul``, ``x1 * x2``): each factor gets an equal share.

    For ``z = f(x_1, ..., x_n)`` linear in each factor (``A v``, ``q k^T``),
    ``R_i = (1/n) x_i J_i^T (R / stab(z))``: the uniform rule of AttnLRP
    (Achtibat et al. 2024). Since ``sum x_i J_i^T = z`` for each factor, it
    is conservative up to the stabiliser. With one tensor input (a product
    with weights or constants) it is LRP-epsilon through the operation.

    Parameters
    ----------
    epsilon : float
        Stabiliser ``z + epsilon sign(z)``, >= 0. Default 1e-6.
    """

    def __init__(self, epsilon: float = 1e-6):
        self.epsilon = validation.number("epsilon", epsilon, minimum=0, owner="Bilinear")

    def backward(self, node, state, relevance):
        s = _divide(relevance[0], state.outputs[0], self.epsilon)
        grads = vjp(lambda *xs: node.forward(list(xs), state.params)[0], state.inputs, s)
        share = 1.0 / len(state.inputs)
        return [share * x * g for x, g in zip(state.inputs, grads)]


class ConstantWeights(Rule):
    """CP-LRP through ``A v`` (Ali et al. 2022): the attention weights ``A`` are constants.

    The node is an :class:`AttentionMix`, weights first. ``A v`` is then
    linear in ``v``: ``R_v = v J_v^T (R / stab(z))`` and ``R_A = 0``, so no
    relevance enters the softmax or the query-key product.

    Parameters
    ----------
    epsilon : float
        Stabiliser, >= 0. Default 1e-6.
    """

    def __init__(self, epsilon: float = 1e-6):
        self.epsilon = validation.number("epsilon", epsilon, minimum=0, owner="ConstantWeights")

    def carried(self, node):
        return [1]

    def backward(self, node, state, relevance):
        weights, value = state.inputs
        s = _divide(relevance[0], state.outputs[0], self.epsilon)
        (grad,) = vjp(lambda v: node.forward([weights, v], state.params)[0], [value], s)
        return [None, value * grad]


class AttnSoftmax(Rule):
    """AttnLRP's softmax rule (Achtibat et al. 2024): ``R_s = s (R_A - A sum_j R_A_j)``.

    ``s`` are the scores entering the softmax, ``A`` its output, the sum
    runs over the softmax axis. Masked positions (``A = 0``) receive none.
    Not conservative: the rule's bias term absorbs relevance. A mask input
    gets no relevance.
    """

    def carried(self, node):
        return [0]

    def backward(self, node, state, relevance):
        scores, weights, r = state.inputs[0], state.outputs[0], relevance[0]
        axis = getattr(node.layer, "axis", -1)
        result = scores * (r - weights * tf.reduce_sum(r, axis=axis, keepdims=True))
        return [tf.where(weights > 0, result, tf.zeros_like(result))] + [None] * (len(state.inputs) - 1)


class Constant(Rule):
    """Layers whose output depends on their input only through its shape (learned positions).

    No relevance flows to the input: like a bias, the layer's output keeps
    the share of relevance a following sum gives it.
    """

    def carried(self, node):
        return []

    def backward(self, node, state, relevance):
        return [None] * len(state.inputs)


class Select(Rule):
    """``where(condition, a, b)``: each branch gets the relevance of the positions it was selected at.

    The condition (a boolean mask) gets none. Conservative.
    """

    def carried(self, node):
        return [1, 2]

    def backward(self, node, state, relevance):
        condition, a, b = state.inputs
        r = relevance[0]
        zeros = tf.zeros_like(r)
        r_a, r_b = tf.where(condition, r, zeros), tf.where(condition, zeros, r)
        return [None, sum_to_shape(r_a, a), sum_to_shape(r_b, b)]


class TiedEmbedding(Rule):
    """``ReversibleEmbedding``: a lookup, or with ``reverse=True`` the tied output projection.

    The lookup gives each token the sum of its vector's relevance
    (:class:`~tfxai.rules.EmbeddingSum`); the reverse call ``logits = h E^T``
    is linear in ``h`` and gets LRP-epsilon.

    Parameters
    ----------
    epsilon : float
        Stabiliser of the reverse projection, >= 0. Default 1e-6.
    """

    def __init__(self, epsilon: float = 1e-6):
        self.epsilon = validation.number("epsilon", epsilon, minimum=0, owner="TiedEmbedding")

    def backward(self, node, state, relevance):
        if not node.call_kwargs.get("reverse", False):
            return EmbeddingSum().backward(node, state, relevance)
        return Bilinear(self.epsilon).backward(node, state, relevance)


class SampleWise(Rule):
    """A layer captured at fixed shapes: relevance through its captured graph, one sample at a time.

    Made by :func:`tfxai.assignment.assign` for nodes with an
    :attr:`~tfxai.nodes.Node.inner` graph (layers whose ``call`` computes
    with their input's shape, see :mod:`tfxai.capture`); ``assignment``
    maps the inner nodes to their rules. Integer inputs (masks) get none.

    Parameters
    ----------
    assignment : dict
        Inner node name -> Rule.
    """

    def __init__(self, assignment: dict):
        self.assignment = dict(assignment)

    def _key(self):
        return tuple(sorted((name, repr(rule)) for name, rule in self.assignment.items()))

    def __repr__(self):
        return f"SampleWise({len(self.assignment)} inner rules)"

    def carried(self, node):
        return [i for i, dtype in enumerate(node.inner.input_dtypes) if dtype.startswith(("float", "bfloat"))]

    def backward(self, node, state, relevance):
        inner: GraphView = node.inner
        floats = self.carried(node)

        def one_sample(args):
            xs, rs = args
            _, states = reverse.forward(inner, [x[None] for x in xs])
            start = {key: r[None] for key, r in zip(inner.outputs, rs)}
            found = reverse.propagate(inner, self.assignment, states, start)
            return [found.get(inner.inputs[i], tf.zeros_like(xs[i][None]))[0] for i in floats]

        signature = [tf.TensorSpec(state.inputs[i].shape[1:], state.inputs[i].dtype) for i in floats]
        mapped = tf.map_fn(one_sample, (list(state.inputs), list(relevance)), fn_output_signature=signature)
        result = [None] * len(state.inputs)
        for i, r in zip(floats, mapped):
            result[i] = r
        return result


class AttentionMix:
    """Node type of ``einsum``/``matmul`` of attention weights (a softmax output) and values, weights first.

    Made by :func:`mark_attention_mix`; CP-LRP gives it
    :class:`ConstantWeights`, AttnLRP :class:`Bilinear`.
    """


PRODUCT_OPS = raw_op_classes("Einsum", "Matmul")
"""Raw operations that multiply two activations (or an activation and constants) linearly."""

_SOFTMAX_OPS = (keras.layers.Softmax,) + raw_op_classes("Softmax")
_ON_THE_WAY = (keras.layers.Dropout, keras.layers.Identity) + raw_op_classes(
    "Cast", "Reshape", "ExpandDims", "Transpose", "Squeeze"
)


def _is_softmax(node) -> bool:
    return issubclass(node.op_type, _SOFTMAX_OPS) or node.activation == "softmax"


def _from_softmax(key, producers) -> bool:
    node = producers.get(key)
    while node is not None and not _is_softmax(node):
        if not issubclass(node.op_type, _ON_THE_WAY) or not node.inputs:
            return False
        node = producers.get(node.inputs[0])
    return node is not None


def mark_attention_mix(view: GraphView) -> GraphView:
    """Retype each product of a softmax output and another tensor as :class:`AttentionMix`, weights first.

    The weights may reach the product through dropout, casts and reshapes.
    """
    producers = view.producers()
    nodes = []
    for node in view.nodes:
        if node.is_original and issubclass(node.op_type, PRODUCT_OPS) and len(node.inputs) == 2:
            found = [i for i, key in enumerate(node.inputs) if _from_softmax(key, producers)]
            if len(found) == 1:
                node = _weights_first(node, found[0])
        nodes.append(node)
    return view.replace(nodes=tuple(nodes))


def _weights_first(node, position: int):
    original_forward = node.forward

    def forward(values, params=None):
        weights, other = values
        return original_forward([weights, other] if position == 0 else [other, weights], params)

    inputs = (node.inputs[position], node.inputs[1 - position])
    return node.rewritten("mark_attention_mix", op_type=AttentionMix, inputs=inputs, forward=forward)
