"""``tfxai.check`` and ``tfxai check``: the per-node rule table, printed before any tracing."""

from __future__ import annotations

import argparse
import io

import keras
import pytest
import tensorflow as tf

import tfxai
from tfxai import checks, cli, reverse, rules
from tfxai.graph import count_inbound_nodes

L = keras.layers


@keras.saving.register_keras_serializable(package="tfxai_tests")
class Doubler(L.Layer):
    """A custom element-wise layer tfxai has no rule for."""

    def call(self, inputs):
        return tf.math.scalar_mul(2.0, inputs)  # a raw TF op: tfxai cannot capture it


def _conv_model():
    keras.utils.set_random_seed(1)
    x = keras.Input((8, 8, 3), name="img")
    h = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(x)
    h = L.BatchNormalization(name="bn")(h)
    h = L.ReLU(name="relu")(h)
    h = L.SeparableConv2D(4, 3, padding="same", activation="relu", name="sep")(h)
    gate = L.Conv2D(4, 1, activation="sigmoid", name="gate")(
        L.GlobalAveragePooling2D(keepdims=True, name="gap")(h)
    )
    h = L.Multiply(name="excite")([h, gate])
    h = L.LayerNormalization(name="ln")(h)
    y = L.Dense(3, activation="softmax", name="probs")(L.Flatten(name="flat")(h))
    return keras.Model(x, y, name="conv_model")


class Squash(L.Layer):
    """Another custom layer, left without a rule."""

    def call(self, inputs):
        return inputs / (1.0 + tf.abs(inputs))  # a raw TF op: tfxai cannot capture it


def _unsupported_model():
    x = keras.Input((5,), name="x")
    h = Squash(name="squash")(L.Dense(4, name="d1")(x))
    h = Doubler(name="double")(h)
    h = L.Lambda(lambda t: 0.5 * t, name="halve")(h)
    return keras.Model(x, L.Dense(2, name="logits")(h), name="custom")


def test_one_row_per_canonized_node_with_the_analyzers_rule():
    model = _conv_model()
    out = io.StringIO()
    result = tfxai.check(model, "epsilon_plus", file=out)
    analyzer = tfxai.create_analyzer("lrp.epsilon_plus", model)
    assert [row.name for row in result.nodes] == [node.name for node in analyzer.view.nodes]
    for row in result.nodes:
        assert row.supported and row.fix == ""
        if row.rule == checks.UNREACHED:  # the squeeze-excitation gate: signal-take-all sends it nothing
            assert row.name not in analyzer.assignment
        else:
            assert row.rule == repr(analyzer.assignment[row.name])
    assert {row.name for row in result.nodes if row.rule == checks.UNREACHED} == {
        "gap", "gate", "gate/activation", "probs/activation"  # and the stripped final softmax
    }
    assert result.ok and result.composite == "epsilon_plus"
    table = out.getvalue()
    assert table == result.table() + "\n"
    lines = table.splitlines()
    assert (
        lines[0]
        == f"Model 'conv_model' under composite 'epsilon_plus': {len(result.nodes)} nodes, 0 unsupported"
    )
    assert lines[1].split() == ["node", "type", "rule", "fix"]
    assert lines[-1] == "Every node has a rule."
    by_name = {row.name: row for row in result.nodes}
    assert by_name["conv+bn"].type == "Conv2D"
    assert by_name["sep"].type == "SeparableConv2D"
    assert by_name["sep/activation"].type == "Activation (SeparableConv2D)"
    assert by_name["excite"].type == "GatedProduct (Multiply)" and by_name["excite"].rule == "SignalTakeAll()"
    assert by_name["ln"].rule.startswith("FrozenScale(")
    assert "probs/activation" in by_name  # the stripped softmax is still a node of the graph


def test_unsupported_nodes_are_rows_with_a_fix_and_nothing_raises():
    result = tfxai.check(_unsupported_model(), verbose=False)
    assert not result.ok
    unsupported = {row.name: row for row in result.unsupported}
    assert sorted(unsupported) == ["double", "halve", "squash"]
    assert all(row.rule == "unsupported" for row in unsupported.values())
    assert "tfxai.register_rule(Doubler, tfxai.rules.Pass())" in unsupported["double"].fix
    assert "Lambda hides its function" in unsupported["halve"].fix
    assert "rules=[('halve', tfxai.rules.Pass())]" in unsupported["halve"].fix
    assert "tfxai.register_rule(Squash" in unsupported["squash"].fix
    table = result.table()
    assert "3 unsupported" in table.splitlines()[0]
    assert "3 node(s) need a rule" in table.splitlines()[-1]
    # The analyzer refuses the same nodes.
    with pytest.raises(tfxai.UnsupportedLayerError) as info:
        tfxai.create_analyzer("lrp.epsilon_plus", _unsupported_model())
    assert sorted(name for name, _ in info.value.nodes) == sorted(unsupported)


def test_the_suggested_fixes_make_the_report_ok():
    model = _unsupported_model()
    try:
        tfxai.register_rule(Doubler, rules.Pass())
        result = tfxai.check(model, rules=[("halve", rules.Pass())], verbose=False)
        assert [row.name for row in result.unsupported] == ["squash"]
    finally:
        tfxai.unregister_rule(Doubler)


def test_the_composite_decides_the_rules():
    model = _conv_model()
    epsilon = {row.name: row.rule for row in tfxai.check(model, "epsilon", verbose=False).nodes}
    box = {row.name: row.rule for row in tfxai.check(model, "lrp.epsilon_gamma_box", verbose=False).nodes}
    assert epsilon["conv+bn"].startswith("Epsilon(") and box["conv+bn"].startswith("ZBox(")
    assert epsilon["sep"].startswith("Epsilon(") and box["sep"].startswith("Gamma(")
    overridden = tfxai.check(model, "epsilon_plus", rules=[("sep", rules.Epsilon(0.5))], verbose=False)
    assert {row.name: row.rule for row in overridden.nodes}["sep"] == repr(rules.Epsilon(0.5))
    custom = tfxai.check(model, tfxai.Composite([(L.Dense, rules.Epsilon())], "dense_only"), verbose=False)
    assert custom.composite == "dense_only"
    assert {row.name for row in custom.unsupported} == {"conv+bn", "sep"}  # no relevance reaches the gate conv
    assert "add (keras.layers.Conv2D, tfxai.rules.Epsilon())" in custom.unsupported[0].fix
    with pytest.raises(KeyError, match="Valid names: epsilon, attn_lrp, cp_lrp, epsilon_alpha2_beta1"):
        tfxai.check(model, "no_such_composite", verbose=False)


def test_a_weight_rule_on_a_weightless_node_is_reported():
    result = tfxai.check(_conv_model(), rules=[("relu", rules.Gamma())], verbose=False)
    (row,) = result.unsupported
    assert row.name == "relu" and "modifies weights" in row.fix


def test_check_runs_nothing(monkeypatch):
    """No tracing and no forward pass: the table comes from the graph alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("check must not run the model")

    model = _conv_model()
    before = count_inbound_nodes(model)
    monkeypatch.setattr(reverse, "forward", refuse)
    monkeypatch.setattr(keras.Model, "__call__", refuse)
    assert tfxai.check(model, verbose=False).ok
    assert count_inbound_nodes(model) == before


def test_models_tfxai_cannot_walk_raise_model_error():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(tfxai.ModelError, match="subclassed"):
        tfxai.check(Subclassed(), verbose=False)


# --------------------------------------------------------------------------- command line


def _parse(argv):
    parser = argparse.ArgumentParser(prog="tfxai")
    subparsers = parser.add_subparsers(dest="command")
    cli.add_check_command(subparsers)
    return parser.parse_args(argv)


def test_cli_checks_a_keras_application_by_name(capsys):
    args = _parse(
        ["check", "MobileNetV3Small", "--input-shape", "32,32,3", "--composite", "epsilon_gamma_box"]
    )
    assert cli.run_check_command(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("Model 'MobileNetV3Small' under composite 'epsilon_gamma_box':")
    assert "GatedProduct (Multiply)" in out and "SignalTakeAll()" in out and "ZBox(" in out
    assert "Every node has a rule." in out


def test_cli_checks_a_saved_model_file(tmp_path, capsys):
    path = tmp_path / "conv.keras"
    _conv_model().save(path)
    assert cli.run_check_command(_parse(["check", str(path)])) == 0
    assert "Every node has a rule." in capsys.readouterr().out

    unsupported = tmp_path / "custom.keras"
    x = keras.Input((4,))
    keras.Model(x, L.Dense(2)(Doubler(name="double")(x))).save(unsupported)
    assert cli.run_check_command(_parse(["check", str(unsupported)])) == 1
    out = capsys.readouterr().out
    assert "double" in out and "unsupported" in out and "tfxai.register_rule(Doubler" in out


def test_cli_explains_what_it_cannot_load(capsys):
    assert cli.run_check_command(_parse(["check", "NoSuchNet"])) == 3
    assert "neither a model file nor a keras.applications model" in capsys.readouterr().err
    assert cli.run_check_command(_parse(["check", "MobileNetV2", "--composite", "nope"])) == 2
    assert "Unknown composite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["check", "MobileNetV2", "--input-shape", "32x32"])


def test_report_rows_are_plain_data():
    row = checks.NodeReport("n", "Dense", "Epsilon()")
    assert row.supported
    assert not checks.NodeReport("n", "Lambda", checks.UNSUPPORTED, "fix").supported
    empty = checks.CheckReport("m", "epsilon", ())
    assert (
        empty.ok
        and empty.table().splitlines()[0] == "Model 'm' under composite 'epsilon': 0 nodes, 0 unsupported"
    )
