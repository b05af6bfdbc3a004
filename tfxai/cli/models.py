"""Loading the model a command works on: a model file, or a ``keras.applications`` architecture."""

from __future__ import annotations

import os
import pathlib

from tfxai import user_classes
from tfxai.errors import ModelLoadError

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
"""Model files the commands load."""


def load_model_file(path, custom_objects: dict | None = None):
    """Load a ``.keras`` / ``.h5`` model with ``safe_mode=True`` (no Python code from the file runs).

    Parameters
    ----------
    path : str or path-like
    custom_objects : dict, optional
        Classes and functions the file uses that are not registered with
        Keras, by name (see :func:`tfxai.user_classes.load`).

    Raises
    ------
    ModelLoadError
        For a missing file or another format, and for a file Keras cannot
        load: a class it cannot find (the message says how to provide it),
        a Python lambda (refused by ``safe_mode``), a damaged file.
    """
    import zipfile  # noqa: PLC0415

    import keras  # noqa: PLC0415  (the CLI starts without Keras and TensorFlow)

    path = pathlib.Path(path)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        suffixes = ", ".join(MODEL_SUFFIXES)
        raise ModelLoadError(f"Expected a model file ending in {suffixes}. Received: {str(path)!r}")
    if not path.is_file():
        raise ModelLoadError(f"Model file {str(path)!r} does not exist.")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True, custom_objects=custom_objects)
    except (TypeError, ValueError, OSError, zipfile.BadZipFile) as error:
        hint = user_classes.missing_class_hint(error)
        raise ModelLoadError(f"Cannot load {str(path)!r}: {hint or error}") from error


def load_model(spec: str, input_shape=None, custom_objects: dict | None = None):
    """A model from a saved-model file, or a ``keras.applications`` architecture (no weights).

    Parameters
    ----------
    spec : str
        A path to a ``.keras`` / ``.h5`` file, or an application name such as
        ``"ResNet50"`` or ``"keras.applications.EfficientNetB0"``.
    input_shape : tuple of int, optional
        For applications: the input shape (default: the architecture's own).
    custom_objects : dict, optional
        For files: see :func:`load_model_file`.
    """
    import keras  # noqa: PLC0415

    if os.path.exists(spec):
        return load_model_file(spec, custom_objects)
    name = spec.removeprefix("keras.applications.")
    builder = getattr(keras.applications, name, None)
    if not (callable(builder) and name[:1].isupper()):
        raise ModelLoadError(
            f"{spec!r} is neither a model file nor a keras.applications model. "
            "Give a .keras/.h5 path or a name such as ResNet50 or EfficientNetB0."
        )
    return builder(weights=None, input_shape=None if input_shape is None else tuple(input_shape))
