"""Relevance of sequences: token heatmaps (text, HTML, per generated token) and time-series plots."""

from __future__ import annotations

import html

import numpy as np
from matplotlib.figure import Figure

from tfxai.errors import ParameterError
from tfxai.visualize.scaling import clip_value, rgb


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
        raise ParameterError(
            f"series_plot needs one time per step ({len(values)}). Received shape {times.shape}"
        )
    figure = Figure(figsize=(7.0, 3.2), layout="constrained")
    axis = figure.subplots()
    axis.bar(times, scores, width=0.8, color=rgb(scores / clip_value(scores, percentile), cmap))
    axis.axhline(0.0, color="gray", linewidth=0.8)
    axis.set_xlabel("time step")
    axis.set_ylabel("relevance")
    line = axis.twinx()
    line.plot(times, values, color="black", marker="o", markersize=3, linewidth=1.2)
    line.set_ylabel("value")
    if title:
        axis.set_title(title, fontsize=10)
    return figure


def _token_colours(tokens, relevance, percentile: float, cmap: str) -> np.ndarray:
    values = np.ravel(np.asarray(relevance, dtype=np.float64))
    if len(values) < len(tokens):
        raise ParameterError(
            f"Text pictures need one relevance value per token. Received {len(tokens)} tokens "
            f"and {len(values)} values"
        )
    values = values[: len(tokens)]
    return rgb(values / clip_value(values, percentile), cmap)


def _wrap(tokens: list, width: int):
    """``((column, line) per token, number of lines)`` filling lines of ``width`` characters."""
    positions, column, line = [], 0, 0
    for token in tokens:
        if column and column + len(token) > width:
            column, line = 0, line + 1
        positions.append((column, line))
        column += len(token) + 1
    return positions, line + 1
