"""tfxai.evaluate, its result object and the `tfxai evaluate` command."""

import csv
import io

import keras
import numpy as np
import pytest

import tfxai
from tfxai import cli, metrics
from tfxai.evaluation import DEFAULT_METRICS, METRICS, metric_names


@pytest.fixture(scope="module")
def setup():
    keras.utils.set_random_seed(21)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(2, activation="softmax", name="predictions"),
        ]
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(4, 8, 8, 1)).astype("float32")
    masks = np.zeros((4, 8, 8), bool)
    masks[:, 2:5, 3:6] = True
    return model, x, masks


METHODS = ["gradient", ("lrp.epsilon", {"epsilon": 0.1}), "random"]


@pytest.fixture(scope="module")
def result(setup):
    model, x, masks = setup
    chosen = [
        "morf",
        "lerf",
        "abpc",
        "deletion",
        "insertion",
        "faithfulness_correlation",
        "selectivity",
        "relevance_mass_accuracy",
        "pointing_game",
        "randomisation",
        "random_logit",
        "sparseness",
    ]
    return tfxai.evaluate(model, x, METHODS, chosen, masks=masks, patch_size=2, verbose=0)


@pytest.mark.slow
def test_scores_are_the_metric_functions_on_the_methods_explanations(setup, result):
    model, x, masks = setup
    target = metrics.base.Forward(model).target(x)
    relevance = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.1).analyze(x, neuron_selection=target)
    morf = metrics.region_perturbation(model, x, relevance, target, patch_size=2)
    lerf = metrics.region_perturbation(model, x, relevance, target, order="lerf", patch_size=2)
    expected = {
        "morf": metrics.aopc(morf),
        "lerf": metrics.aopc(lerf),
        "abpc": metrics.abpc(morf, lerf),
        "deletion": metrics.deletion(model, x, relevance, target, patch_size=2),
        "insertion": metrics.insertion(model, x, relevance, target, patch_size=2),
        "selectivity": metrics.selectivity(model, x, relevance, target, patch_size=2),
        "faithfulness_correlation": metrics.faithfulness_correlation(model, x, relevance, target),
        "relevance_mass_accuracy": metrics.relevance_mass_accuracy(relevance, masks),
        "pointing_game": metrics.pointing_game(relevance, masks),
        "sparseness": metrics.sparseness(relevance),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(
            result.scores[("lrp.epsilon", name)], values, rtol=1e-5, atol=1e-6, err_msg=name
        )
        assert result.mean("lrp.epsilon", name) == pytest.approx(np.nanmean(values), abs=1e-6)
    np.testing.assert_allclose(result.curves["lrp.epsilon"]["morf"], morf, rtol=1e-5, atol=1e-6)
    assert list(result.details["gradient"]["randomisation"]) == ["predictions", "conv"]


def test_the_random_baseline_fails_the_sanity_checks_and_real_methods_pass_them(result):
    assert result.mean("random", "randomisation") == pytest.approx(1.0)
    assert result.mean("random", "random_logit") == pytest.approx(1.0)
    assert result.mean("gradient", "randomisation") < 0.9


def test_the_table_csv_and_plot(result, tmp_path):
    table = result.to_markdown(digits=4)
    lines = table.splitlines()
    assert lines[0].startswith("| method | time s | memory MB | morf ↑ | lerf ↓ | abpc ↑ | deletion ↓")
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| gradient", "| lrp.epsilon", "| random"]
    assert f"{result.mean('gradient', 'morf'):.4g}" in lines[2]
    rows = list(csv.DictReader(io.StringIO(result.to_csv(tmp_path / "r.csv"))))
    assert [row["method"] for row in rows] == ["gradient", "lrp.epsilon", "random"]
    assert float(rows[1]["abpc"]) == pytest.approx(result.mean("lrp.epsilon", "abpc"))
    assert (tmp_path / "r.csv").read_text() == result.to_csv()
    assert all(result.seconds[m] > 0 and result.peak_bytes[m] >= 0 for m in result.methods)
    assert result.memory_source in ("allocator", "rss", "maxrss")
    figure = result.plot()
    assert [axis.get_title().split(":")[0] for axis in figure.axes] == [
        "MoRF",
        "LeRF",
        "deletion",
        "insertion",
        "selectivity",
    ]
    assert len(figure.axes[0].lines) == 3


@pytest.mark.slow
def test_defaults_tabular_data_and_a_progress_bar(capsys):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(3)]
    )
    x = np.random.default_rng(1).normal(size=(6, 5)).astype("float32")
    weights = [w.copy() for w in model.get_weights()]
    result = tfxai.evaluate(
        model, x, {"input_t_gradient": {}, "integrated_gradients": {"steps": 8}}, verbose=1
    )
    assert "/" in capsys.readouterr().out  # keras Progbar
    assert result.metrics == list(DEFAULT_METRICS)
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert np.isfinite([result.mean(m, k) for m in result.methods for k in result.metrics]).all()


def test_every_metric_has_a_direction_and_group():
    assert metric_names() == list(METRICS)
    assert {spec.group for spec in METRICS.values()} == {
        "faithfulness",
        "localisation",
        "sanity",
        "robustness",
        "complexity",
    }


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metrics": ["accuracy"]}, "Unknown metric 'accuracy'. Valid names: morf"),
        ({"metrics": ["pointing_game"]}, "needs ground-truth masks"),
        ({"metrics": ["morf"], "masks": np.ones((4, 7, 8))}, r"masks must have shape \(4, 8, 8\)"),
        ({"metrics": ["morf", "morf"]}, "Each metric may appear once"),
        ({"methods": []}, "at least one method"),
        ({"methods": ["gradient", "gradient"]}, "must differ"),
    ],
)
def test_invalid_arguments_are_reported(setup, kwargs, message):
    model, x, _ = setup
    kwargs = {"methods": ["gradient"], **kwargs}
    with pytest.raises(metrics.MetricError, match=message):
        tfxai.evaluate(model, x, verbose=0, **kwargs)


@pytest.mark.slow
def test_the_evaluate_command_writes_markdown_and_csv(setup, tmp_path, capsys):
    model, x, masks = setup
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "data.npz", x=x, y=np.array([0, 1, 1, 0]), masks=masks)
    common = [
        str(tmp_path / "model.keras"),
        str(tmp_path / "data.npz"),
        "--method",
        "gradient",
        "--method",
        "lrp.epsilon:epsilon=0.1",
        "--metric",
        "morf",
        "--metric",
        "pointing_game",
        "--patch-size",
        "4",
    ]
    assert cli.main(["evaluate", *common, "--out", str(tmp_path / "table.md")]) == 0
    printed = capsys.readouterr().out
    written = (tmp_path / "table.md").read_text()
    assert written.splitlines()[0] == "| method | time s | memory MB | morf ↑ | pointing_game ↑ |"
    assert written.strip() in printed and "| lrp.epsilon |" in written
    assert cli.main(["evaluate", *common, "--out", str(tmp_path / "table.csv")]) == 0
    assert (tmp_path / "table.csv").read_text().startswith("method,time_s,memory_mb,morf,pointing_game")
    assert cli.main(["evaluate", *common, "--metric", "nope"]) == 2
    assert "Unknown metric 'nope'" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path / "model.keras"), str(tmp_path / "data.txt")]) == 2
    assert "DATA must be a .npz" in capsys.readouterr().err
