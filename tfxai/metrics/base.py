"""What every metric shares: argument checks, the logits of a model, targets, relevance maps.

Conventions of :mod:`tfxai.metrics`:

* ``x`` is one batch of inputs of a single-input model: channels-last images
  ``(n, height, width, channels)`` (or any ``(n, ..., channels)`` array of
  three or more axes) or tabular ``(n, features)``.
* ``relevance`` has the shape of ``x``. Where a metric needs one value per
  position (a 2D map for images) it sums the relevance over the channel axis;
  for tabular inputs every feature is a position.
* ``target`` is the explained output neuron of each sample (an int or one
  int per sample); ``None`` means the largest logit.
* Models are measured at their logits: with ``logits=True`` (the default) a
  model whose last layer ends in a softmax is evaluated through a copy of it
  without that softmax, as the analyzers explain it.
"""

from __future__ import annotations

import collections

import keras
import numpy as np
import tensorflow as tf

from tfxai.errors import ParameterError


class MetricError(ParameterError):
    """A metric received arguments it cannot evaluate (shapes, sizes, NaN values, names)."""


def as_batch(x, name: str = "x") -> np.ndarray:
    """``x`` as a float32 NumPy array with a batch axis and at least one feature axis."""
    array = np.asarray(x, dtype=np.float32)
    if array.ndim < 2 or len(array) == 0:
        raise MetricError(
            f"{name} must be a non-empty batch of shape (n, features) or (n, height, width, channels). "
            f"Received: shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise MetricError(f"{name} holds {int(np.sum(~np.isfinite(array)))} NaN or infinite values.")
    return array


def as_relevance(relevance, x: np.ndarray, name: str = "relevance") -> np.ndarray:
    """``relevance`` as float64, checked to have the shape of ``x`` and finite values."""
    array = np.asarray(relevance, dtype=np.float64)
    if array.shape != x.shape:
        raise MetricError(f"{name} must have the shape of x, {x.shape}. Received: shape {array.shape}")
    bad = int(np.sum(~np.isfinite(array)))
    if bad:
        raise MetricError(f"{name} holds {bad} NaN or infinite values; metrics need finite relevance.")
    return array


def relevance_map(relevance: np.ndarray) -> np.ndarray:
    """One value per position: the relevance summed over channels (axes >= 3), as is for ``(n, features)``."""
    return relevance.sum(axis=-1) if relevance.ndim >= 3 else relevance


def flat(values: np.ndarray) -> np.ndarray:
    """``(n, -1)`` view of a batch."""
    return values.reshape(len(values), -1)


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, or a :class:`MetricError` when it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MetricError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def is_softmax_layer(layer) -> bool:
    """Whether ``layer`` ends in a softmax (a Softmax layer or ``activation="softmax"``)."""
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation is not None and getattr(activation, "__name__", "") == "softmax"


def logits_model(model):
    """``model`` itself, or a copy without its final softmax when it ends in one.

    The copy (``keras.models.clone_model`` with the user's weights copied) has
    the same layers, except that a final ``Softmax`` / ``Activation("softmax")``
    layer becomes an identity and a final layer with ``activation="softmax"``
    gets a linear activation. The user's model is not modified.
    """
    last = model.layers[-1] if model.layers else None
    if last is None or not is_softmax_layer(last):
        return model

    def clone_layer(layer):
        if layer is not last:
            return layer.__class__.from_config(layer.get_config())
        if isinstance(last, (keras.layers.Softmax, keras.layers.Activation)):
            return keras.layers.Identity(name=layer.name)
        config = layer.get_config()
        config["activation"] = "linear"
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    return clone


_TRACED = collections.OrderedDict()
"""(id(model), logits) -> (model, model to call, tf.function) for the few models used last."""

_TRACED_SIZE = 4


def _traced(model, logits: bool):
    """The traced call of ``model`` (or of its logits copy, refreshed with the model's current weights)."""
    key = (id(model), bool(logits))
    entry = _TRACED.get(key)
    if entry is None or entry[0] is not model:
        callee = logits_model(model) if logits else model
        entry = (model, callee, tf.function(lambda x: callee(x, training=False), reduce_retracing=True))
        _TRACED[key] = entry
        while len(_TRACED) > _TRACED_SIZE:
            _TRACED.popitem(last=False)
    elif entry[1] is not model:
        entry[1].set_weights(model.get_weights())
    _TRACED.move_to_end(key)
    return entry[1], entry[2]


class Forward:
    """The model's (logit) outputs as a traced function of a batch, run in chunks.

    The traced function of the last few models is kept, so metrics called
    one after the other on the same model trace it once; a logits copy gets
    the model's current weights at every construction.

    Parameters
    ----------
    model : keras.Model
        A single-input, single-output model.
    logits : bool
        Strip a final softmax (see :func:`logits_model`).
    batch_size : int
        Largest batch per model call.
    """

    def __init__(self, model, logits: bool = True, batch_size: int = 256):
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise MetricError(
                f"Metrics need a model with one input and one output. Received: model {model.name!r} with "
                f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
            )
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.model, self._call = _traced(model, logits)

    def outputs(self, x) -> tf.Tensor:
        """``(n, outputs)`` float32 outputs for a batch ``x`` (array or tensor), flattened per sample."""
        x = tf.convert_to_tensor(x, tf.float32)
        parts = [self._call(x[i : i + self.batch_size]) for i in range(0, int(x.shape[0]), self.batch_size)]
        y = tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]
        return tf.reshape(tf.cast(y, tf.float32), (tf.shape(y)[0], -1))

    def at(self, x, target) -> np.ndarray:
        """The output neuron ``target[i]`` of each sample (float64, shape ``(n,)``)."""
        y = self.outputs(x)
        return np.asarray(
            tf.gather(y, tf.convert_to_tensor(target, tf.int32), axis=1, batch_dims=1), np.float64
        )

    def target(self, x, target=None) -> np.ndarray:
        """Per-sample int32 target: ``target`` checked and broadcast, or the largest output of each sample."""
        y = self.outputs(x)
        n, size = int(y.shape[0]), int(y.shape[1])
        if target is None:
            return np.asarray(tf.argmax(y, axis=1, output_type=tf.int32))
        return check_target(target, n, size)


def check_target(target, n: int, size: int) -> np.ndarray:
    """``target`` as ``(n,)`` int32 in ``[0, size)``; an int applies to every sample."""
    array = np.asarray(target)
    if array.dtype.kind not in "iu" or array.ndim > 1:
        raise MetricError(f"target must be an int or one int per sample. Received: {target!r}")
    array = np.broadcast_to(array, (n,)) if array.ndim == 0 else array
    if array.shape != (n,):
        raise MetricError(f"target needs one index per sample ({n}). Received: {len(array)} indices")
    if array.min() < 0 or array.max() >= size:
        raise MetricError(
            f"target indices must be in [0, {size}) (the model's outputs). "
            f"Received: min {array.min()}, max {array.max()}"
        )
    return array.astype(np.int32)


def check_choice(name: str, value, choices) -> str:
    """``value`` if it is one of ``choices``, else a :class:`MetricError` listing them."""
    if value not in choices:
        raise MetricError(f"{name} must be one of {list(choices)}. Received: {name}={value!r}")
    return value
