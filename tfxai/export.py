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

``tfxai export`` (in :mod:`tfxai.cli`) is the command-line front end.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import tempfile
from typing import Mapping

import keras
import tensorflow as tf

from tfxai.errors import TfxaiError

DEFAULT_NAME = "explain"
"""Signature name of a single exported analyzer."""

TARGET_SUFFIX = "_target"
"""Suffix of the signature that also takes the neuron to explain."""

TARGET_INPUT = "target"
"""Name of the per-sample neuron index input."""

PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
"""Graph ops that call back into Python (``tf.py_function``, ``tf.numpy_function``)."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class ExportError(TfxaiError, ValueError):
    """An analyzer cannot be exported as given; nothing was written."""


def export_analyzer(analyzer, path, *, name: str = DEFAULT_NAME, overwrite: bool = False):
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


def export_analyzers(analyzers: Mapping, path, *, overwrite: bool = False):
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


def output_names(analyzer) -> dict:
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


def _endpoint(analyzer, mode: str):
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


def is_analyzer(value) -> bool:
    """Whether ``value`` is a tfxai analyzer (what :func:`export_analyzers` needs of it).

    Checked by what export uses (``compiled``, ``input_specs``, ``view``,
    ``model``) so that this module needs nothing from :mod:`tfxai.analyzers`,
    which imports it.
    """
    return all(hasattr(value, name) for name in ("compiled", "input_specs", "view", "model", "jit_compile"))


def _check_analyzer(name, analyzer):
    if not is_analyzer(analyzer):
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
