"""Model checks that run before anything is traced, each with an actionable message.

Unsupported layers are reported all at once by :func:`tfxai.composites.assign`.
"""

from __future__ import annotations

import keras

from tfxai import graph
from tfxai.errors import ModelError


def check_model(model) -> None:
    """Raise :class:`~tfxai.errors.ModelError` if tfxai cannot walk ``model``.

    Checks, in order: it is a ``keras.Model``; Keras runs on the TensorFlow
    backend; it is not a subclassed model; a Sequential model is built.
    """
    if not isinstance(model, keras.Model):
        raise ModelError(f"tfxai explains keras.Model instances. Received: {type(model).__name__}")
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ModelError(
            f"tfxai needs Keras on the TensorFlow backend. Received backend: {backend!r}. "
            "Set KERAS_BACKEND=tensorflow before importing keras."
        )
    if graph.is_subclassed_model(model):
        raise ModelError(
            f"Model {model.name!r} is a subclassed keras.Model ({type(model).__name__}); it has no "
            "layer graph to walk. Rebuild it with the functional API "
            "(inputs = keras.Input(...); outputs = ...; keras.Model(inputs, outputs)) "
            "or as a keras.Sequential, reusing the same layers and weights."
        )
    if graph.is_unbuilt_sequential(model):
        raise ModelError(
            f"Sequential model {model.name!r} is not built, so it has no graph yet. Start it with "
            "keras.Input(shape=...) or call model.build((None, ...)) before creating an analyzer."
        )
