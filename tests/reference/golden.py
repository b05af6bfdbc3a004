"""Read the golden files and compare tfxai's heatmaps with them (used by the reference tests).

Only NumPy files committed under ``data/`` are read: the tests need neither
iNNvestigate nor zennit.
"""

from __future__ import annotations

import functools
import pathlib

import keras
import numpy as np
import tensorflow as tf

import tfxai
from reference import networks
from tfxai.analyzers.base import selection_mask

DATA = pathlib.Path(__file__).resolve().parent / "data"

TOLERANCE = 1e-5
"""Largest accepted :func:`relative_difference` where tfxai and a reference agree."""

ORACLE_TOLERANCE = 1e-12
"""Largest accepted :func:`relative_difference` between tfxai on a float64 twin and the float64
NumPy oracle (``numpy_lrp.py``). Measured at most 3e-15 (the residual network's Gamma, whose
near-cancelled denominators amplify rounding most); 1e-12 leaves a factor of 300 for other
summation orders, and is far below any difference of convention (>= 1e-4)."""

DIFFERENCE_FLOOR = 1e-4
"""Smallest :func:`relative_difference` a documented convention difference must show on a network."""


@functools.lru_cache(maxsize=None)
def load(name: str) -> dict:
    """``data/<name>.npz`` as a dict of arrays (cached)."""
    with np.load(DATA / f"{name}.npz") as archive:
        return dict(archive)


@functools.lru_cache(maxsize=None)
def model(prefix: str, dtype: str = "float32"):
    """The Keras 3 network whose weights are stored under ``prefix`` (``"bn_unit"`` is the ``bn`` network).

    ``dtype="float64"`` builds it with Keras' float64 policy (the float32
    weights, exactly widened), to compare tfxai with the float64 NumPy oracle
    of ``numpy_lrp.py`` without float32 rounding.
    """
    network = "bn" if prefix.startswith("bn") else prefix
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        return networks.build_with_weights(keras, load("networks"), network, weights_of=prefix)
    finally:
        keras.config.set_dtype_policy(policy)


def inputs(prefix: str):
    """``(x, targets)`` of the network stored under ``prefix``."""
    arrays = load("networks")
    return arrays[f"{prefix}/x"], arrays[f"{prefix}/targets"]


def target_logits(prefix: str, keras_model=None) -> np.ndarray:
    """Each input's explained logit, shaped to broadcast against the inputs."""
    x, targets = inputs(prefix)
    keras_model = keras_model if keras_model is not None else model(prefix)
    logits = np.asarray(keras_model(x, training=False))[np.arange(len(x)), targets]
    return logits.reshape((-1,) + (1,) * (x.ndim - 1))


def relative_difference(actual, expected) -> float:
    """Largest deviation between two maps, relative to the L1 norm (sum of |values|) of the expected map.

    Computed per sample, ``max_i |a_i - e_i| / sum_i |e_i|``; the result is the
    largest over the samples. Scale-free: the maps are compared as if both
    were normalised by the expected map's summed magnitude.
    """
    actual = np.asarray(actual, np.float64).reshape(len(expected), -1)
    expected = np.asarray(expected, np.float64).reshape(len(expected), -1)
    scale = np.maximum(np.abs(expected).sum(axis=1), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(actual - expected).max(axis=1) / scale))


_RESULTS: dict = {}


def analyze(prefix: str, name: str, dtype: str = "float32", **params) -> np.ndarray:
    """tfxai's relevance of every stored input's target logit (cached per network and configuration).

    Runs the analyzer's ``explain_tensors`` eagerly, with the selection mask
    ``analyze(x, neuron_selection=targets)`` uses: the same computation without
    tracing a ``tf.function`` per configuration, which would take most of the
    time of these tests. test_legacy_h5.py goes through ``analyze`` itself.
    ``dtype="float64"`` explains the float64 twin of the network (see :func:`model`).
    """
    key = (prefix, name, dtype, repr(sorted(params.items())))
    if key not in _RESULTS:
        x, targets = inputs(prefix)
        analyzer = tfxai.create_analyzer(name, model(prefix, dtype), **params)
        target = tf.constant(targets)
        select = lambda y: selection_mask(y, "index", target)  # noqa: E731
        relevance, _, _ = analyzer.explain_tensors([tf.constant(x.astype(dtype))], select)
        _RESULTS[key] = relevance[0].numpy()
    return _RESULTS[key]
