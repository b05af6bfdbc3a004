"""Heatmaps are centred at zero, clipped symmetrically, and grids have one panel per method and sample."""

import numpy as np
import pytest
from matplotlib import colormaps

import tfxai
from tfxai import visualize


def test_zero_relevance_is_the_colormap_centre():
    relevance = np.zeros((4, 5, 3))
    relevance[0, 0, 0] = 1.0
    image = visualize.heatmap(relevance)
    centre = colormaps["bwr"](0.5)[:3]
    np.testing.assert_allclose(image[2, 3], centre)


def test_signs_map_to_opposite_ends_symmetrically():
    relevance = np.array([[2.0, -2.0], [0.5, -0.5]])
    image = visualize.heatmap(relevance, percentile=100)
    np.testing.assert_allclose(image[0, 0], colormaps["bwr"](1.0)[:3])
    np.testing.assert_allclose(image[0, 1], colormaps["bwr"](0.0)[:3])
    np.testing.assert_allclose(image[1, 0], colormaps["bwr"](0.625)[:3])
    np.testing.assert_allclose(image[1, 1], colormaps["bwr"](0.375)[:3])


def test_percentile_clipping_saturates_outliers():
    relevance = np.linspace(-1, 1, 100).reshape(10, 10)
    relevance[0, 0] = 1000.0
    image = visualize.heatmap(relevance, percentile=90)
    top = colormaps["bwr"](1.0)[:3]
    np.testing.assert_allclose(image[0, 0], top)
    assert not np.allclose(image[5, 5], top)


def test_channel_reductions():
    relevance = np.array([[[1.0, -3.0, 2.0]]])
    assert visualize.reduce_channels(relevance, "sum")[0, 0] == 0.0
    assert visualize.reduce_channels(relevance, "abs_sum")[0, 0] == 6.0
    assert visualize.reduce_channels(relevance, "max_norm")[0, 0] == 3.0
    with pytest.raises(ValueError, match="Received"):
        visualize.reduce_channels(relevance, "median")


def test_heatmap_rejects_a_batch():
    with pytest.raises(ValueError, match="one sample"):
        visualize.heatmap(np.zeros((2, 4, 4, 3)))


def test_grid_has_one_panel_per_sample_and_column(tmp_path):
    images = np.random.default_rng(0).uniform(size=(3, 8, 8, 3))
    relevances = {"a": np.ones((3, 8, 8, 3)), "b": -np.ones((3, 8, 8, 3))}
    figure = visualize.plot_grid(images, relevances, titles=["x", "y", "z"])
    assert len(figure.axes) == 3 * 3
    assert [figure.axes[i].get_title() for i in range(3)] == ["input", "a", "b"]
    visualize.save_figure(figure, tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_absolute_heatmap_is_gray_and_ignores_sign():
    relevance = np.array([[2.0, -2.0], [0.0, 1.0]])
    image = visualize.absolute_heatmap(relevance, percentile=100)
    np.testing.assert_allclose(image[0, 0], image[0, 1])
    np.testing.assert_allclose(image[0, 0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(image[1, 0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(image[..., 0], image[..., 2])


def test_overlay_shows_the_image_where_there_is_no_relevance():
    image = np.full((4, 4, 3), 0.5)
    image[0, 0] = [1.0, 0.0, 0.0]
    relevance = np.zeros((4, 4, 3))
    relevance[3, 3, 0] = 1.0
    relevance[2, 2, 0] = -1.0
    picture = visualize.overlay(image, relevance, alpha=1.0, percentile=100)
    assert picture.shape == (4, 4, 3)
    np.testing.assert_allclose(picture[1, 1], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(picture[0, 0], [0.299] * 3)
    np.testing.assert_allclose(picture[3, 3], colormaps["bwr"](1.0)[:3])
    np.testing.assert_allclose(picture[2, 2], colormaps["bwr"](0.0)[:3])
    with pytest.raises(ValueError, match="Received"):
        visualize.overlay(image, np.zeros((5, 5)))
    with pytest.raises(ValueError, match="alpha"):
        visualize.overlay(image, relevance, alpha=2.0)


@pytest.mark.parametrize("kind", ["signed", "absolute", "overlay"])
@pytest.mark.slow
def test_plot_heatmap_has_a_colour_bar_in_relevance_units(kind, tmp_path):
    relevance = np.linspace(-2.0, 2.0, 64).reshape(8, 8)
    image = np.full((8, 8, 3), 0.5) if kind == "overlay" else None
    figure = visualize.plot_heatmap(relevance, image=image, absolute=kind == "absolute", percentile=100)
    bar = figure.axes[-1]
    assert len(figure.axes) == 2
    low, high = sorted(bar.get_ylim())
    assert high == pytest.approx(2.0)
    assert low == pytest.approx(0.0 if kind == "absolute" else -2.0)
    visualize.save_figure(figure, tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 0


def test_grid_colour_bar_is_one_extra_axis():
    images = np.zeros((2, 8, 8, 1))
    figure = visualize.plot_grid(images, {"a": np.ones((2, 8, 8, 1))}, colorbar=True)
    assert len(figure.axes) == 2 * 2 + 1
    assert figure.axes[-1].get_ylabel() == "relevance / clip value"


def test_top_features_orders_by_magnitude():
    relevance = np.array([0.1, -3.0, 2.0, 0.0, -0.5])
    assert visualize.top_features(relevance).tolist() == [1, 2, 4, 0, 3]
    assert visualize.top_features(relevance, top_k=2).tolist() == [1, 2]


def test_feature_bars_show_top_k_with_signs_largest_at_the_top():
    relevance = np.array([0.1, -3.0, 2.0, 0.0, -0.5])
    names = ["a", "b", "c", "d", "e"]
    figure = visualize.plot_feature_bars(relevance, names, values=[1, 2, 3, 4, 5], top_k=3)
    axis = figure.axes[0]
    bars = axis.patches
    labels = [tick.get_text() for tick in axis.get_yticklabels()]
    assert labels == ["e = 5", "c = 3", "b = 2"]
    assert [bar.get_width() for bar in bars] == [-0.5, 2.0, -3.0]
    red, blue = colormaps["bwr"](0.9), colormaps["bwr"](0.1)
    assert [bar.get_facecolor() for bar in bars] == [blue, red, blue]
    with pytest.raises(ValueError, match="one feature name per feature"):
        visualize.plot_feature_bars(relevance, names[:2])
    with pytest.raises(ValueError, match="one sample"):
        visualize.plot_feature_bars(np.zeros((2, 5)))


def test_feature_report_lists_features_values_signs_and_the_sum():
    relevance = np.array([0.5, -1.5, 0.0])
    report = visualize.feature_report(
        relevance, ["income", "debt", "age"], values=[3.2, 7.0, 41.0], top_k=2, explained=-0.75, label="default"
    )
    lines = report.splitlines()
    assert lines[0] == "Top 2 of 3 features explaining 'default':"
    assert lines[2].split() == ["1", "debt", "7", "-1.5000", "75.0%", "against"]
    assert lines[3].split() == ["2", "income", "3.2", "+0.5000", "25.0%", "for"]
    assert "age" not in report
    assert lines[-1] == (
        "sum of relevance over all 3 features: -1.0000; explained output: -0.7500; not attributed: +0.2500"
    )


def test_a_row_scale_shares_one_clip_value_across_the_row():
    rng = np.random.default_rng(0)
    strong = rng.normal(size=(3, 6, 6, 2))
    relevances = {"present": strong, "absent": 0.25 * strong[::-1]}
    own = visualize.clip_values(relevances, "map", percentile=100)
    row = visualize.clip_values(relevances, "row", percentile=100)
    summed = {name: r.sum(axis=-1) for name, r in relevances.items()}  # the default reduce="sum"
    for i in range(3):
        maxima = [np.abs(summed[name][i]).max() for name in relevances]
        np.testing.assert_allclose(own[i], maxima, rtol=1e-12)
        np.testing.assert_allclose(row[i], [max(maxima)] * 2, rtol=1e-12)
    # On the row's scale the weak map's strongest pixel gets the colour of its share of the row's maximum.
    weak = summed["absent"][0]
    pixel = np.unravel_index(np.argmax(np.abs(weak)), weak.shape)
    colour = visualize.heatmap(relevances["absent"][0], limit=row[0, 1])[pixel]
    share = weak[pixel] / row[0, 1]
    np.testing.assert_allclose(colour, colormaps["bwr"](0.5 + 0.5 * share)[:3], atol=1e-6)
    assert abs(share) < 1.0
    np.testing.assert_array_equal(
        visualize.heatmap(strong[1], limit=own[1, 0]), visualize.heatmap(strong[1], percentile=100)
    )


def test_plot_grid_draws_the_scale_it_is_asked_for(monkeypatch):
    drawn = []
    monkeypatch.setattr(visualize.images, "heatmap", lambda r, limit=None, **options: drawn.append(limit) or np.zeros((6, 6, 3)))
    rng = np.random.default_rng(1)
    relevances = {"a": rng.normal(size=(2, 6, 6, 1)), "b": 3.0 * rng.normal(size=(2, 6, 6, 1))}
    images = rng.uniform(size=(2, 6, 6, 3))
    figure = visualize.plot_grid(images, relevances, scale="row", colorbar=True, percentile=100)
    row = visualize.clip_values(relevances, "row", percentile=100)
    assert drawn == [row[0, 0], row[1, 0], row[0, 1], row[1, 1]]
    assert figure.axes[-1].get_ylabel() == "relevance / clip value of the row"
    with pytest.raises(tfxai.ParameterError, match="scale must be one of"):
        visualize.plot_grid(images, relevances, scale="column")
