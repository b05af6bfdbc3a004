"""Turning what users pass to ``analyze`` into validated batches.

Accepted: a NumPy array or tensor (single-input models), a list/tuple or dict
of them (multi-input models), or a ``tf.data.Dataset`` yielding any of those,
possibly as ``(x, y)`` or ``(x, y, sample_weight)`` tuples.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfxai.errors import InputError


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What one model input expects.

    Attributes
    ----------
    name : str
        The input's name.
    shape : tuple
        Static shape, batch axis (``None``) included.
    dtype : str
        Dtype name, e.g. ``"float32"``.
    vocabulary : int or None
        For token ids read by ``Embedding`` layers: the smallest of their
        ``input_dim``; every id must lie in ``[0, vocabulary)``.
    """

    name: str
    shape: tuple
    dtype: str
    vocabulary: int | None = None

    def tensor_spec(self) -> tf.TensorSpec:
        """TensorSpec with a ``None`` batch dimension."""
        return tf.TensorSpec((None,) + tuple(self.shape[1:]), self.dtype, name=self.name)


def specs_of(view) -> list:
    """InputSpec of each input of a GraphView."""
    return [
        InputSpec(name, view.shapes[key], view_dtype, _vocabulary(view, key))
        for name, key, view_dtype in zip(view.input_names, view.inputs, view.input_dtypes)
    ]


def _vocabulary(view, key) -> int | None:
    """The smallest ``input_dim`` of the Embedding layers reading the model input ``key`` directly."""
    sizes = [
        int(node.layer.input_dim)
        for node in view.nodes
        if key in node.inputs[:1] and isinstance(node.layer, keras.layers.Embedding)
    ]
    return min(sizes) if sizes else None


def split_structure(x, specs):
    """Flatten ``x`` into one array per model input, in model order.

    Returns
    -------
    arrays : list
    kind : str
        ``"single"``, ``"list"`` or ``"dict"``: how to shape results back.
    """
    if isinstance(x, dict):
        missing = [spec.name for spec in specs if spec.name not in x]
        if missing:
            raise InputError(
                f"Input dict is missing model inputs {missing}. "
                f"Expected keys: {[s.name for s in specs]}. Received: {sorted(x)}"
            )
        return [x[spec.name] for spec in specs], "dict"
    if isinstance(x, (list, tuple)):
        if len(x) != len(specs):
            raise InputError(
                f"Model has {len(specs)} input(s) {[s.name for s in specs]}; "
                f"received a {type(x).__name__} of {len(x)} arrays."
            )
        return list(x), "list"
    if len(specs) != 1:
        raise InputError(
            f"Model has {len(specs)} inputs {[s.name for s in specs]}; pass a list or dict "
            f"of arrays. Received: a single {type(x).__name__}."
        )
    return [x], "single"


def validate(arrays: list, specs: list) -> list:
    """Convert to NumPy, check shape, dtype and finiteness; cast to the input dtype."""
    result = []
    for array, spec in zip(arrays, specs):
        array = np.asarray(array.numpy() if hasattr(array, "numpy") else array)
        _check_shape(array, spec)
        array = _cast(array, spec)
        _check_token_ids(array, spec)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            bad = np.unique(np.nonzero(~np.isfinite(array))[0])[:10].tolist()
            raise InputError(f"Input {spec.name!r} contains NaN or Inf (samples {bad}). Expected finite values.")
        result.append(array)
    batch_sizes = {len(a) for a in result}
    if len(batch_sizes) > 1:
        raise InputError(f"All inputs need the same batch size. Received sizes: {sorted(batch_sizes)}")
    return result


def _check_shape(array, spec):
    expected = tuple(spec.shape)
    fits = array.ndim == len(expected) and all(
        e is None or e == r for e, r in zip(expected[1:], array.shape[1:])
    )
    if not fits:
        shown = "(batch, " + ", ".join(str(d) for d in expected[1:]) + ")"
        raise InputError(
            f"Input {spec.name!r} expects shape {shown}. Received: shape {array.shape}. "
            + _shape_hint(array.shape, expected)
        )


def _check_token_ids(array, spec):
    if spec.vocabulary is None or not array.size:
        return
    bad = (array < 0) | (array >= spec.vocabulary)
    if np.any(bad):
        samples = np.unique(np.nonzero(bad)[0])[:10].tolist()
        raise InputError(
            f"Input {spec.name!r} holds token ids for an Embedding of input_dim={spec.vocabulary}: "
            f"expected ids in [0, {spec.vocabulary}). Received: ids from {array.min()} to {array.max()} "
            f"(samples {samples})."
        )


def _matches(shape, expected) -> bool:
    return len(shape) == len(expected) and all(e is None or e == r for e, r in zip(expected, shape))


def _shape_hint(received: tuple, expected: tuple) -> str:
    """What is likely wrong with an input of shape ``received`` for ``expected`` (batch axis first)."""
    sample = tuple(expected[1:])
    if _matches(tuple(received), sample):
        return "It looks like one sample without the batch axis: pass x[None] (or np.expand_dims(x, 0))."
    if len(received) != len(expected):
        return f"Expected {len(expected)} axes, the batch axis first; received {len(received)}."
    got = tuple(received[1:])
    if len(sample) >= 2 and _matches(got[1:] + got[:1], sample):
        return (
            "It looks channels-first; the model takes channels last: "
            f"pass np.moveaxis(x, 1, -1) (shape {(received[0],) + got[1:] + got[:1]})."
        )
    if len(sample) >= 2 and _matches(got[-1:] + got[:-1], sample):
        return (
            "It looks channels-last; the model takes channels first: "
            f"pass np.moveaxis(x, -1, 1) (shape {(received[0],) + got[-1:] + got[:-1]})."
        )
    wrong = [
        f"axis {axis} is {r}, expected {e}"
        for axis, (e, r) in enumerate(zip(expected, received))
        if axis and e is not None and e != r
    ]
    return "Wrong size: " + "; ".join(wrong) + ". Resize or crop the input to the model's input shape."


def _cast(array, spec):
    target = np.dtype(spec.dtype)
    kind = array.dtype.kind
    if kind not in "biuf":
        raise InputError(f"Input {spec.name!r} expects numbers of dtype {spec.dtype}. Received dtype: {array.dtype}")
    if target.kind in "iu" and kind == "f":
        raise InputError(
            f"Input {spec.name!r} expects integers ({spec.dtype}), e.g. token ids. Received dtype: {array.dtype}"
        )
    return array.astype(target, copy=False)


def batches(arrays: list, batch_size: int | None):
    """Yield lists of array slices of at most ``batch_size`` samples."""
    total = len(arrays[0])
    size = total if batch_size is None else int(batch_size)
    for start in range(0, total, max(size, 1)):
        yield [a[start : start + size] for a in arrays]


def dataset_features(element):
    """The model inputs of one ``tf.data`` element (drops labels and weights)."""
    if isinstance(element, tuple) and 1 < len(element) <= 3:
        return element[0]
    return element
