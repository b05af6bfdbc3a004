"""Layer-type groups and the default rule of every supported layer type.

Composites decide the rules of *weighted* layers (Dense, Conv...). Everything
else (activations, reshapes, pooling, merges...) gets the default rule of its
type from this registry. Users add their own layer classes with
:func:`register_rule`; their entries take precedence over the built-in ones.
"""

from __future__ import annotations

import keras

from tfxai import canonizers, rules
from tfxai.errors import ParameterTypeError
from tfxai.graph import application_layer_classes, raw_op_classes
from tfxai.layer_groups import AVERAGE_POOLING, NO_OPS, ROUTING_LAYERS, UPSAMPLING
from tfxai.rules import transformer

L = keras.layers

DENSE = (L.Dense, L.EinsumDense)
"""Fully connected layers (``EinsumDense`` included)."""

CONV = (
    L.Conv1D,
    L.Conv2D,
    L.Conv3D,
    L.DepthwiseConv1D,
    L.DepthwiseConv2D,
    L.SeparableConv1D,
    L.SeparableConv2D,
    L.Conv1DTranspose,
    L.Conv2DTranspose,
    L.Conv3DTranspose,
)
"""Convolutions (depthwise, separable and transposed included)."""

AFFINE = tuple(canonizers.AFFINE_LAYERS)
"""Element-wise affine layers left after canonization (a BatchNorm / LayerScale that could not be folded).

Each output depends on ONE input, so they are not ruled like Dense layers: by
default relevance passes through them unchanged (zennit's choice for a
BatchNorm it cannot merge). ``rules=[(registry.AFFINE, tfxai.rules.Epsilon())]``
applies LRP-epsilon (LRP-0 with ``Z()``) to them instead, which lets the shift
``t`` absorb its share. Rules that split contributions by sign
(``AlphaBeta``, ``ZPlus``) are refused there: with one contribution per
output, alpha-beta returns ``alpha`` times the relevance."""

LINEAR = DENSE + CONV
"""The weighted layer types whose rule composites choose (element-wise affine nodes excluded)."""

ACTIVATIONS = (L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.PReLU, L.Softmax) + raw_op_classes(
    "Relu",
    "Relu6",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "Tanh",
    "Gelu",
    "Silu",
    "HardSilu",
    "Elu",
    "Selu",
    "Celu",
    "Softplus",
    "Softsign",
)
"""Element-wise activations (relevance passes through unchanged)."""

IDENTITIES = NO_OPS + (
    L.Masking,
    L.Rescaling,
    L.Normalization,
    canonizers.ConstantAffine,
    L.RandomFlip,
    L.RandomRotation,
    L.RandomTranslation,
    L.RandomZoom,
    L.RandomContrast,
    L.RandomBrightness,
)
"""Layers that are the identity at inference (dropout, augmentation), or input preprocessing
(also raw ``x / 255``, ``x - mean``)."""

ROUTES = ROUTING_LAYERS + raw_op_classes(
    "Reshape",
    "Transpose",
    "Concatenate",
    "Squeeze",
    "ExpandDims",
    "GetItem",
    "Slice",
    "Ravel",
    "Maximum",
    "Minimum",
)
"""Layers that move, split or select values (relevance follows the gradient; max/min: winner-take-all)."""

POOLING = AVERAGE_POOLING
"""Average pooling (a linear map with weights 1/n)."""

RESAMPLING = UPSAMPLING + (L.Resizing,)
"""Upsampling and resizing (linear maps with interpolation weights)."""

MERGES = (
    (L.Add, L.Subtract, L.Average)
    + raw_op_classes("Add", "Subtract")
    + application_layer_classes(("inception_resnet_v2", "CustomScaleLayer"))
)
"""Sums and differences of several tensors (relevance split in proportion to contributions)."""

GATES = (canonizers.GatedProduct,)
"""Element-wise products with a recognised gate (signal first; see ``canonizers.mark_gates``)."""

PRODUCTS = canonizers.PRODUCTS
"""Element-wise products with no recognised gate."""

NORMALIZATIONS = (L.LayerNormalization, L.GroupNormalization)
"""Normalisations over features (their scale is treated as a constant)."""

_BUILTIN = (
    (AFFINE, rules.Pass()),
    (ACTIVATIONS, rules.Pass()),
    (IDENTITIES, rules.Pass()),
    (ROUTES, rules.Route()),
    (POOLING, rules.Norm()),
    (RESAMPLING, rules.Norm()),
    (MERGES, rules.Norm()),
    (GATES, rules.SignalTakeAll()),
    (PRODUCTS, rules.Uniform()),
    (NORMALIZATIONS, rules.FrozenScale()),
)

EMBEDDINGS = (L.Embedding,)
"""Token embeddings (a token's relevance is the sum over its vector)."""

RECURRENT = (L.SimpleRNN, L.GRU, L.LSTM, L.Bidirectional)
"""Recurrent layers (the recurrence is unrolled with ``tf.scan``; see ``tfxai.recurrent``)."""

ATTENTION = (L.MultiHeadAttention,)
"""Multi-head attention (attention weights held constant by default; see ``tfxai.attention``)."""

BOOLEAN_OPS = raw_op_classes("NotEqual", "Equal", "Any", "All", "LogicalAnd", "LogicalOr", "LogicalNot")
"""Boolean operations (mask computations): no relevance flows through them."""

_BUILTIN += (
    (EMBEDDINGS, rules.EmbeddingSum()),
    (RECURRENT, rules.Recurrent()),
    (ATTENTION, rules.ConservativeAttention()),
    (BOOLEAN_OPS, rules.Stop()),
)


# ---------------------------------------------------------------- transformers (see tfxai.rules.transformer)

TIED_EMBEDDINGS = (L.ReversibleEmbedding,)
"""Embeddings that also serve as the (tied) output projection with ``reverse=True``."""

ATTENTION_MIXES = (transformer.AttentionMix,)
"""``einsum``/``matmul`` of attention weights and values (see ``transformer.mark_attention_mix``)."""

PRODUCTS_OF_ACTIVATIONS = transformer.PRODUCT_OPS
"""Raw ``einsum`` / ``matmul``: bilinear products such as ``q k^T`` (uniform split)."""

SOFTMAXES = (L.Softmax,) + raw_op_classes("Softmax")
"""Softmax layers and operations (inside a model: attention weights)."""

SIGN_FLIPS = raw_op_classes("Negative")
"""Element-wise negation (rotary embeddings' ``rotate_half``): LRP-0 is the identity."""

SELECTIONS = raw_op_classes("Where")
"""``where(condition, a, b)`` (relevance by position; see ``transformer.Select``)."""

CONSTANT_OPS = raw_op_classes("ZerosLike", "OnesLike")
"""Operations whose output ignores their input's values."""

MOVES = raw_op_classes("Cast", "Split", "Stack", "Tile", "BroadcastTo")
"""More raw operations that only move or copy values (relevance follows the gradient)."""

HUB_LAYERS = {
    "keras_hub.src.layers.modeling.position_embedding.PositionEmbedding": transformer.Constant(),
    "keras_hub.src.layers.modeling.sine_position_encoding.SinePositionEncoding": transformer.Constant(),
    "keras_hub.src.layers.modeling.rotary_embedding.RotaryEmbedding": rules.Z(),
}
"""KerasHub layers by qualified class name (keras-hub is optional: nothing is imported from it)."""

_BUILTIN = (
    (TIED_EMBEDDINGS, transformer.TiedEmbedding()),
    (ATTENTION_MIXES, transformer.ConstantWeights()),
    (PRODUCTS_OF_ACTIVATIONS, transformer.Bilinear()),
    (SIGN_FLIPS, rules.Pass()),
    (SELECTIONS, transformer.Select()),
    (CONSTANT_OPS, transformer.Constant()),
    (MOVES, rules.Route()),
) + _BUILTIN


def _hub_rule(op_type: type):
    for cls in op_type.__mro__:
        rule = HUB_LAYERS.get(f"{cls.__module__}.{cls.__qualname__}")
        if rule is not None:
            return rule
    return None


def sequence_entries(linear_rule) -> list:
    """Composite entries giving recurrent and attention layers ``linear_rule`` for their linear maps."""
    if not isinstance(linear_rule, rules.LinearRule):
        return []
    return [(RECURRENT, rules.Recurrent(linear_rule)), (ATTENTION, rules.ConservativeAttention(linear_rule))]


_USER: dict = {}


def register_rule(layer_type: type, rule: rules.Rule) -> None:
    """Make ``rule`` the default rule of ``layer_type`` and its subclasses.

    Use it to explain models with custom layers, or to change a built-in
    default (e.g. give ``MaxPooling2D`` the :class:`~tfxai.rules.Norm` rule).

    Parameters
    ----------
    layer_type : type
        A ``keras.layers.Layer`` (or ``keras.Operation``) subclass.
    rule : tfxai.rules.Rule
        The rule its nodes get unless a composite or ``rules=`` says otherwise.

    Examples
    --------
    >>> tfxai.register_rule(MyScaling, tfxai.rules.Pass())  # doctest: +SKIP
    """
    if not isinstance(layer_type, type):
        raise ParameterTypeError(f"register_rule expects a layer class. Received: {layer_type!r}")
    if not isinstance(rule, rules.Rule):
        raise ParameterTypeError(f"register_rule expects a tfxai.rules.Rule instance. Received: {rule!r}")
    _USER[layer_type] = rule


def unregister_rule(layer_type: type) -> None:
    """Remove a rule added with :func:`register_rule` (no-op if absent)."""
    _USER.pop(layer_type, None)


NEVER_CAPTURED = (L.InputLayer, L.Lambda, L.TimeDistributed, keras.Model)
"""Layers tfxai never looks inside: a Lambda hides its function; TimeDistributed is a canonizer's."""


def needs_capture(layer) -> bool:
    """Whether the walk should capture ``layer``'s ``call`` (see :mod:`tfxai.capture`).

    True for a layer with no rule of its own: no registered default (user
    entries included, so ``register_rule`` always wins over capture) and not
    a weighted layer composites give rules to.
    """
    op_type = type(layer)
    if issubclass(op_type, NEVER_CAPTURED + LINEAR):
        return False
    return default_rule(op_type) is None


def default_rule(op_type: type) -> rules.Rule | None:
    """The registered rule of ``op_type`` (user entries first), or ``None``."""
    for cls in op_type.__mro__:
        if cls in _USER:
            return _USER[cls]
    hub = _hub_rule(op_type)
    if hub is not None:
        return hub
    for types, rule in _BUILTIN:
        if issubclass(op_type, types):
            return rule
    return None


def supported_types() -> list:
    """Every layer type with a built-in default rule, with that rule."""
    return [(layer_type, rule) for types, rule in _BUILTIN for layer_type in types]
