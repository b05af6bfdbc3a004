"""Turn relevance into pictures and tables: heatmaps, grids, feature bars, text and series.

Uses NumPy and matplotlib only. Figures are built with
:class:`matplotlib.figure.Figure` rather than ``pyplot``, so they work under
any backend (including headless ``Agg``), never open a window and are freed
like ordinary objects. Signed pictures use a diverging colormap centred at
zero: red is evidence for the explained output, blue against, white none.
"""

from __future__ import annotations

import html
import os

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from tfxai.errors import ParameterError

REDUCTIONS = {
    "sum": lambda r: r.sum(axis=-1),
    "abs_sum": lambda r: np.abs(r).sum(axis=-1),
    "max_norm": lambda r: np.abs(r).max(axis=-1),
}
"""Channel reductions: signed sum, sum of magnitudes, largest magnitude (L-infinity norm)."""

LUMINANCE = np.array([0.299, 0.587, 0.114])
"""RGB weights of the grayscale copy under an :func:`overlay` (ITU-R BT.601)."""

FOR_COLOUR, AGAINST_COLOUR = 0.9, 0.1
"""Positions in the colormap of the bars of :func:`plot_feature_bars`."""


def reduce_channels(relevance, reduce: str = "sum") -> np.ndarray:
    """Combine the last (channel) axis of ``relevance``.

    Parameters
    ----------
    relevance : array-like
        Any shape; the last axis is reduced.
    reduce : {"sum", "abs_sum", "max_norm"}
        The signed sum (keeps LRP's conservation), the sum of absolute values,
        or the largest absolute value.

    Returns
    -------
    numpy.ndarray
        float64, ``relevance.shape[:-1]``.
    """
    _check_reduce(reduce)
    return REDUCTIONS[reduce](np.asarray(relevance, dtype=np.float64))


def heatmap(
    relevance, reduce: str = "sum", percentile: float = 99.5, cmap: str = "bwr", limit: float | None = None
) -> np.ndarray:
    """Colour one relevance map with a diverging colormap centred at zero.

    Channels are reduced, the map is divided by the ``percentile``-th
    percentile of its absolute values (its clip value) and clipped to
    [-1, 1], so positive and negative relevance share one symmetric scale
    and a few extreme pixels do not wash out the rest.

    Parameters
    ----------
    relevance : array-like
        One sample: ``(H, W)`` (used as is) or ``(H, W, C)``.
    reduce : {"sum", "abs_sum", "max_norm"}
        Channel reduction, see :func:`reduce_channels`.
    percentile : float
        Percentile in (0, 100] of ``|relevance|`` mapped to the ends of the colormap.
    cmap : str
        A diverging matplotlib colormap, e.g. ``"bwr"`` or ``"seismic"``.
    limit : float, optional
        The clip value to use instead of the percentile (``> 0``): give
        several maps the same one to draw them on a shared scale, see
        :func:`clip_values`.

    Returns
    -------
    numpy.ndarray
        float32 RGB in [0, 1], shape ``(H, W, 3)``; zero relevance gets the
        colormap's centre colour.
    """
    values = _relevance_map(relevance, reduce, "heatmap")
    if limit is None:
        limit = _clip_value(values, percentile)
    elif not limit > 0:
        raise ParameterError(f"limit must be a clip value > 0. Received: limit={limit!r}")
    return _colour(values / limit, cmap)


SCALES = ("map", "row")
"""How :func:`plot_grid` scales its maps: each map alone, or one clip value per row."""


def clip_values(relevances: dict, scale: str = "map", reduce: str = "sum", percentile: float = 99.5):
    """The clip value of every map of a grid, shape ``(n samples, n methods)``.

    Parameters
    ----------
    relevances : dict
        Method name -> ``(n, H, W, C)`` (or ``(n, H, W)``) relevance.
    scale : {"map", "row"}
        ``"map"``: each map's own ``percentile`` of ``|relevance|`` (after the
        channel reduction), so every map uses the whole colour range; right
        when the columns are different methods, whose units differ.
        ``"row"``: one value per sample, the percentile over all its maps
        together, so the maps of a row compare in size; right when the
        columns share units, e.g. one method explaining different classes
        (a class that is absent then looks weak, as it is).
    reduce, percentile
        As for :func:`heatmap`.

    Returns
    -------
    numpy.ndarray
        float64; pass ``limit=values[i, j]`` to :func:`heatmap`.
    """
    if scale not in SCALES:
        raise ParameterError(f"scale must be one of {SCALES}. Received: scale={scale!r}")
    maps = [[_relevance_map(sample, reduce, "plot_grid") for sample in r] for r in relevances.values()]
    if scale == "map":
        return np.array([[_clip_value(m, percentile) for m in column] for column in maps], dtype=np.float64).T
    rows = [_clip_value(np.concatenate([m.ravel() for m in row]), percentile) for row in zip(*maps)]
    return np.repeat(np.array(rows)[:, None], len(maps), axis=1)


def absolute_heatmap(relevance, reduce: str = "abs_sum", percentile: float = 99.5) -> np.ndarray:
    """The magnitude of one relevance map in grayscale: black none, white the clip value.

    Suits unsigned methods (gradient magnitude) or showing *where* relevance is.

    Parameters
    ----------
    relevance : array-like
        One sample: ``(H, W)`` or ``(H, W, C)``.
    reduce : {"sum", "abs_sum", "max_norm"}
        Channel reduction, before the absolute value is taken.
    percentile : float
        Percentile in (0, 100] of ``|relevance|`` drawn white.

    Returns
    -------
    numpy.ndarray
        float32 gray RGB in [0, 1], shape ``(H, W, 3)``.
    """
    values = np.abs(_relevance_map(relevance, reduce, "absolute_heatmap"))
    gray = np.clip(values / _clip_value(values, percentile), 0.0, 1.0)
    return np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)


def overlay(
    image, relevance, alpha: float = 0.8, reduce: str = "sum", percentile: float = 99.5, cmap: str = "bwr"
):
    """A signed heatmap over a grayscale copy of the input.

    Each pixel blends the image's gray value with the heatmap colour, with
    opacity ``alpha * |relevance| / clip value``: the image shows where there
    is no relevance, the colour where there is most.

    Parameters
    ----------
    image : array-like
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; values outside [0, 1]
        are rescaled.
    relevance : array-like
        ``(H, W)`` or ``(H, W, C)`` relevance of ``image``.
    alpha : float
        Opacity in [0, 1] of the colour at the clip value.
    reduce, percentile, cmap
        As for :func:`heatmap`.

    Returns
    -------
    numpy.ndarray
        float32 RGB in [0, 1], shape ``(H, W, 3)``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"alpha must be in [0, 1]. Received: alpha={alpha}")
    values = _relevance_map(relevance, reduce, "overlay")
    gray = _grayscale(image)
    if gray.shape != values.shape:
        raise ParameterError(
            "overlay needs an image and relevance of the same height and width. "
            f"Received: image {np.shape(image)}, relevance {np.shape(relevance)}"
        )
    scaled = np.clip(values / _clip_value(values, percentile), -1.0, 1.0)
    opacity = alpha * np.abs(scaled)[..., None]
    return ((1.0 - opacity) * gray[..., None] + opacity * _colour(scaled, cmap)).astype(np.float32)


def plot_heatmap(
    relevance,
    image=None,
    absolute: bool = False,
    reduce: str | None = None,
    percentile: float = 99.5,
    title: str | None = None,
    cmap: str = "bwr",
) -> Figure:
    """One relevance map as a figure, with a colour bar in relevance units.

    Parameters
    ----------
    relevance : array-like
        One sample: ``(H, W)`` or ``(H, W, C)``.
    image : array-like, optional
        The input; when given, the map is drawn with :func:`overlay`.
    absolute : bool
        Draw the magnitude with :func:`absolute_heatmap` (not with ``image``).
    reduce : {"sum", "abs_sum", "max_norm"}, optional
        Channel reduction; default ``"abs_sum"`` when ``absolute``, else ``"sum"``.
    percentile : float
        Clip percentile of ``|relevance|``, see :func:`heatmap`.
    title : str, optional
    cmap : str
        Diverging colormap of signed maps.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the picture and its colour bar.
    """
    if absolute and image is not None:
        raise ParameterError("plot_heatmap overlays signed maps only; pass absolute=True or image=, not both.")
    values = _relevance_map(relevance, reduce or ("abs_sum" if absolute else "sum"), "plot_heatmap")
    if absolute:
        values = np.abs(values)
        picture, low, bar_cmap = absolute_heatmap(values, percentile=percentile), 0.0, "gray"
    elif image is not None:
        picture, low, bar_cmap = overlay(image, values, percentile=percentile, cmap=cmap), None, cmap
    else:
        picture, low, bar_cmap = heatmap(values, percentile=percentile, cmap=cmap), None, cmap
    limit = _clip_value(values, percentile)
    figure = Figure(figsize=(4.0, 3.2), layout="constrained")
    axis = figure.subplots()
    _show(axis, picture)
    if title:
        axis.set_title(title, fontsize=10)
    mappable = ScalarMappable(Normalize(-limit if low is None else low, limit), colormaps[bar_cmap])
    figure.colorbar(mappable, ax=axis, shrink=0.85, label="relevance")
    return figure


def plot_grid(
    images, relevances: dict, titles=None, colorbar: bool = False, scale: str = "map", **heatmap_options
) -> Figure:
    """A figure comparing explanations: one row per sample, the input and one column per method.

    Parameters
    ----------
    images : array-like
        ``(n, H, W, C)`` inputs with ``C`` 1 or 3, shown in the first column;
        values outside [0, 1] are rescaled per image.
    relevances : dict
        Method name -> ``(n, H, W, C)`` relevance; one column each, titled by
        the name, in the dict's order.
    titles : sequence of str, optional
        One label per sample, shown to the left of its row.
    colorbar : bool
        Add one colour bar for all maps, in units of each map's clip value
        (of its row's, with ``scale="row"``).
    scale : {"map", "row"}
        Each map on its own scale (default; for columns of different
        methods), or one scale per row (for columns in the same units, such
        as one method explaining several classes); see :func:`clip_values`.
    **heatmap_options
        Passed to :func:`heatmap` (``reduce``, ``percentile``, ``cmap``).

    Returns
    -------
    matplotlib.figure.Figure
        ``n * (1 + len(relevances))`` axes in row order, plus the colour bar's.
    """
    images = np.asarray(images)
    n = len(images)
    if titles is not None and len(titles) != n:
        raise ParameterError(f"plot_grid needs one title per sample ({n}). Received {len(titles)} titles")
    for name, relevance in relevances.items():
        if np.shape(relevance)[:1] != (n,):
            raise ParameterError(
                f"Relevance {name!r} must hold one map per image ({n}). Received shape {np.shape(relevance)}"
            )
    options = {"reduce": heatmap_options.get("reduce", "sum"), "percentile": heatmap_options.get("percentile", 99.5)}
    limits = clip_values(relevances, scale, **options)
    columns = {"input": [_displayable(image) for image in images]}
    for col, (name, relevance) in enumerate(relevances.items()):
        columns[name] = [heatmap(r, **heatmap_options, limit=limits[i, col]) for i, r in enumerate(relevance)]
    width = 1.75 * len(columns) + (1.0 if colorbar else 0.0)
    figure = Figure(figsize=(width, 1.75 * n + 0.45), layout="constrained")
    axes = figure.subplots(n, len(columns), squeeze=False)
    for col, (name, pictures) in enumerate(columns.items()):
        axes[0, col].set_title(name, fontsize=9)
        for row, picture in enumerate(pictures):
            _show(axes[row, col], picture)
    for row, title in enumerate(titles or ()):
        axes[row, 0].set_ylabel(title, fontsize=9)
    if colorbar:
        mappable = ScalarMappable(Normalize(-1.0, 1.0), colormaps[heatmap_options.get("cmap", "bwr")])
        figure.colorbar(
            mappable, ax=axes, shrink=min(0.9, 4.0 / n), aspect=30, label="relevance / clip value" + (" of the row" if scale == "row" else "")
        )
    return figure


def top_features(relevance, top_k: int | None = None) -> np.ndarray:
    """Feature indices by decreasing ``|relevance|`` (ties keep their order).

    Parameters
    ----------
    relevance : array-like
        One value per feature, shape ``(n_features,)``.
    top_k : int, optional
        Keep only the first ``top_k``.

    Returns
    -------
    numpy.ndarray
        int indices.
    """
    values = _feature_values(relevance, "top_features")
    return np.argsort(-np.abs(values), kind="stable")[:top_k]


def plot_feature_bars(relevance, names=None, values=None, top_k: int | None = None, title: str | None = None):
    """Horizontal bars of one sample's feature relevance, the most relevant at the top.

    Parameters
    ----------
    relevance : array-like
        Shape ``(n_features,)``.
    names : sequence of str, optional
        One name per feature (default ``feature 0``, ``feature 1``, ...).
    values : array-like, optional
        The sample's feature values, shown as ``name = value``.
    top_k : int, optional
        Show only the ``top_k`` most relevant features.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axis; red bars are evidence for the explained output, blue against.
    """
    scores = _feature_values(relevance, "plot_feature_bars")
    labels = _feature_labels(len(scores), names, values)
    order = top_features(scores, top_k)[::-1]
    colours = [colormaps["bwr"](FOR_COLOUR if scores[i] >= 0 else AGAINST_COLOUR) for i in order]
    figure = Figure(figsize=(6.6, 1.0 + 0.4 * len(order)), layout="constrained")
    axis = figure.subplots()
    axis.barh(np.arange(len(order)), scores[order], color=colours)
    axis.set_yticks(np.arange(len(order)), [labels[i] for i in order], fontsize=9)
    axis.axvline(0.0, color="black", linewidth=1)
    axis.set_xlabel("relevance (red: for, blue: against)")
    if title:
        axis.set_title(title, fontsize=10)
    return figure


def feature_report(relevance, names=None, values=None, top_k: int = 10, explained=None, label=None) -> str:
    """A plain-text table of one sample's most relevant features.

    Parameters
    ----------
    relevance : array-like
        Shape ``(n_features,)``.
    names : sequence of str, optional
        One name per feature.
    values : array-like, optional
        The sample's feature values.
    top_k : int
        Number of rows.
    explained : float, optional
        The explained output (e.g. the logit: ``relevance.sum() + delta``);
        the last line then says how much of it the features do not account for.
    label : str, optional
        Name of the explained output, for the heading.

    Returns
    -------
    str
        Heading, one row per feature (rank, name, value, signed relevance,
        share of the total ``|relevance|``, for/against) and the summed relevance.
    """
    scores = _feature_values(relevance, "feature_report")
    names = list(names) if names is not None else [f"feature {i}" for i in range(len(scores))]
    _check_names(names, len(scores), "feature_report")
    order = top_features(scores, top_k)
    total = np.abs(scores).sum()
    width = max(7, *(len(names[i]) for i in order)) + 2
    explaining = f" explaining {label!r}" if label is not None else ""
    lines = [
        f"Top {len(order)} of {len(scores)} features{explaining}:",
        f"{'rank':>4s}  {'feature':<{width}s}{'value':>9s}{'relevance':>12s}{'share':>8s}",
    ]
    for rank, i in enumerate(order, start=1):
        value = "" if values is None else f"{float(np.ravel(values)[i]):.3g}"
        share = abs(scores[i]) / total if total > 0 else 0.0
        side = "for" if scores[i] > 0 else "against" if scores[i] < 0 else "none"
        lines.append(f"{rank:4d}  {names[i]:<{width}s}{value:>9s}{scores[i]:+12.4f}{share:8.1%}  {side}")
    summary = f"sum of relevance over all {len(scores)} features: {scores.sum():+.4f}"
    if explained is not None:
        summary += f"; explained output: {float(explained):+.4f}; not attributed: {float(explained) - scores.sum():+.4f}"
    return "\n".join(lines + [summary])


def text_heatmap(tokens, relevance, percentile: float = 99.5, cmap: str = "bwr", width: int = 60) -> Figure:
    """Tokens on coloured boxes, wrapped into lines, as a figure.

    Parameters
    ----------
    tokens : sequence of str
    relevance : array-like
        One value per token, shape ``(n_tokens,)``; extra trailing values
        (padding) are ignored.
    percentile, cmap
        As for :func:`heatmap`.
    width : int
        Characters per line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    colours = _token_colours(tokens, relevance, percentile, cmap)
    positions, lines = _wrap([str(token) for token in tokens], width)
    figure = Figure(figsize=(0.1 * width + 0.4, 0.35 * lines + 0.2))
    axis = figure.add_axes((0, 0, 1, 1))
    axis.set_xlim(-1, width + 1)
    axis.set_ylim(lines, -0.5)
    axis.axis("off")
    for token, (column, line), colour in zip(tokens, positions, colours):
        box = {"facecolor": colour, "edgecolor": "none", "boxstyle": "round,pad=0.2"}
        axis.text(column, line + 0.25, str(token), family="monospace", fontsize=11, bbox=box)
    return figure


def text_html(tokens, relevance, percentile: float = 99.5, cmap: str = "bwr") -> str:
    """Tokens as HTML ``<span>`` elements with relevance-coloured backgrounds.

    Tokens are escaped; each span's ``title`` holds its relevance.

    Parameters
    ----------
    tokens : sequence of str
    relevance : array-like
        One value per token; extra trailing values (padding) are ignored.
    percentile, cmap
        As for :func:`heatmap`.

    Returns
    -------
    str
        A ``<div>`` for a notebook (``IPython.display.HTML``) or a web page.
    """
    colours = _token_colours(tokens, relevance, percentile, cmap)
    values = np.ravel(relevance)
    spans = [
        f'<span style="background-color: rgb({r * 255:.0f}, {g * 255:.0f}, {b * 255:.0f}); padding: 1px 3px; '
        f'border-radius: 3px" title="{value:+.4g}">{html.escape(str(token))}</span>'
        for token, (r, g, b), value in zip(tokens, colours, values)
    ]
    return '<div style="line-height: 1.9">' + " ".join(spans) + "</div>"


def generation_heatmap(tokens, generated, relevance, percentile: float = 99.5, cmap: str = "bwr") -> Figure:
    """Relevance of the context tokens for each generated token of a causal language model, as a grid.

    Row ``i`` shows, for the ``i``-th generated token, the relevance of every
    token of the sequence it was predicted from (``tokens[: n_i]``); each row
    is scaled on its own (its ``percentile`` of absolute values), since the
    explained logits differ. Positions a row's prediction could not see are
    left blank.

    Parameters
    ----------
    tokens : sequence of str
        The whole sequence: prompt followed by the generated tokens.
    generated : sequence of str
        The generated tokens, one per row (the last ``len(generated)`` of ``tokens``).
    relevance : array-like
        Shape ``(len(generated), len(tokens))``; row ``i`` is the explanation of
        ``generated[i]``, non-zero only before that token's position.
    percentile, cmap
        As for :func:`heatmap`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = np.asarray(relevance, dtype=np.float64)
    if values.shape != (len(generated), len(tokens)):
        raise ParameterError(
            "generation_heatmap expects relevance of shape (len(generated), len(tokens)) = "
            f"({len(generated)}, {len(tokens)}). Received: {values.shape}"
        )
    first = len(tokens) - len(generated)
    grid = np.ones(values.shape + (3,))
    for row, scores in enumerate(values):
        seen = first + row
        grid[row, :seen] = _token_colours(tokens[:seen], scores[:seen], percentile, cmap)
    figure = Figure(figsize=(0.6 * len(tokens) + 1.5, 0.4 * len(generated) + 1.2))
    axis = figure.add_subplot()
    axis.imshow(grid, aspect="auto")
    axis.set_xticks(range(len(tokens)), [str(t) for t in tokens], rotation=90, family="monospace")
    axis.set_yticks(range(len(generated)), [f"-> {g}" for g in generated], family="monospace")
    axis.set_xlabel("context token")
    axis.set_ylabel("generated token")
    figure.tight_layout()
    return figure


def series_plot(
    series, relevance, times=None, percentile: float = 99.5, cmap: str = "bwr", title=None
) -> Figure:
    """One time series as a line over bars of its per-step relevance.

    Parameters
    ----------
    series : array-like
        Shape ``(T,)`` or ``(T, 1)``: one feature of one sample.
    relevance : array-like
        Its relevance, the same shape.
    times : array-like, optional
        The x position of each step (default ``0 .. T-1``), e.g. negative lags.
    percentile, cmap
        Bar colours, as for :func:`heatmap`.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Relevance bars (left axis) and the series (right axis).
    """
    values, scores = np.asarray(series, dtype=np.float64), np.asarray(relevance, dtype=np.float64)
    if values.shape != scores.shape:
        raise ParameterError(
            f"series_plot needs series and relevance of the same shape. Received: {values.shape} and {scores.shape}"
        )
    if values.ndim == 2 and values.shape[1] == 1:
        values, scores = values[:, 0], scores[:, 0]
    if values.ndim != 1:
        raise ParameterError(
            f"series_plot draws one feature: shape (T,) or (T, 1). Received shape {values.shape}"
        )
    times = np.arange(len(values)) if times is None else np.asarray(times)
    if times.shape != values.shape:
        raise ParameterError(f"series_plot needs one time per step ({len(values)}). Received shape {times.shape}")
    figure = Figure(figsize=(7.0, 3.2), layout="constrained")
    axis = figure.subplots()
    axis.bar(times, scores, width=0.8, color=_colour(scores / _clip_value(scores, percentile), cmap))
    axis.axhline(0.0, color="gray", linewidth=0.8)
    axis.set_xlabel("time step")
    axis.set_ylabel("relevance")
    line = axis.twinx()
    line.plot(times, values, color="black", marker="o", markersize=3, linewidth=1.2)
    line.set_ylabel("value")
    if title:
        axis.set_title(title, fontsize=10)
    return figure


def save_figure(figure: Figure, path, dpi: int = 100) -> str:
    """Write ``figure`` to ``path`` (format from the extension), creating folders.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    path : str or os.PathLike
    dpi : int
        Resolution of raster formats.

    Returns
    -------
    str
        The path written.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


def _relevance_map(relevance, reduce: str, caller: str) -> np.ndarray:
    """One sample's 2-D map: ``(H, W)`` as is, ``(H, W, C)`` reduced over channels."""
    values = np.asarray(relevance, dtype=np.float64)
    if values.ndim not in (2, 3):
        raise ParameterError(
            f"{caller} draws one sample: relevance of shape (H, W) or (H, W, C). Received shape {values.shape}; "
            "pass relevance[i], or plot_grid for a batch."
        )
    _check_reduce(reduce)
    return values if values.ndim == 2 else REDUCTIONS[reduce](values)


def _check_reduce(reduce) -> None:
    if reduce not in REDUCTIONS:
        raise ParameterError(f"reduce must be one of {sorted(REDUCTIONS)}. Received: reduce={reduce!r}")


def _clip_value(values, percentile: float) -> float:
    """The ``percentile``-th percentile of ``|values|`` (1 where it is 0)."""
    if not 0 < percentile <= 100:
        raise ParameterError(f"percentile must be in (0, 100]. Received: percentile={percentile}")
    limit = float(np.percentile(np.abs(values), percentile))
    return limit if limit > 0 else 1.0


def _colour(scaled, cmap: str) -> np.ndarray:
    """RGB of values in [-1, 1] (clipped) on a diverging colormap."""
    return colormaps[cmap]((np.clip(scaled, -1.0, 1.0) + 1.0) / 2.0)[..., :3].astype(np.float32)


def _displayable(image) -> np.ndarray:
    """An image ready for ``imshow``: values in [0, 1], one channel squeezed."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    low, high = image.min(), image.max()
    if low < 0 or high > 1:
        image = (image - low) / (high - low if high > low else 1.0)
    return image


def _grayscale(image) -> np.ndarray:
    """``(H, W)`` gray values in [0, 1] of an ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` image."""
    image = _displayable(image)
    return image @ LUMINANCE if image.ndim == 3 and image.shape[-1] == 3 else image


def _show(axis, picture) -> None:
    axis.imshow(
        picture, cmap="gray" if picture.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest"
    )
    axis.set_xticks([])
    axis.set_yticks([])


def _feature_values(relevance, caller: str) -> np.ndarray:
    values = np.asarray(relevance, dtype=np.float64)
    if values.ndim != 1:
        raise ParameterError(
            f"{caller} shows one sample: relevance of shape (n_features,). Received shape {values.shape}; "
            "pass relevance[i]."
        )
    return values


def _check_names(names, count: int, caller: str) -> None:
    if len(names) != count:
        raise ParameterError(
            f"{caller} needs one feature name per feature ({count}). Received {len(names)} names"
        )


def _feature_labels(count: int, names, values) -> list:
    names = list(names) if names is not None else [f"feature {i}" for i in range(count)]
    _check_names(names, count, "plot_feature_bars")
    if values is None:
        return names
    return [f"{name} = {float(value):.3g}" for name, value in zip(names, np.ravel(values))]


def _token_colours(tokens, relevance, percentile: float, cmap: str) -> np.ndarray:
    values = np.ravel(np.asarray(relevance, dtype=np.float64))
    if len(values) < len(tokens):
        raise ParameterError(
            f"Text pictures need one relevance value per token. Received {len(tokens)} tokens "
            f"and {len(values)} values"
        )
    values = values[: len(tokens)]
    return _colour(values / _clip_value(values, percentile), cmap)


def _wrap(tokens: list, width: int):
    """``((column, line) per token, number of lines)`` filling lines of ``width`` characters."""
    positions, column, line = [], 0, 0
    for token in tokens:
        if column and column + len(token) > width:
            column, line = 0, line + 1
        positions.append((column, line))
        column += len(token) + 1
    return positions, line + 1
