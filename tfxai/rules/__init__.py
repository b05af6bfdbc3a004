"""Relevance rules: how relevance at a node's outputs flows to its inputs.

A rule is a small, stateless object validated at construction. Its one method,
``backward(node, state, relevance)``, receives the node (see
:class:`tfxai.nodes.Node`), the concrete tensors of the forward pass
(:class:`NodeState`) and the relevance of each node output, and returns the
relevance of each input.

One module per concern:

* :mod:`tfxai.rules.engine`: the :class:`Rule` base, :class:`NodeState`, the
  helpers rules are written with (:func:`vjp`, :func:`signed_stabilize`...)
  and the engine of the LRP rules: :class:`TermRule` (a sum of linear terms
  and one stabilised division) and its one-term form :class:`LinearRule`;
* :mod:`tfxai.rules.lrp`: the LRP rules of weighted layers (``Z``,
  ``Epsilon``, ``Gamma``, ``AlphaBeta``, ``ZBox``...), declared on the engine;
* :mod:`tfxai.rules.structural`: pooling, merges, products, normalisation,
  embeddings and the other weightless nodes;
* :mod:`tfxai.rules.modified_gradients`: guided backpropagation and the
  deconvnet;
* :mod:`tfxai.rules.sequence`: recurrent and attention layers;
* :mod:`tfxai.rules.transformer`: what captured transformer blocks are made
  of (CP-LRP and AttnLRP parts, positions, tied embeddings, per-sample
  captured layers).

Every name is available from ``tfxai.rules`` itself.
"""

from tfxai.rules.engine import (
    LinearRule,
    NodeState,
    Rule,
    Term,
    TermRule,
    negative,
    positive,
    signed_stabilize,
    sum_to_shape,
    vjp,
    weighted_term,
)
from tfxai.rules.lrp import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    GeneralizedGamma,
    WSquare,
    Z,
    ZBox,
    ZPlus,
)
from tfxai.rules.modified_gradients import DeconvReLU, GuidedReLU
from tfxai.rules.sequence import AttnLRP, ConservativeAttention, Recurrent
from tfxai.rules.structural import (
    EmbeddingSum,
    FrozenScale,
    Norm,
    Pass,
    Route,
    SignalTakeAll,
    Stop,
    Uniform,
    token_relevance,
)
from tfxai.rules.transformer import (
    AttentionMix,
    AttnSoftmax,
    Bilinear,
    Constant,
    ConstantWeights,
    SampleWise,
    Select,
    TiedEmbedding,
    carried_inputs,
    mark_attention_mix,
)

__all__ = [
    "AlphaBeta",
    "AttentionMix",
    "AttnLRP",
    "AttnSoftmax",
    "Bilinear",
    "ConservativeAttention",
    "Constant",
    "ConstantWeights",
    "DeconvReLU",
    "EmbeddingSum",
    "Epsilon",
    "Flat",
    "FrozenScale",
    "Gamma",
    "GeneralizedGamma",
    "GuidedReLU",
    "LinearRule",
    "NodeState",
    "Norm",
    "Pass",
    "Recurrent",
    "Route",
    "Rule",
    "SampleWise",
    "Select",
    "SignalTakeAll",
    "Stop",
    "TiedEmbedding",
    "Term",
    "TermRule",
    "Uniform",
    "WSquare",
    "Z",
    "ZBox",
    "ZPlus",
    "carried_inputs",
    "mark_attention_mix",
    "negative",
    "positive",
    "signed_stabilize",
    "sum_to_shape",
    "token_relevance",
    "vjp",
    "weighted_term",
]
