"""Export analyzers as TensorFlow SavedModels that TF Serving runs.

An exported explainer is a SavedModel written with
``keras.export.ExportArchive``: it tracks the model (its variables are in the
SavedModel's checkpoint and the explanation reads them, so it is not frozen
into constants) and holds, per exported method ``name``, two signatures:

``name``
    Inputs: the model inputs, named after them, batch dimension ``None``.
    Outputs: ``predictions`` (what the model returns), ``relevance`` (same
    shape as the input) and ``explained`` (per sample, the value the relevance
    explains: the logit of the largest output).
``name + "_target"``
    The same, with one more input ``target`` (int32, one output neuron per
    sample, counted over the flattened non-batch axes of the explained output).

``serving_default`` is the first method's ``name`` signature. A model with
several inputs gets ``relevance_<input name>`` per input; a model with several
outputs gets ``predictions_<output name>`` per output.

The graph is pure TensorFlow: it loads with ``tf.saved_model.load``, runs
through ``saved_model_cli run`` (the session loader TF Serving uses) and needs
neither tfxai nor Keras where it is served.

The command-line interface lives here too: :func:`add_export_command` adds
``tfxai export`` to an ``argparse`` parser.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import sys
import tempfile
from typing import Mapping

import keras
import tensorflow as tf

from tfxai.analyzers import create_analyzer
from tfxai.analyzers.base import Analyzer
from tfxai.errors import TfxaiError

DEFAULT_NAME = "explain"
"""Signature name of a single exported analyzer."""

TARGET_SUFFIX = "_target"
"""Suffix of the signature that also takes the neuron to explain."""

TARGET_INPUT = "target"
"""Name of the per-sample neuron index input."""

PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
"""Graph ops that call back into Python (``tf.py_function``, ``tf.numpy_function``)."""

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
"""Model files ``tfxai export`` loads."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class ExportError(TfxaiError, ValueError):
    """An analyzer cannot be exported as given; nothing was written."""


def export_analyzer(analyzer: Analyzer, path, *, name: str = DEFAULT_NAME, overwrite: bool = False):
    """Write ``analyzer`` as a SavedModel that TF Serving runs.

    Parameters
    ----------
    analyzer : Analyzer
        From :func:`tfxai.create_analyzer`, created without ``jit_compile``.
    path : str or os.PathLike
        The SavedModel directory. For TF Serving, a numbered version directory
        under the model's base path: ``models/classifier_xai/1``.
    name : str
        Signature name of the explanation (``name`` and ``name + "_target"``).
    overwrite : bool
        Replace an existing SavedModel at ``path``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ExportError
        Before anything is written, when the analyzer, a name or the
        destination does not fit, or when the graph would call Python.
    """
    return export_analyzers({name: analyzer}, path, overwrite=overwrite)


def export_analyzers(analyzers: Mapping[str, Analyzer], path, *, overwrite: bool = False):
    """Write several analyzers of one model as one SavedModel, a signature pair each.

    Parameters
    ----------
    analyzers : mapping of str to Analyzer
        Signature name -> analyzer, e.g. ``{"lrp_epsilon": a1, "gradient": a2}``.
        All explain the same model; the first also answers ``serving_default``.
    path : str or os.PathLike
        The SavedModel directory (``models/classifier_xai/1`` for TF Serving).
    overwrite : bool
        Replace an existing SavedModel at ``path``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ExportError
        Before anything is written, when an analyzer, a name or the
        destination does not fit, or when the graph would call Python.

    Examples
    --------
    >>> from tfxai.export import export_analyzers  # doctest: +SKIP
    >>> export_analyzers({"lrp_epsilon": tfxai.create_analyzer("lrp.epsilon", model),
    ...                   "gradient": tfxai.create_analyzer("gradient", model)},
    ...                  "models/classifier_xai/1")  # doctest: +SKIP
    """
    analyzers = _checked_analyzers(analyzers)
    path = _checked_destination(path, overwrite)
    archive = keras.export.ExportArchive()
    archive.track(next(iter(analyzers.values())).model)
    endpoints = []
    target = tf.TensorSpec((None,), tf.int32, name=TARGET_INPUT)
    for name, analyzer in analyzers.items():
        specs = [spec.tensor_spec() for spec in analyzer.input_specs]
        endpoints.append(archive.add_endpoint(name, _endpoint(analyzer, "max_activation"), specs))
        endpoints.append(
            archive.add_endpoint(name + TARGET_SUFFIX, _endpoint(analyzer, "index"), specs + [target])
        )
    _check_no_python(endpoints)
    _write(archive, path)
    return path


def output_names(analyzer: Analyzer) -> dict:
    """Output keys of the exported signatures of ``analyzer``.

    Returns
    -------
    dict
        ``{"predictions": [...], "relevance": [...], "explained": "explained"}``:
        one prediction key per model output, one relevance key per model input.
    """
    inputs = [spec.name for spec in analyzer.input_specs]
    relevance = ["relevance"] if len(inputs) == 1 else [f"relevance_{name}" for name in inputs]
    n_outputs = len(analyzer.view.outputs)
    if n_outputs == 1:
        predictions = ["predictions"]
    else:
        names = list(getattr(analyzer.model, "output_names", None) or range(n_outputs))
        if len(set(names)) != n_outputs:
            names = list(range(n_outputs))
        predictions = [f"predictions_{name}" for name in names]
    return {"predictions": predictions, "relevance": relevance, "explained": "explained"}


def signature_names(names) -> list:
    """Every signature key a SavedModel exported with these method names holds."""
    names = list(names)
    return ["serving_default"] + [n + suffix for n in names for suffix in ("", TARGET_SUFFIX)]


def _endpoint(analyzer: Analyzer, mode: str):
    """The signature function of one selection mode: a dict of named outputs."""
    function = analyzer.compiled(mode)
    keys = output_names(analyzer)
    n_inputs = len(analyzer.input_specs)
    size = analyzer.output_size()

    def endpoint(*args):
        if mode == "index":
            args = args[:n_inputs] + (_checked_target(args[n_inputs], args[0], size),)
        relevance, explained, predictions = function(*args)
        outputs = {keys["explained"]: explained}
        outputs.update(zip(keys["relevance"], relevance))
        outputs.update(zip(keys["predictions"], predictions))
        return outputs

    return endpoint


def _checked_target(target, x, size):
    """``target`` after in-graph checks: one index per sample, each in ``[0, size)``."""
    checks = [
        tf.debugging.assert_equal(
            tf.shape(target)[0], tf.shape(x)[0], message="target needs one neuron index per sample"
        ),
        tf.debugging.assert_non_negative(target, message="target indices must be >= 0"),
    ]
    if size is not None:
        checks.append(
            tf.debugging.assert_less(
                target, size, message=f"target indices must be < {size} (the output size)"
            )
        )
    with tf.control_dependencies(checks):
        return tf.identity(target)


def _checked_analyzers(analyzers) -> dict:
    if not isinstance(analyzers, Mapping) or not analyzers:
        raise ExportError(
            "export_analyzers expects a non-empty dict of signature name -> analyzer, e.g. "
            f"{{'lrp_epsilon': analyzer}}. Received: {analyzers!r}"
        )
    analyzers = dict(analyzers)
    for name, analyzer in analyzers.items():
        _check_analyzer(name, analyzer)
    _check_signature_names(list(analyzers))
    first = next(iter(analyzers.values()))
    others = [name for name, a in analyzers.items() if a.model is not first.model]
    if others:
        raise ExportError(
            f"All analyzers of one SavedModel must explain the same model; {others} explain another "
            f"model than {first.model.name!r}. Export them to separate SavedModels."
        )
    _check_input_names(first)
    return analyzers


def _check_analyzer(name, analyzer):
    if not isinstance(analyzer, Analyzer):
        hint = ""
        if isinstance(analyzer, keras.Model):
            hint = " Create one with tfxai.create_analyzer(method, model)."
        received = type(analyzer).__name__
        raise ExportError(f"Signature {name!r} needs a tfxai Analyzer. Received: {received}.{hint}")
    if analyzer.jit_compile:
        raise ExportError(
            f"The analyzer of signature {name!r} was created with jit_compile=True. Functions marked for "
            "XLA run in TF Serving only experimentally; create the analyzer for export without jit_compile."
        )


def _check_signature_names(names):
    bad = [n for n in names if not isinstance(n, str) or not _NAME.match(n) or n == "serving_default"]
    if bad:
        raise ExportError(
            f"Signature names must start with a letter and hold only letters, digits and '_' "
            f"(and not be 'serving_default'). Received: {bad}"
        )
    taken = [n for n in names if n.endswith(TARGET_SUFFIX) and n[: -len(TARGET_SUFFIX)] in names]
    if taken:
        raise ExportError(
            f"Signature names {taken} clash with the '{TARGET_SUFFIX}' signatures of other methods; "
            "rename them."
        )


def _check_input_names(analyzer):
    names = [spec.name for spec in analyzer.input_specs]
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise ExportError(
            f"Model input names {bad} are not valid signature input names (a letter, then letters, digits "
            "or '_'); TensorFlow would rename them. Rebuild the model with keras.Input(..., name='image')."
        )
    if TARGET_INPUT in names:
        raise ExportError(
            f"A model input is named {TARGET_INPUT!r}, the name of the neuron index input of the "
            f"'{TARGET_SUFFIX}' signatures. Rename the model input."
        )


def _checked_destination(path, overwrite: bool) -> pathlib.Path:
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise ExportError(f"Cannot export to {str(path)!r}: it is a file. Give a directory path.")
    if not path.is_dir() or not any(path.iterdir()):
        return path
    if not overwrite:
        raise ExportError(
            f"{str(path)!r} already exists and is not empty. Pass overwrite=True (--overwrite) to replace "
            "it, or export a new version directory (e.g. .../2) for TF Serving to pick up."
        )
    if not (path / "saved_model.pb").is_file():
        raise ExportError(
            f"{str(path)!r} is not empty and holds no saved_model.pb; overwrite only replaces a SavedModel. "
            "Give the version directory (e.g. models/classifier_xai/1), not the base path."
        )
    return path


def _check_no_python(endpoints):
    """Refuse graphs that call back into Python: TF Serving has no Python interpreter."""
    found = set()
    for endpoint in endpoints:
        graph_def = endpoint.get_concrete_function().graph.as_graph_def()
        nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
        found.update(f"{node.name} ({node.op})" for node in nodes if node.op in PYTHON_OPS)
    if found:
        raise ExportError(
            f"The explanation graph calls Python ({', '.join(sorted(found))}): tf.py_function or "
            "tf.numpy_function, e.g. in a Lambda or custom layer. TF Serving cannot run it; rewrite that "
            "layer with TensorFlow ops."
        )


def _write(archive, path: pathlib.Path):
    """Write next to ``path`` and rename, so a watching server never sees half a version."""
    created = _first_missing(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        archive.write_out(str(staging), verbose=False)
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _first_missing(directory: pathlib.Path):
    """The outermost ancestor of ``directory`` (itself included) that does not exist yet."""
    missing = None
    for candidate in [directory, *directory.parents]:
        if candidate.exists():
            break
        missing = candidate
    return missing


# --------------------------------------------------------------------------- command line


def add_export_command(subparsers):
    """Add ``tfxai export`` to an ``argparse`` sub-parser collection.

    The parser it adds sets ``handler=run_export_command``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = subparsers.add_parser(
        "export",
        help="export a model's explainer as a SavedModel for TF Serving",
        description=(
            "Export explanations of a Keras model as a TensorFlow SavedModel that TF Serving runs. "
            "The model file is loaded with Keras' safe_mode: files that would run Python code "
            "(Lambda layers holding Python lambdas) are refused."
        ),
    )
    parser.add_argument("model", help="model file: .keras, .h5 or .hdf5")
    parser.add_argument("output", help="SavedModel directory, e.g. models/classifier_xai/1")
    parser.add_argument(
        "--method",
        action="append",
        required=True,
        metavar="NAME",
        help="analyzer name (see tfxai.analyzer_names()); repeat to export several, one signature each",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_parameter,
        help="method or composite parameter, VALUE in JSON (epsilon=0.1, low=[-1,-1,-1], baseline=\"zero\"); "
        "given to every method",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing SavedModel")
    parser.set_defaults(handler=run_export_command)
    return parser


def run_export_command(args) -> int:
    """Run ``tfxai export`` with parsed arguments; print errors, return the exit status."""
    try:
        path, names, analyzer = _export_from_file(args)
    except (TfxaiError, ValueError, TypeError, OSError) as error:
        print(f"tfxai export: error: {error}", file=sys.stderr)
        return 1
    _print_summary(path, names, analyzer)
    return 0


def _export_from_file(args):
    names = [DEFAULT_NAME] if len(args.method) == 1 else [re.sub(r"\W", "_", m) for m in args.method]
    if len(set(names)) != len(names):
        raise ExportError(f"Each --method needs its own signature name. Received: {args.method}")
    model = load_model(args.model)
    params = dict(args.param)
    analyzers = {name: create_analyzer(method, model, **params) for name, method in zip(names, args.method)}
    path = export_analyzers(analyzers, args.output, overwrite=args.overwrite)
    return path, names, analyzers[names[0]]


def load_model(path):
    """Load a ``.keras`` / ``.h5`` model with ``safe_mode=True`` (no Python code from the file runs).

    Raises
    ------
    ExportError
        For a missing file or another format.
    ValueError
        From Keras, when the file holds a Python lambda or an unknown class.
    """
    path = pathlib.Path(path)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        suffixes = ", ".join(MODEL_SUFFIXES)
        raise ExportError(f"Expected a model file ending in {suffixes}. Received: {str(path)!r}")
    if not path.is_file():
        raise ExportError(f"Model file {str(path)!r} does not exist.")
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def _parameter(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. epsilon=0.1. Received: {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _print_summary(path, names, analyzer):
    inputs = ", ".join(f"{s.name} {s.dtype} {(None,) + tuple(s.shape[1:])}" for s in analyzer.input_specs)
    keys = output_names(analyzer)
    outputs = ", ".join(keys["predictions"] + keys["relevance"] + [keys["explained"]])
    print(f"Wrote SavedModel {str(path)!r}")
    print(f"  signatures: {', '.join(signature_names(names))} (serving_default = {names[0]})")
    print(f"  inputs: {inputs}; '{TARGET_SUFFIX}' signatures also take {TARGET_INPUT} int32 (None,)")
    print(f"  outputs: {outputs}")
    base = path.resolve().parent
    if not path.name.isdigit():
        print("  note: TF Serving loads numbered version directories; export to <model>/1, <model>/2, ...")
    print(
        f"Serve it: tensorflow_model_server --rest_api_port=8501 --model_name={base.name} "
        f"--model_base_path={base}"
    )
