"""The user's own Keras classes for loading model files: ``--import MODULE`` and ``--custom-objects MODULE:NAME``.

A model file that holds a custom layer names its class; Keras finds it only
when the module defining it was imported (its
``@keras.saving.register_keras_serializable`` decorator registers it) or
when it is passed in ``custom_objects``. The command line offers both; this
module imports the modules and collects the classes, with errors that name
the option that failed. It imports neither TensorFlow nor Keras itself.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import pathlib
import re
import sys

from tfxai.errors import ModelLoadError, ParameterError

MISSING_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'|Unknown \w+: '([^']+)'")
"""What Keras says about a class it cannot find (``.keras`` files, then legacy ``.h5``)."""


def import_module(name: str, option: str = "--import"):
    """Import ``name``: a module path (``my_layers``, ``pkg.layers``) or a ``.py`` file.

    Module names are looked up with the current directory first on
    ``sys.path``, as ``python -m`` does (a console script does not put it
    there).

    Raises
    ------
    ModelLoadError
        When the module cannot be found or raises while it is imported; the
        message names ``option``.
    """
    path = pathlib.Path(name)
    try:
        if path.suffix == ".py":
            if not path.is_file():
                raise FileNotFoundError(f"no file {name!r}")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
            return module
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        return importlib.import_module(name)
    except Exception as error:  # noqa: BLE001  (the user's module may raise anything)
        raise ModelLoadError(
            f"{option} {name}: the module could not be imported ({type(error).__name__}: {error}). "
            "Give a module importable from the current directory (my_layers, package.layers) or a .py file."
        ) from error


def parse_spec(text: str) -> tuple:
    """``"MODULE:NAME"`` -> ``(module, name)``; raises ``ParameterError`` for another form."""
    module, sep, name = text.rpartition(":")
    if not sep or not module or not name.isidentifier():
        raise ParameterError(f"expected MODULE:NAME, e.g. my_layers:Scale. Received: {text!r}")
    return module, name


def load(imports=(), specs=()) -> dict:
    """Import every module of ``imports``; return the ``custom_objects`` dict for ``specs``.

    Parameters
    ----------
    imports : sequence of str
        Modules (or ``.py`` files) to import, so that their registered classes are known.
    specs : sequence of (str, str)
        ``(module, name)`` pairs from :func:`parse_spec`.

    Returns
    -------
    dict
        Keras ``custom_objects``: each object under its own name and under
        its registered name (``package>Name``) when it has one.
    """
    for name in imports:
        import_module(name)
    found = {}
    for module_name, name in specs:
        module = import_module(module_name, "--custom-objects")
        if not hasattr(module, name):
            public = [n for n in dir(module) if not n.startswith("_")]
            close = difflib.get_close_matches(name, public, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ModelLoadError(
                f"--custom-objects {module_name}:{name}: module {module_name!r} has no {name!r}.{hint}"
            )
        obj = getattr(module, name)
        found[name] = obj
        found[_registered_name(obj)] = obj
    return found


def _registered_name(obj) -> str:
    import keras  # noqa: PLC0415

    return keras.saving.get_registered_name(obj)


def missing_class_hint(error: Exception) -> str | None:
    """For a Keras loading error about an unknown class, the options that would provide it."""
    match = MISSING_CLASS.search(str(error))
    if match is None:
        return None
    name = match.group(1) or match.group(2)
    short = name.rpartition(">")[2]
    return (
        f"The model file uses the class {name!r}, which is not known to Keras in this process. "
        f"Import the module that defines it with --import MODULE (or --import path/to/file.py), "
        f"or name it with --custom-objects MODULE:{short}. From Python: import that module, or pass "
        f"custom_objects={{{short!r}: {short}}}."
    )
