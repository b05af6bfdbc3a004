"""Checking method parameters where they are given, in Keras' style.

Every check names the parameter, says what it expects and echoes what it
received (``"epsilon must be a finite number >= 0. Received: epsilon=nan"``),
and raises :class:`~tfxai.errors.ParameterTypeError` (a ``TypeError``) for a
value of the wrong type or :class:`~tfxai.errors.ParameterError` (a
``ValueError``) for one out of range. Analyzers and rules call them in
``__init__``, so a bad value fails at creation, never inside a trace.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from tfxai.errors import ParameterError, ParameterTypeError


def _expect(owner: str, name: str, what: str) -> str:
    """``"Epsilon expects epsilon to be <what>"``, or ``"epsilon must be <what>"`` without an owner."""
    return f"{owner} expects {name} to be {what}" if owner else f"{name} must be {what}"


def _scalar(value):
    """A 0-d NumPy array as its Python scalar; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def number(name: str, value, *, minimum=None, exclusive: bool = False, owner: str = "") -> float:
    """``value`` as a float, after checking it is a finite real number (>= or > ``minimum``).

    Booleans and strings are refused: ``epsilon="0.1"`` is a ``TypeError``.
    """
    value = _scalar(value)
    bound = "" if minimum is None else f" {'>' if exclusive else '>='} {minimum}"
    expected = _expect(owner, name, f"a finite number{bound}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"{expected}. Received: {name}={value!r} (type {type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or (
        minimum is not None and (value < minimum or (exclusive and value == minimum))
    ):
        raise ParameterError(f"{expected}. Received: {name}={value!r}")
    return value


def count(name: str, value, *, minimum: int = 1, owner: str = "") -> int:
    """``value`` as an int >= ``minimum`` (an integral float such as ``8.0`` is accepted)."""
    value = _scalar(value)
    expected = _expect(owner, name, f"an integer >= {minimum}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"{expected}. Received: {name}={value!r} (type {type(value).__name__})")
    if not (math.isfinite(value) and float(value).is_integer() and int(value) >= minimum):
        raise ParameterError(f"{expected}. Received: {name}={value!r}")
    return int(value)


def integer(name: str, value, *, owner: str = "") -> int:
    """``value`` as an int of any sign (seeds)."""
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(
            f"{_expect(owner, name, 'an integer')}. Received: {name}={value!r} (type {type(value).__name__})"
        )
    return int(value)


def flag(name: str, value, *, owner: str = "") -> bool:
    """``value`` as a bool; only ``True``/``False`` (and NumPy booleans) are accepted."""
    value = _scalar(value)
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterTypeError(
            f"{_expect(owner, name, 'True or False')}. Received: {name}={value!r} (type {type(value).__name__})"
        )
    return bool(value)


def choice(name: str, value, options, *, owner: str = ""):
    """``value`` if it is one of ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ParameterError(f"{_expect(owner, name, f'one of {tuple(options)}')}. Received: {name}={value!r}")
    return value


def finite_array(name: str, value, *, owner: str = "") -> np.ndarray:
    """``value`` as a float64 array of finite numbers (bounds, baselines)."""
    try:
        if np.asarray(value).dtype.kind not in "biuf":  # strings would convert silently
            raise TypeError
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterTypeError(
            f"{_expect(owner, name, 'a number or an array of numbers')}. Received: {name}={value!r}"
        ) from None
    if not np.all(np.isfinite(array)):
        raise ParameterError(f"{_expect(owner, name, 'finite')}. Received: {name}={value!r}")
    return array


def bounds(low, high, *, owner: str) -> None:
    """``low`` and ``high`` finite, of shapes that broadcast together, and ``low <= high`` everywhere."""
    low_array = finite_array("low", low, owner=owner)
    high_array = finite_array("high", high, owner=owner)
    try:
        np.broadcast_shapes(low_array.shape, high_array.shape)
    except ValueError:
        raise ParameterError(
            f"{owner} expects low and high of shapes that broadcast together. "
            f"Received: low of shape {low_array.shape}, high of shape {high_array.shape}"
        ) from None
    if np.any(low_array > high_array):
        raise ParameterError(f"{owner} expects low <= high. Received: low={low}, high={high}")


def bounds_fit_input(low, high, node_name: str, input_shape, *, owner: str) -> None:
    """Each bound broadcasts to one input sample of shape ``input_shape[1:]`` (batch axis first)."""
    sample = tuple(1 if d is None else d for d in input_shape[1:])
    for name, value in (("low", low), ("high", high)):
        shape = np.shape(value)
        try:
            fits = np.broadcast_shapes(shape, sample) == sample
        except ValueError:
            fits = False
        if not fits:
            raise ParameterError(
                f"{owner} bound {name} of shape {shape} does not broadcast to the input of node "
                f"{node_name!r}, one sample of shape {tuple(input_shape[1:])}. Give a scalar, "
                f"one value per channel, or an array of the sample's shape."
            )
