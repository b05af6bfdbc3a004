"""SavedModel export: signatures, servability, fresh-process reload, CLI, refusals.

TF Serving itself is not installable here; ``saved_model_cli run`` loads the
SavedModel with the TF1 session loader, the path TF Serving's C++ loader takes.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from conftest import required_params
from tfxai.errors import ModelError, UnsupportedLayerError
from tfxai.cli import add_export_command, run_export_command
from tfxai.export import (
    PYTHON_OPS,
    ExportError,
    export_analyzer,
    export_analyzers,
    output_names,
)

L = keras.layers
TOL = 1e-6


def _mlp():
    keras.utils.set_random_seed(1)
    x = keras.Input((6,), name="x")
    h = L.Dense(5, activation="relu", bias_initializer="random_normal", name="d1")(x)
    y = L.Dense(3, activation="softmax", name="out")(h)
    return keras.Model(x, y, name="mlp")


def _multi():
    """Two inputs, two outputs."""
    keras.utils.set_random_seed(2)
    xa = keras.Input((6,), name="xa")
    xb = keras.Input((4,), name="xb")
    ha = L.Dense(5, activation="relu", name="da")(xa)
    h = L.Concatenate(name="concat")([ha, L.Dense(3, name="db")(xb)])
    label = L.Dense(3, activation="softmax", name="label")(h)
    score = L.Dense(2, name="score")(h)
    return keras.Model([xa, xb], [label, score], name="multi")


def _cnn():
    keras.utils.set_random_seed(3)
    x = keras.Input((6, 6, 1), name="image")
    h = L.Conv2D(2, 3, padding="same", activation="relu", name="conv")(x)
    h = L.MaxPooling2D(2, name="pool")(h)
    y = L.Dense(3, activation="softmax", name="out")(L.Flatten(name="flat")(h))
    return keras.Model(x, y, name="cnn")


def _data(shapes, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n,) + shape).astype("float32") for shape in shapes]


@pytest.fixture(scope="module")
def mlp():
    return _mlp()


@pytest.fixture(scope="module")
def multi():
    return _multi()


@pytest.fixture(scope="module")
def exports(tmp_path_factory, mlp, multi):
    """One single-method export (mlp) and one two-method export (multi-input, multi-output)."""
    root = tmp_path_factory.mktemp("exports")
    single = tfxai.create_analyzer("lrp.epsilon_plus_flat", mlp)
    single_path = single.export(root / "classifier_xai" / "1")
    methods = {
        "lrp_epsilon": tfxai.create_analyzer("lrp.epsilon", multi, epsilon=0.01),
        "gradient": tfxai.create_analyzer("gradient", multi, output_index=1),
    }
    multi_path = export_analyzers(methods, root / "multi_xai" / "1")
    return {"single": (single, single_path), "multi": (methods, multi_path)}


def _max_diff(got, want):
    return float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))))


def _saved_model_cli(*args):
    """Start ``saved_model_cli`` (the console script TensorFlow installs) in a subprocess."""
    script = pathlib.Path(sys.executable).parent / "saved_model_cli"
    module = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    command = [str(script)] if script.exists() else module
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    return subprocess.Popen(command + list(args), env=env, **pipes)


def _finish(process, timeout=120):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


# --------------------------------------------------------------------------- signatures


@pytest.mark.slow
def test_signatures_have_documented_names_dtypes_and_a_none_batch(exports):
    _, path = exports["single"]
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {"serving_default", "explain", "explain_target"}
    x_spec = tf.TensorSpec((None, 6), tf.float32, name="x")
    assert loaded.signatures["serving_default"].structured_input_signature[1] == {"x": x_spec}
    target_inputs = loaded.signatures["explain_target"].structured_input_signature[1]
    assert target_inputs == {"x": x_spec, "target": tf.TensorSpec((None,), tf.int32, name="target")}
    outputs = loaded.signatures["explain"].structured_outputs
    assert {k: (v.shape.as_list(), v.dtype) for k, v in outputs.items()} == {
        "predictions": ([None, 3], tf.float32),
        "relevance": ([None, 6], tf.float32),
        "explained": ([None], tf.float32),
    }


def test_multi_method_export_has_one_signature_pair_per_method(exports):
    methods, path = exports["multi"]
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {
        "serving_default",
        "lrp_epsilon",
        "lrp_epsilon_target",
        "gradient",
        "gradient_target",
    }
    assert output_names(methods["gradient"]) == {
        "predictions": ["predictions_label", "predictions_score"],
        "relevance": ["relevance_xa", "relevance_xb"],
        "explained": "explained",
    }
    outputs = loaded.signatures["serving_default"].structured_outputs
    assert sorted(outputs) == [
        "explained",
        "predictions_label",
        "predictions_score",
        "relevance_xa",
        "relevance_xb",
    ]
    assert outputs["relevance_xb"].shape.as_list() == [None, 4]
    xa, xb = _data([(6,), (4,)], 5)
    # serving_default is the first method (LRP-epsilon, explaining output 0)
    got = loaded.signatures["serving_default"](xa=tf.constant(xa), xb=tf.constant(xb))
    want = methods["lrp_epsilon"].analyze({"xa": xa, "xb": xb})
    assert _max_diff(got["relevance_xa"], want["xa"]) <= TOL
    assert _max_diff(got["relevance_xb"], want["xb"]) <= TOL


def test_reloaded_in_process_equals_analyze_for_any_batch_size(exports, mlp):
    analyzer, path = exports["single"]
    loaded = tf.saved_model.load(str(path))
    for n in (1, 7):
        (x,) = _data([(6,)], n, seed=n)
        got = loaded.signatures["serving_default"](x=tf.constant(x))
        relevance, delta = analyzer.analyze(x, return_delta=True)
        assert _max_diff(got["relevance"], relevance) <= TOL
        assert _max_diff(got["predictions"], mlp(x)) <= TOL
        assert _max_diff(got["explained"] - got["relevance"].numpy().sum(axis=1), delta) <= 1e-5
        target = np.arange(n, dtype=np.int32) % 3
        got = loaded.signatures["explain_target"](x=tf.constant(x), target=tf.constant(target))
        assert _max_diff(got["relevance"], analyzer.analyze(x, neuron_selection=target)) <= TOL


def test_target_signature_rejects_bad_targets_in_graph(exports):
    _, path = exports["single"]
    explain = tf.saved_model.load(str(path)).signatures["explain_target"]
    (x,) = _data([(6,)], 2)
    for target, message in (([0, 3], "< 3"), ([0, -1], ">= 0"), ([0], "one neuron index per sample")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            explain(x=tf.constant(x), target=tf.constant(target, tf.int32))


# --------------------------------------------------------------------------- SavedModel contents


def test_model_variables_are_in_the_checkpoint_and_drive_the_relevance(exports, mlp):
    _, path = exports["single"]
    checkpoint = {name for name, _ in tf.train.list_variables(str(path / "variables" / "variables"))}
    assert len([name for name in checkpoint if name.startswith("variables/")]) == len(mlp.weights)
    loaded = tf.saved_model.load(str(path))
    assert sorted(v.name for v in loaded.variables) == sorted(f"{w.path}:0" for w in mlp.weights)
    (x,) = _data([(6,)], 3)
    before = loaded.signatures["serving_default"](x=tf.constant(x))["relevance"].numpy()
    assert np.abs(before).max() > 0
    for variable in loaded.variables:
        variable.assign(tf.zeros_like(variable))
    after = loaded.signatures["serving_default"](x=tf.constant(x))
    assert np.abs(after["relevance"].numpy()).max() == 0
    np.testing.assert_allclose(after["predictions"].numpy(), 1 / 3, rtol=1e-6)


def _graph_ops(path):
    from tensorflow.core.protobuf import saved_model_pb2  # noqa: PLC0415

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((pathlib.Path(path) / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    return {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}


def test_graph_has_no_python_callbacks(exports):
    for _, path in exports.values():
        ops = _graph_ops(path)
        assert "MatMul" in ops and not ops & PYTHON_OPS


# --------------------------------------------------------------------------- servability


def _parse_show(text):
    """``{signature: {"inputs": {name: (dtype, shape)}, "outputs": {...}}}`` from ``show --all``."""
    signatures, current, side, name = {}, None, None, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("signature_def["):
            current = signatures.setdefault(line.split("'")[1], {"inputs": {}, "outputs": {}})
        elif line.startswith("The given SavedModel SignatureDef contains the following input"):
            side = "inputs"
        elif line.startswith("The given SavedModel SignatureDef contains the following output"):
            side = "outputs"
        elif current is not None and line.startswith(("inputs[", "outputs[")):
            name = line.split("'")[1]
        elif current is not None and name and line.startswith("dtype:"):
            dtype = line.split()[1]
        elif current is not None and name and line.startswith("shape:"):
            current[side][name] = (dtype, line.split(":", 1)[1].strip())
            name = None
    return signatures


@pytest.mark.slow
def test_saved_model_cli_show_lists_the_signatures(exports):
    processes = {key: _saved_model_cli("show", "--all", "--dir", str(p)) for key, (_, p) in exports.items()}
    texts = {key: _finish(process) for key, process in processes.items()}
    for text in texts.values():
        ops_line = next(line for line in text.splitlines() if "contains the following ops" in line)
        ops = set(re.findall(r"'(\w+)'", ops_line))
        assert "MatMul" in ops and not ops & PYTHON_OPS
    single, multi = _parse_show(texts["single"]), _parse_show(texts["multi"])
    assert single["serving_default"] == {
        "inputs": {"x": ("DT_FLOAT", "(-1, 6)")},
        "outputs": {
            "explained": ("DT_FLOAT", "(-1)"),
            "predictions": ("DT_FLOAT", "(-1, 3)"),
            "relevance": ("DT_FLOAT", "(-1, 6)"),
        },
    }
    assert single["explain_target"]["inputs"] == {
        "target": ("DT_INT32", "(-1)"),
        "x": ("DT_FLOAT", "(-1, 6)"),
    }
    assert single["explain"] == single["serving_default"]
    assert multi["gradient_target"]["inputs"] == {
        "target": ("DT_INT32", "(-1)"),
        "xa": ("DT_FLOAT", "(-1, 6)"),
        "xb": ("DT_FLOAT", "(-1, 4)"),
    }
    assert multi["gradient_target"]["outputs"]["predictions_score"] == ("DT_FLOAT", "(-1, 2)")
    assert multi["serving_default"] == multi["lrp_epsilon"]


@pytest.mark.slow
def test_saved_model_cli_run_agrees_with_analyze(exports, tmp_path):
    (x,) = _data([(6,)], 4, seed=5)
    xa, xb = _data([(6,), (4,)], 4, seed=6)
    target = np.array([1, 0, 1, 1], np.int32)
    for name, array in {"x": x, "xa": xa, "xb": xb, "target": target}.items():
        np.save(tmp_path / f"{name}.npy", array)

    def run(export, signature, names):
        inputs = ";".join(f"{name}={tmp_path / (name + '.npy')}" for name in names)
        directory = str(exports[export][1])
        return _saved_model_cli(
            "run", "--dir", directory, "--tag_set", "serve", "--signature_def", signature,
            "--inputs", inputs, "--outdir", str(tmp_path / export),
        )  # fmt: skip

    runs = [run("single", "serving_default", ["x"]), run("multi", "gradient_target", ["xa", "xb", "target"])]
    for process in runs:
        _finish(process)
    single, _ = exports["single"]
    gradient = exports["multi"][0]["gradient"]
    want = gradient.analyze([xa, xb], neuron_selection=target)
    diffs = [
        _max_diff(np.load(tmp_path / "single" / "relevance.npy"), single.analyze(x)),
        _max_diff(np.load(tmp_path / "multi" / "relevance_xa.npy"), want[0]),
        _max_diff(np.load(tmp_path / "multi" / "relevance_xb.npy"), want[1]),
        _max_diff(np.load(tmp_path / "multi" / "predictions_score.npy"), gradient.model([xa, xb])[1]),
    ]
    print(f"max abs diff, saved_model_cli run vs analyze: {max(diffs):.3g}")
    assert max(diffs) <= TOL


_FRESH = textwrap.dedent(
    """
    import json, sys

    # None in sys.modules: Python's marker for a module that must not be imported
    # ("import halted"); TensorFlow then sees Keras as not installed, too.
    for blocked in ("tfxai", "keras"):
        sys.modules[blocked] = None
    for blocked in ("tfxai", "keras"):
        try:
            __import__(blocked)
        except ImportError:
            pass
        else:
            raise SystemExit(blocked + " was importable")

    import numpy as np
    import tensorflow as tf

    jobs = json.loads(sys.argv[1])
    for job in jobs:
        signature = tf.saved_model.load(job["path"]).signatures[job["signature"]]
        inputs = {k: tf.constant(v) for k, v in np.load(job["inputs"]).items()}
        np.savez(job["outputs"], **{k: v.numpy() for k, v in signature(**inputs).items()})
    loaded = [m for m, module in sys.modules.items() if m.split(".")[0] in ("tfxai", "keras") and module]
    print(json.dumps({"loaded": loaded}))
    """
)


@pytest.mark.slow
def test_fresh_process_without_tfxai_or_keras_equals_in_process_analysis(exports, tmp_path):
    (x,) = _data([(6,)], 5, seed=7)
    xa, xb = _data([(6,), (4,)], 5, seed=8)
    target = np.array([2, 0, 1, 1, 0], np.int32)
    np.savez(tmp_path / "single.npz", x=x)
    np.savez(tmp_path / "single_target.npz", x=x, target=target)
    np.savez(tmp_path / "multi.npz", xa=xa, xb=xb)
    np.savez(tmp_path / "multi_target.npz", xa=xa, xb=xb, target=target % 2)
    jobs = [
        ("single", "serving_default", "single"),
        ("single", "explain_target", "single_target"),
        ("multi", "lrp_epsilon", "multi"),
        ("multi", "gradient_target", "multi_target"),
    ]
    spec = [
        {
            "path": str(exports[export][1]),
            "signature": signature,
            "inputs": str(tmp_path / f"{data}.npz"),
            "outputs": str(tmp_path / f"out_{data}.npz"),
        }
        for export, signature, data in jobs
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, "-c", _FRESH, json.dumps(spec)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"loaded": []}

    single, _ = exports["single"]
    methods, _ = exports["multi"]
    out = {i: np.load(tmp_path / f"out_{i}.npz") for _, _, i in jobs}
    diffs = [
        _max_diff(out["single"]["relevance"], single.analyze(x)),
        _max_diff(out["single_target"]["relevance"], single.analyze(x, neuron_selection=target)),
        _max_diff(out["single"]["predictions"], single.model(x)),
    ]
    lrp = methods["lrp_epsilon"].analyze([xa, xb])
    gradient = methods["gradient"].analyze([xa, xb], neuron_selection=target % 2)
    diffs += [
        _max_diff(out["multi"]["relevance_xa"], lrp[0]),
        _max_diff(out["multi"]["relevance_xb"], lrp[1]),
        _max_diff(out["multi_target"]["relevance_xa"], gradient[0]),
        _max_diff(out["multi_target"]["relevance_xb"], gradient[1]),
    ]
    print(f"max abs diff, fresh process without tfxai and keras vs analyze: {max(diffs):.3g}")
    assert max(diffs) <= TOL


# --------------------------------------------------------------------------- every analyzer


def _signature(name):
    return re.sub(r"\W", "_", name)


NOT_FOR_THE_CNN = {}
"""Analyzer name -> regex of the ModelError it must raise on :func:`_cnn`, for analyzers that
legitimately cannot explain that model. Empty: every registered analyzer explains it with its default
parameters (a conv layer for Grad-CAM, no sequence layers needed), so every one must export."""


@pytest.fixture(scope="module")
def every_analyzer(tmp_path_factory):
    """Every registered analyzer of a tiny CNN, exported together (one signature pair each) and reloaded.

    Creating an analyzer may only fail for the names in :data:`NOT_FOR_THE_CNN`, with the error stated
    there; any other error fails the tests.
    """
    model = _cnn()
    assert set(NOT_FOR_THE_CNN) <= set(tfxai.analyzer_names())
    for name, message in NOT_FOR_THE_CNN.items():
        with pytest.raises(ModelError, match=message):
            tfxai.create_analyzer(name, model)
    names = [name for name in tfxai.analyzer_names() if name not in NOT_FOR_THE_CNN]
    analyzers = {
        _signature(name): tfxai.create_analyzer(name, model, **required_params(name, model)) for name in names
    }
    path = export_analyzers(analyzers, tmp_path_factory.mktemp("every") / "1")
    return model, analyzers, path, tf.saved_model.load(str(path)).signatures


@pytest.mark.slow
def test_every_analyzer_export_has_no_python_callbacks(every_analyzer):
    *_, path, signatures = every_analyzer
    assert len(signatures) == 1 + 2 * len(every_analyzer[1])
    assert not _graph_ops(path) & PYTHON_OPS


@pytest.mark.parametrize("name", [n for n in tfxai.analyzer_names() if n not in NOT_FOR_THE_CNN])
@pytest.mark.slow
def test_every_analyzer_exports_and_reloads(name, every_analyzer):
    model, analyzers, _, signatures = every_analyzer
    analyzer, signature = analyzers[_signature(name)], _signature(name)
    (x,) = _data([(6, 6, 1)], 3, seed=9)
    target = np.array([2, 0, 1], np.int32)
    got = signatures[signature](image=tf.constant(x))
    assert _max_diff(got["relevance"], analyzer.analyze(x)) <= TOL
    got = signatures[signature + "_target"](image=tf.constant(x), target=tf.constant(target))
    assert _max_diff(got["relevance"], analyzer.analyze(x, neuron_selection=target)) <= TOL
    assert _max_diff(got["predictions"], model(x)) <= TOL


# --------------------------------------------------------------------------- refusals


def test_python_callbacks_are_refused_before_writing(tmp_path):
    x = keras.Input((3,), name="x")
    def doubled_in_python(t):
        return tf.ensure_shape(tf.py_function(lambda v: v * 2.0, [t], tf.float32), t.shape)

    h = L.Lambda(doubled_in_python, name="py")(x)
    model = keras.Model(x, L.Dense(2, name="out")(h))
    destination = tmp_path / "models" / "py" / "1"
    with pytest.raises(ExportError, match="EagerPyFunc"):
        export_analyzer(tfxai.create_analyzer("gradient", model), destination)
    assert not (tmp_path / "models").exists()


def test_bad_arguments_are_refused_before_writing(tmp_path, mlp, multi):
    destination = tmp_path / "out" / "1"
    lrp = tfxai.create_analyzer("lrp.epsilon", mlp)
    jit = tfxai.create_analyzer("gradient", mlp, jit_compile=True)
    cases = [
        (lambda: export_analyzers({}, destination), "non-empty dict"),
        (lambda: export_analyzers({"lrp": mlp}, destination), "tfxai.create_analyzer"),
        (lambda: export_analyzers({"lrp.epsilon": lrp}, destination), "Signature names"),
        (lambda: export_analyzers({"a": lrp, "a_target": lrp}, destination), "clash"),
        (
            lambda: export_analyzers({"a": lrp, "b": tfxai.create_analyzer("gradient", multi)}, destination),
            "same model",
        ),
        (lambda: export_analyzer(jit, destination), "XLA"),
    ]
    for call, message in cases:
        with pytest.raises(ExportError, match=message):
            call()
    assert not destination.parent.exists()


@pytest.mark.parametrize("name, message", [("target", "Rename the model input"), ("my-input", "not valid")])
def test_input_names_tf_would_change_are_refused(tmp_path, name, message):
    x = keras.Input((3,), name=name)
    model = keras.Model(x, L.Dense(2)(x))
    with pytest.raises(ExportError, match=message):
        export_analyzer(tfxai.create_analyzer("gradient", model), tmp_path / "1")
    assert not (tmp_path / "1").exists()


def test_existing_export_is_kept_unless_overwrite(tmp_path, mlp):
    analyzer = tfxai.create_analyzer("gradient", mlp)
    destination = export_analyzer(analyzer, tmp_path / "1")
    before = (destination / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(ExportError, match="already exists"):
        export_analyzer(analyzer, destination)
    assert (destination / "saved_model.pb").stat().st_mtime_ns == before
    export_analyzer(analyzer, destination, overwrite=True)
    assert (destination / "saved_model.pb").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["1"]  # no staging directory left behind
    with pytest.raises(ExportError, match="not the base path"):
        export_analyzer(analyzer, tmp_path, overwrite=True)
    assert (destination / "saved_model.pb").exists()


# --------------------------------------------------------------------------- command line


def _cli(*argv):
    parser = argparse.ArgumentParser(prog="tfxai")
    add_export_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *map(str, argv)])
    assert args.handler is run_export_command
    return args.handler(args)


@pytest.mark.slow
def test_cli_exports_keras_and_h5_files_like_the_api(tmp_path, mlp, capsys):
    mlp.save(tmp_path / "model.keras")
    mlp.save(tmp_path / "model.h5")
    argv = ["--method", "lrp.epsilon_plus_flat", "--param", "epsilon=0.5"]
    assert _cli(tmp_path / "model.keras", tmp_path / "a" / "1", *argv) == 0
    assert "serving_default" in capsys.readouterr().out
    argv = ["--method", "lrp.epsilon", "--method", "gradient", "--param", "output_index=0"]
    assert _cli(tmp_path / "model.h5", tmp_path / "b" / "1", *argv) == 0
    (x,) = _data([(6,)], 4, seed=11)
    single = tf.saved_model.load(str(tmp_path / "a" / "1")).signatures
    want = tfxai.create_analyzer("lrp.epsilon_plus_flat", mlp, epsilon=0.5).analyze(x)
    assert _max_diff(single["serving_default"](x=tf.constant(x))["relevance"], want) <= TOL
    several = tf.saved_model.load(str(tmp_path / "b" / "1")).signatures
    assert sorted(several) == [
        "gradient",
        "gradient_target",
        "lrp_epsilon",
        "lrp_epsilon_target",
        "serving_default",
    ]
    want = tfxai.create_analyzer("gradient", mlp).analyze(x)
    assert _max_diff(several["gradient"](x=tf.constant(x))["relevance"], want) <= TOL


def _assert_refused(capsys, destination, *argv, message, status):
    assert _cli(*argv, destination) == status
    assert message in capsys.readouterr().err
    assert not destination.exists()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_cli_loads_in_safe_mode_so_model_files_run_no_code(tmp_path, capsys, suffix):
    # Loaded without safe_mode, this Lambda's Python code would run when the export traces the model.
    marker = tmp_path / "code_ran"
    code = eval(f"lambda t: t * 2.0 if open({str(marker)!r}, 'w').close() is None else t")  # noqa: S307
    x = keras.Input((3,), name="x")
    model = keras.Model(x, L.Dense(2, name="out")(L.Lambda(code, output_shape=(3,), name="lambda")(x)))
    model.save(tmp_path / f"model{suffix}")
    destination = tmp_path / "out" / "1"
    model_file = tmp_path / f"model{suffix}"
    _assert_refused(capsys, destination, model_file, "--method", "gradient", message="safe_mode", status=3)
    assert not marker.exists()


@keras.saving.register_keras_serializable(package="tfxai_tests")
class _Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = L.Dense(2)

    def call(self, x):
        return self.dense(x)


@keras.saving.register_keras_serializable(package="tfxai_tests")
class _Doubling(L.Layer):
    """A custom layer no relevance rule is registered for."""

    def call(self, x):
        return tf.math.scalar_mul(2.0, x)  # a raw TF op: tfxai cannot capture it


def test_cli_refuses_subclassed_models_and_unsupported_layers_before_writing(tmp_path, capsys):
    subclassed = _Subclassed()
    subclassed(np.zeros((1, 3), "float32"))
    subclassed.save(tmp_path / "subclassed.keras")
    destination = tmp_path / "out" / "1"
    model_file = tmp_path / "subclassed.keras"
    _assert_refused(capsys, destination, model_file, "--method", "gradient", message="functional API", status=4)

    x = keras.Input((4,), name="x")
    model = keras.Model(x, L.Dense(2, name="out")(_Doubling(name="doubling")(x)))
    model.save(tmp_path / "custom.keras")
    with pytest.raises(UnsupportedLayerError):
        tfxai.create_analyzer("lrp.epsilon", model)
    model_file = tmp_path / "custom.keras"
    _assert_refused(capsys, destination, model_file, "--method", "lrp.epsilon", message="doubling", status=1)


def test_cli_refuses_bad_arguments(tmp_path, capsys, mlp):
    mlp.save(tmp_path / "model.keras")
    destination = tmp_path / "out" / "1"
    model = tmp_path / "model.keras"
    _assert_refused(capsys, destination, tmp_path / "model.pb", "--method", "gradient", message=".keras, .h5", status=3)
    missing = tmp_path / "missing.keras"
    _assert_refused(capsys, destination, missing, "--method", "gradient", message="does not exist", status=3)
    _assert_refused(capsys, destination, model, "--method", "no_such_method", message="Valid names", status=2)
    argv = ["--method", "gradient", "--param", "epsilon=1"]
    _assert_refused(capsys, destination, model, *argv, message="no --method takes 'epsilon'", status=2)
    with pytest.raises(SystemExit):
        _cli(model, destination, "--method", "gradient", "--param", "epsilon")
