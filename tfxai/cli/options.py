"""Options, argument types, sub-parsers and exit status shared by the ``tfxai`` commands (:mod:`tfxai.cli`).

Imports neither TensorFlow nor Keras: the parser is built and argument
errors are reported before either is loaded.
"""

from __future__ import annotations

import argparse
import json
import sys

from tfxai import user_classes
from tfxai.errors import (
    InputError,
    ModelLoadError,
    ParameterError,
    ParameterTypeError,
    UnknownNameError,
    UnsupportedLayerError,
)

EXIT_OK, EXIT_UNSUPPORTED, EXIT_USAGE, EXIT_LOAD, EXIT_FAILED, EXIT_BUG = 0, 1, 2, 3, 4, 5
EXIT_STATUS = {
    EXIT_OK: "success",
    EXIT_UNSUPPORTED: "some nodes have no relevance rule (check lists them, export refuses)",
    EXIT_USAGE: "usage error: bad arguments, an unknown method, composite or parameter, a bad value",
    EXIT_LOAD: "the model cannot be loaded: file, keras.applications name, --import module or custom class",
    EXIT_FAILED: "the model cannot be explained or exported (e.g. subclassed), or a file cannot be written",
    EXIT_BUG: "an unexpected error inside tfxai (a bug: the traceback is printed; please report it)",
}
"""Exit status of every ``tfxai`` command -> what it means."""


def exit_status(error: Exception) -> int:
    """The exit status (:data:`EXIT_STATUS`) a command returns for ``error``."""
    if isinstance(error, UnsupportedLayerError):
        return EXIT_UNSUPPORTED
    if isinstance(error, ModelLoadError):
        return EXIT_LOAD
    if isinstance(error, (UnknownNameError, ParameterError, ParameterTypeError, InputError)):
        return EXIT_USAGE
    return EXIT_FAILED


def epilog() -> str:
    rows = "\n".join(f"  {status}  {meaning}" for status, meaning in EXIT_STATUS.items())
    return f"exit status:\n{rows}"


def subparser(subparsers, name, **kwargs) -> argparse.ArgumentParser:
    """A command's parser, with the exit status table as its epilog."""
    return subparsers.add_parser(
        name, epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs
    )


def failed(command: str, error: Exception) -> int:
    """Print ``error`` as ``tfxai COMMAND: error: ...`` and return its exit status."""
    print(f"tfxai {command}: error: {error}", file=sys.stderr)
    return exit_status(error)


def add_model_options(parser) -> None:
    """Add ``--import MODULE`` and ``--custom-objects MODULE:NAME`` (for models with custom classes)."""
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module (name, or path/to/file.py) before loading, so the custom classes it "
        "registers with @keras.saving.register_keras_serializable are known; repeatable",
    )
    parser.add_argument(
        "--custom-objects",
        dest="custom_objects",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        type=custom_object,
        help="a class (or function) the model file uses, given to Keras as custom_objects; repeatable",
    )


def method_parameters(methods: list, params: list) -> dict:
    """Method name -> its keyword parameters, from parsed ``--param [METHOD:]KEY=VALUE`` options.

    ``KEY=VALUE`` goes to every method that takes ``KEY``; ``METHOD:KEY=VALUE``
    to ``METHOD`` only, and wins over ``KEY=VALUE``.

    Raises
    ------
    UnknownNameError
        For an unknown method name.
    ParameterTypeError
        For a ``KEY`` that none of the methods takes.
    ParameterError
        For a ``METHOD:`` that is not one of ``methods``.
    """
    from tfxai.analyzers import analyzer_parameters  # noqa: PLC0415

    accepted = {method: analyzer_parameters(method) for method in methods}
    result = {method: {} for method in methods}
    for method, key, value in params:
        if method is not None:
            continue
        takers = [m for m in methods if key in accepted[m]]
        if not takers:
            takes = "; ".join(f"{m!r} takes {sorted(accepted[m])}" for m in methods)
            raise ParameterTypeError(f"--param {key}=...: no --method takes {key!r}. {takes}")
        for taker in takers:
            result[taker][key] = value
    for method, key, value in params:
        if method is None:
            continue
        if method not in result:
            raise ParameterError(
                f"--param {method}:{key}=... names method {method!r}, which is not a --method. "
                f"Received --method {methods}"
            )
        result[method][key] = value  # create_analyzer says so if the method does not take it
    return result


def parameter(text: str):
    setting, sep, value = text.partition("=")
    method, _, key = setting.rpartition(":")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(
            f"expected [METHOD:]KEY=VALUE, e.g. epsilon=0.1 or lrp.epsilon:epsilon=0.1. Received: {text!r}"
        )
    try:
        return method or None, key, json.loads(value)
    except json.JSONDecodeError:
        return method or None, key, value


def custom_object(text: str):
    try:
        return user_classes.parse_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def shape(text: str) -> tuple:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, e.g. 32,32,3. Received: {text!r}"
        ) from None
