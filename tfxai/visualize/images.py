"""Pictures of image relevance: heatmaps, overlays, grids of methods, and saving any figure."""

from __future__ import annotations

import os

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from tfxai.errors import ParameterError
from tfxai.visualize.scaling import clip_value, relevance_map, rgb

LUMINANCE = np.array([0.299, 0.587, 0.114])
"""RGB weights of the grayscale copy under an :func:`overlay` (ITU-R BT.601)."""


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
    values = relevance_map(relevance, reduce, "heatmap")
    if limit is None:
        limit = clip_value(values, percentile)
    elif not limit > 0:
        raise ParameterError(f"limit must be a clip value > 0. Received: limit={limit!r}")
    return rgb(values / limit, cmap)


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
    maps = [[relevance_map(sample, reduce, "plot_grid") for sample in r] for r in relevances.values()]
    if scale == "map":
        return np.array([[clip_value(m, percentile) for m in column] for column in maps], dtype=np.float64).T
    rows = [clip_value(np.concatenate([m.ravel() for m in row]), percentile) for row in zip(*maps)]
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
    values = np.abs(relevance_map(relevance, reduce, "absolute_heatmap"))
    gray = np.clip(values / clip_value(values, percentile), 0.0, 1.0)
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
    values = relevance_map(relevance, reduce, "overlay")
    gray = _grayscale(image)
    if gray.shape != values.shape:
        raise ParameterError(
            "overlay needs an image and relevance of the same height and width. "
            f"Received: image {np.shape(image)}, relevance {np.shape(relevance)}"
        )
    scaled = np.clip(values / clip_value(values, percentile), -1.0, 1.0)
    opacity = alpha * np.abs(scaled)[..., None]
    return ((1.0 - opacity) * gray[..., None] + opacity * rgb(scaled, cmap)).astype(np.float32)


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
        raise ParameterError(
            "plot_heatmap overlays signed maps only; pass absolute=True or image=, not both."
        )
    values = relevance_map(relevance, reduce or ("abs_sum" if absolute else "sum"), "plot_heatmap")
    if absolute:
        values = np.abs(values)
        picture, low, bar_cmap = absolute_heatmap(values, percentile=percentile), 0.0, "gray"
    elif image is not None:
        picture, low, bar_cmap = overlay(image, values, percentile=percentile, cmap=cmap), None, cmap
    else:
        picture, low, bar_cmap = heatmap(values, percentile=percentile, cmap=cmap), None, cmap
    limit = clip_value(values, percentile)
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
    options = {
        "reduce": heatmap_options.get("reduce", "sum"),
        "percentile": heatmap_options.get("percentile", 99.5),
    }
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
            mappable,
            ax=axes,
            shrink=min(0.9, 4.0 / n),
            aspect=30,
            label="relevance / clip value" + (" of the row" if scale == "row" else ""),
        )
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
