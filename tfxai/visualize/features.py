"""Relevance of tabular features: the top features, bar charts and a text report."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from tfxai.errors import ParameterError

FOR_COLOUR, AGAINST_COLOUR = 0.9, 0.1
"""Positions in the colormap of the bars of :func:`plot_feature_bars`."""


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
