"""The ``tfxai`` command line: a start without TensorFlow, quiet output, exit status, custom classes, parameters."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import cli, logs
from tfxai.cli import options as cli_options

L = keras.layers
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
ENV.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a new user's shell has it
LOG_LINE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN|cuInit|cuda drivers", re.M)
"""A C++ / absl log line, or one of TensorFlow's start-up notices."""


def _python(code: str, *args, cwd=None):
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300
    )


LOADED = textwrap.dedent(
    """
    import sys
    from tfxai import cli
    try:
        status = cli.main(sys.argv[1:])
    except SystemExit as exit:
        status = exit.code
    heavy = sorted(m for m in ("tensorflow", "keras", "numpy", "matplotlib") if m in sys.modules)
    print("STATUS", status, "LOADED", heavy)
    """
)


@pytest.mark.parametrize(
    "argv, status",
    [
        (["--help"], 0),
        (["check", "--help"], 0),
        (["export", "--help"], 0),
        ([], 2),
        (["explode"], 2),
        (["export", "model.keras", "out"], 2),
        (["export", "model.keras", "out", "--method", "gradient", "--param", "epsilon"], 2),
        (["check", "model.keras", "--input-shape", "32x32"], 2),
        (["check", "model.keras", "--custom-objects", "no_colon"], 2),
    ],
)
def test_help_and_argument_errors_never_import_tensorflow(argv, status):
    result = _python(LOADED, *argv)
    assert result.stdout.strip().splitlines()[-1] == f"STATUS {status} LOADED []", result.stderr
    if status == 2:
        assert "usage: tfxai" in result.stderr and "error:" in result.stderr


def test_help_documents_every_exit_status(capsys):
    with pytest.raises(SystemExit):
        cli.main(["check", "--help"])
    out = capsys.readouterr().out
    for status, meaning in cli_options.EXIT_STATUS.items():
        assert f"  {status}  {meaning}" in out
    assert len(set(cli_options.EXIT_STATUS)) == 6


def test_the_filter_hides_start_up_notices_and_keeps_every_other_line(capfd):
    notice = (
        "I0000 00:00:1796288785.009864 12261 port.cc:153] oneDNN custom operations are on. You may see "
        "slightly different numerical results\n"
    )
    with logs.filtered_stderr(logs.START_UP_NOTICES):
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, notice.encode())
        os.write(2, b"a genuine warning\n")
        print("from Python", file=sys.stderr)
    err = capfd.readouterr().err  # (capfd takes Python's own writes directly, so the order may differ)
    assert sorted(err.splitlines()) == ["a genuine warning", "from Python"]


def _save_mlp(path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,), name="x"), L.Dense(3, activation="relu"), L.Dense(2)])
    model.save(path)
    return model


@pytest.mark.slow
def test_the_command_line_and_tfxai_quiet_print_no_tensorflow_start_up_lines(tmp_path):
    _save_mlp(tmp_path / "mlp.keras")
    command = _python("import sys; from tfxai import cli; sys.exit(cli.main(sys.argv[1:]))", "check", "mlp.keras", cwd=tmp_path)
    assert command.returncode == 0, command.stderr
    assert "Every node has a rule." in command.stdout
    assert LOG_LINE.search(command.stderr) is None, command.stderr
    library = _python("import tfxai; tfxai.quiet(); import tensorflow as tf; print(float(tf.constant(2.0) + 1))")
    assert library.returncode == 0 and library.stdout == "3.0\n", library.stderr
    assert LOG_LINE.search(library.stderr) is None, library.stderr


# --------------------------------------------------------------------------- custom classes

LAYERS = '''
import keras


@keras.saving.register_keras_serializable(package="tfxai_cli_test")
class Triple(keras.layers.Layer):
    def call(self, x):
        return x * 3.0
'''


def _parse(*argv):
    return cli.build_parser().parse_args([str(a) for a in argv])


@pytest.fixture()
def custom_model(tmp_path, monkeypatch):
    """A model file with a custom layer whose module is not imported (its class unregistered)."""
    (tmp_path / "triple_layers.py").write_text(LAYERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path)] + sys.path)
    registered = dict(keras.saving.get_custom_objects())
    import triple_layers  # noqa: PLC0415

    x = keras.Input((4,), name="x")
    keras.Model(x, L.Dense(2, name="out")(triple_layers.Triple(name="triple")(x))).save(tmp_path / "triple.keras")
    yield tmp_path / "triple.keras"
    objects = keras.saving.get_custom_objects()
    objects.clear()
    objects.update(registered)
    sys.modules.pop("triple_layers", None)


def _forget_triple():
    keras.saving.get_custom_objects().pop("tfxai_cli_test>Triple", None)
    sys.modules.pop("triple_layers", None)


def test_a_missing_custom_class_names_the_options_that_provide_it(custom_model, capsys):
    _forget_triple()
    assert cli.run_check_command(_parse("check", custom_model)) == cli_options.EXIT_LOAD
    err = capsys.readouterr().err
    assert "uses the class 'Triple', which is not known to Keras" in err
    assert "--import MODULE" in err and "--custom-objects MODULE:Triple" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "options",
    [["--import", "triple_layers"], ["--import", "triple_layers.py"], ["--custom-objects", "triple_layers:Triple"]],
)
def test_import_and_custom_objects_load_the_users_classes(custom_model, capsys, options):
    _forget_triple()
    # Loaded, the custom layer has no rule of its own, so its call is captured (tfxai.capture): x * 3.0 is
    # a ConstantAffine node of the layer's scope; check exits with 0, not with a load error.
    assert cli.run_check_command(_parse("check", custom_model, *options)) == cli_options.EXIT_OK
    out = capsys.readouterr().out
    assert re.search(r"^triple/multiply(_\d+)?\s+ConstantAffine \(Multiply\)\s+Pass\(\)", out, re.M), out


def test_bad_import_options_say_which_option_failed(custom_model, capsys):
    assert cli.run_check_command(_parse("check", custom_model, "--import", "no_such_module")) == 3
    assert "--import no_such_module: the module could not be imported (ModuleNotFoundError" in capsys.readouterr().err
    assert cli.run_check_command(_parse("check", custom_model, "--custom-objects", "triple_layers:Tripel")) == 3
    err = capsys.readouterr().err
    assert "--custom-objects triple_layers:Tripel: module 'triple_layers' has no 'Tripel'. Did you mean Triple?" in err


# --------------------------------------------------------------------------- exit status, parameters


def test_each_kind_of_failure_has_its_own_exit_status(tmp_path, capsys):
    _save_mlp(tmp_path / "mlp.keras")
    check = lambda *argv: cli.run_check_command(_parse("check", *argv))  # noqa: E731
    assert check(tmp_path / "mlp.keras") == 0
    assert check("NoSuchNet") == 3
    assert check(tmp_path / "mlp.keras", "--composite", "epsilon_plu") == 2
    assert "Did you mean 'epsilon_plus'" in capsys.readouterr().err
    assert cli.exit_status(tfxai.UnsupportedLayerError("m", [])) == 1
    assert cli.exit_status(tfxai.ModelError("subclassed")) == 4
    assert cli.exit_status(tfxai.InputError("shape")) == 2
    assert cli.exit_status(OSError("disk full")) == 4


def test_an_unexpected_error_prints_its_traceback_and_exits_with_5(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli.check, "run_check_command", broken)
    assert cli.main(["check", "x.keras"]) == 5
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: a bug" in err and "please report it" in err


def test_param_goes_to_the_methods_that_take_it_and_method_scoped_params_to_one():
    methods = ["lrp.epsilon", "gradient", "lrp.epsilon_plus"]
    params = [
        cli_options.parameter("epsilon=0.1"),
        cli_options.parameter("lrp.epsilon_plus:epsilon=0.5"),
        cli_options.parameter("output_index=0"),
    ]
    assert cli_options.method_parameters(methods, params) == {
        "lrp.epsilon": {"epsilon": 0.1, "output_index": 0},
        "gradient": {"output_index": 0},
        "lrp.epsilon_plus": {"epsilon": 0.5, "output_index": 0},
    }
    assert cli_options.parameter('integrated_gradients:baseline="blur"') == ("integrated_gradients", "baseline", "blur")
    with pytest.raises(tfxai.ParameterTypeError, match=r"no --method takes 'gamma'. 'lrp.epsilon' takes \["):
        cli_options.method_parameters(["lrp.epsilon", "gradient"], [cli_options.parameter("gamma=0.25")])
    with pytest.raises(tfxai.ParameterError, match="names method 'lrp.z', which is not a --method"):
        cli_options.method_parameters(["lrp.epsilon"], [cli_options.parameter("lrp.z:epsilon=1")])
    with pytest.raises(tfxai.UnknownNameError, match="Did you mean 'gradient'"):
        cli_options.method_parameters(["gradiant"], [])
    with pytest.raises(argparse.ArgumentTypeError, match=r"\[METHOD:\]KEY=VALUE"):
        cli_options.parameter("lrp.epsilon:epsilon")


def test_export_gives_each_method_its_own_parameters(tmp_path, capsys):
    model = _save_mlp(tmp_path / "mlp.keras")
    argv = ["--method", "lrp.epsilon", "--method", "gradient", "--param", "epsilon=0.25"]
    assert cli.main(["export", str(tmp_path / "mlp.keras"), str(tmp_path / "out" / "1"), *argv]) == 0
    assert "lrp_epsilon" in capsys.readouterr().out
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    signatures = tf.saved_model.load(str(tmp_path / "out" / "1")).signatures
    want = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.25).analyze(x)
    got = signatures["lrp_epsilon"](x=tf.constant(x))["relevance"].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
