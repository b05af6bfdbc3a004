"""The `tfxai demo` command, the synthetic dataset and the CLI wiring."""

import re

import numpy as np
import pytest
from matplotlib.image import imread

from tfxai import cli, datasets, visualize


def test_make_shapes_is_deterministic_and_balanced():
    images, labels = datasets.make_shapes(40, size=24, seed=3)
    again, labels_again = datasets.make_shapes(40, size=24, seed=3)
    other, _ = datasets.make_shapes(40, size=24, seed=4)
    assert images.shape == (40, 24, 24, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert not np.array_equal(images, other)
    assert np.bincount(labels, minlength=4).tolist() == [10, 10, 10, 10]


@pytest.mark.parametrize("n, size", [(-1, 32), (4, 8)])
def test_make_shapes_rejects_bad_arguments(n, size):
    with pytest.raises(ValueError, match="Received"):
        datasets.make_shapes(n, size=size)


@pytest.mark.slow
def test_demo_writes_one_grid_and_one_png_per_method(tmp_path, capsys, monkeypatch):
    figures = []
    save = visualize.save_figure
    monkeypatch.setattr(visualize, "save_figure", lambda figure, path: figures.append(figure) or save(figure, path))
    status = cli.main(["demo", "--output", str(tmp_path), "--epochs", "1", "--samples", "300"])
    assert status == 0
    rows = 2 * len(datasets.SHAPE_CLASSES)
    assert [len(f.axes) for f in figures] == [rows * (1 + len(cli.DEMO_METHODS)) + 1] + [rows * 2 + 1] * 8
    assert all(f.axes[-1].get_ylabel() == "relevance / clip value" for f in figures)  # the colour bar
    grid = imread(tmp_path / "heatmaps.png")
    single = imread(tmp_path / "lrp_epsilon.png")
    assert grid.ndim == 3 and grid.shape[1] > 2 * single.shape[1]
    for name in cli.DEMO_METHODS:
        assert (tmp_path / f"{name.replace('.', '_')}.png").is_file()
    out = capsys.readouterr().out
    assert "test accuracy" in out and "heatmaps.png" in out
    header = next(line for line in out.splitlines() if line.startswith("| method |"))
    assert all(metric in header for metric in cli.DEMO_METRICS)
    assert all(f"| {name} |" in out for name in cli.DEMO_METHODS)
    assert re.search(r"^lrp.epsilon conservation: .* 0 would be exact conservation\.$", out, re.M)


def test_the_demo_explains_its_conservation_figure_in_one_sentence():
    sentence = cli.conservation_sentence(np.array([-1.0, -2.0, -4.0]), np.array([10.0, 10.0, -10.0]))
    assert sentence == (
        "lrp.epsilon conservation: the pixel relevance adds up to the explained logit minus -2 (median over "
        "samples; 20% of the logit), the relevance that the biases and the epsilon stabiliser take (negative "
        "when the biases take negative relevance); 0 would be exact conservation."
    )


def test_cli_lists_its_subcommands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(command in out for command in ("demo", "check", "export", "evaluate"))
