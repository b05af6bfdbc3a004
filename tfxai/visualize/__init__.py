"""Turn relevance into pictures and tables: heatmaps, grids, feature bars, text and series.

Uses NumPy and matplotlib only. Figures are built with
:class:`matplotlib.figure.Figure` rather than ``pyplot``, so they work under
any backend (including headless ``Agg``), never open a window and are freed
like ordinary objects. Signed pictures use a diverging colormap centred at
zero: red is evidence for the explained output, blue against, white none.

The functions live in :mod:`~tfxai.visualize.images` (heatmaps, overlays,
grids, saving), :mod:`~tfxai.visualize.features` (tabular features),
:mod:`~tfxai.visualize.sequences` (tokens and time series) and
:mod:`~tfxai.visualize.scaling` (the shared channel reductions, clip values
and colours); all are importable from ``tfxai.visualize``.
"""

from __future__ import annotations

from tfxai.visualize.features import (
    AGAINST_COLOUR,
    FOR_COLOUR,
    feature_report,
    plot_feature_bars,
    top_features,
)
from tfxai.visualize.images import (
    LUMINANCE,
    SCALES,
    absolute_heatmap,
    clip_values,
    heatmap,
    overlay,
    plot_grid,
    plot_heatmap,
    save_figure,
)
from tfxai.visualize.scaling import REDUCTIONS, reduce_channels
from tfxai.visualize.sequences import generation_heatmap, series_plot, text_heatmap, text_html

__all__ = [
    "AGAINST_COLOUR",
    "FOR_COLOUR",
    "LUMINANCE",
    "REDUCTIONS",
    "SCALES",
    "absolute_heatmap",
    "clip_values",
    "feature_report",
    "generation_heatmap",
    "heatmap",
    "overlay",
    "plot_feature_bars",
    "plot_grid",
    "plot_heatmap",
    "reduce_channels",
    "save_figure",
    "series_plot",
    "text_heatmap",
    "text_html",
    "top_features",
]
