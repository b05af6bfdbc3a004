"""The result of :func:`tfxai.evaluate`: scores per method and metric, costs, curves; tables and plots."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
from matplotlib.figure import Figure

from tfxai.errors import ParameterError

CURVE_TITLES = {
    "morf": "MoRF: most relevant removed first",
    "lerf": "LeRF: least relevant removed first",
    "deletion": "deletion",
    "insertion": "insertion",
    "selectivity": "selectivity",
}


class Evaluation:
    """Scores of several explanation methods on one batch.

    Attributes
    ----------
    methods : list of str
        Method labels, in the order they were evaluated.
    metrics : list of str
        Metric names, in table order.
    scores : dict
        ``(method, metric) -> (n,)`` per-sample scores (NaN where undefined).
    seconds, peak_bytes : dict
        Method -> wall time of creating the analyzer and explaining the
        batch, and the peak memory growth meanwhile (see
        :class:`tfxai.metrics.resources.Meter`; ``memory_source`` says how
        it was measured).
    curves : dict
        Method -> curve kind -> ``(n, steps + 1)`` perturbation curve.
    details : dict
        Method -> extra results (``"randomisation"``: layer -> similarity).
    """

    def __init__(self, metrics, specs, samples: int):
        self.metrics = list(metrics)
        self._specs = dict(specs)
        self.samples = samples
        self.methods, self.scores, self.seconds, self.peak_bytes = [], {}, {}, {}
        self.curves, self.details, self.memory_source = {}, {}, None

    def add_method(self, method: str, seconds: float, peak_bytes: int, source: str) -> None:
        """Record a method's cost (used by :func:`tfxai.evaluate`)."""
        self.methods.append(method)
        self.seconds[method], self.peak_bytes[method] = float(seconds), int(peak_bytes)
        self.memory_source = source

    def add_score(self, method: str, metric: str, values: np.ndarray) -> None:
        """Record a metric's per-sample scores for a method."""
        self.scores[(method, metric)] = values

    def mean(self, method: str, metric: str) -> float:
        """Mean over the samples where the metric is defined (NaN if none)."""
        values = self.scores[(method, metric)]
        finite = values[np.isfinite(values)]
        return float(finite.mean()) if finite.size else math.nan

    def higher_is_better(self, metric: str) -> bool:
        """Whether larger values of ``metric`` are better."""
        return self._specs[metric].higher_is_better

    def group(self, metric: str) -> str:
        """The family of ``metric``: faithfulness, localisation, sanity, robustness or complexity."""
        return self._specs[metric].group

    def rows(self, metrics=None) -> list:
        """One dict per method: ``method``, ``time_s``, ``memory_mb`` and the mean of each metric."""
        metrics = self.metrics if metrics is None else list(metrics)
        return [
            {
                "method": method,
                "time_s": self.seconds[method],
                "memory_mb": self.peak_bytes[method] / 2**20,
                **{metric: self.mean(method, metric) for metric in metrics},
            }
            for method in self.methods
        ]

    def to_markdown(self, metrics=None, digits: int = 3) -> str:
        """A Markdown table: one row per method; metric columns marked ``↑`` (higher is better) or ``↓``.

        Parameters
        ----------
        metrics : list of str, optional
            Columns to show (default all, in evaluation order).
        digits : int
            Significant digits of the metric values.
        """
        metrics = self.metrics if metrics is None else list(metrics)
        header = ["method", "time s", "memory MB"] + [
            f"{metric} {'↑' if self.higher_is_better(metric) else '↓'}" for metric in metrics
        ]
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        ]
        for row in self.rows(metrics):
            cells = [row["method"], f"{row['time_s']:.2f}", f"{row['memory_mb']:.3g}"]
            cells += [_number(row[metric], digits) for metric in metrics]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_csv(self, path=None) -> str:
        """The table of :meth:`rows` as CSV (full precision); also written to ``path`` when given."""
        buffer = io.StringIO()
        fields = ["method", "time_s", "memory_mb"] + self.metrics
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        text = buffer.getvalue()
        if path is not None:
            with open(path, "w", newline="") as handle:
                handle.write(text)
        return text

    def plot(self, kinds=None) -> Figure:
        """Mean perturbation curves per method, one panel per curve kind (MoRF, LeRF, deletion, insertion).

        Parameters
        ----------
        kinds : list of str, optional
            Curve kinds to draw (default: every kind that was computed).

        Returns
        -------
        matplotlib.figure.Figure
        """
        present = [k for k in CURVE_TITLES if any(k in self.curves.get(m, {}) for m in self.methods)]
        kinds = present if kinds is None else [k for k in kinds if k in present]
        if not kinds:
            raise ParameterError(
                "No perturbation curves to plot: evaluate a morf, lerf, deletion or insertion metric."
            )
        figure = Figure(figsize=(4.2 * len(kinds), 3.4), layout="constrained")
        for axis, kind in zip(figure.subplots(1, len(kinds), squeeze=False)[0], kinds):
            for method in self.methods:
                curve = self.curves[method].get(kind)
                if curve is not None:
                    axis.plot(np.linspace(0, 1, curve.shape[1]), curve.mean(axis=0), label=method)
            axis.set_title(CURVE_TITLES[kind], fontsize=9)
            axis.set_xlabel("fraction of regions " + ("inserted" if kind == "insertion" else "removed"))
            axis.set_ylabel("explained output (mean)")
        figure.axes[-1].legend(fontsize=7)
        return figure

    def __repr__(self):
        return (
            f"Evaluation({len(self.methods)} methods x {len(self.metrics)} metrics on {self.samples} samples)"
        )

    def __str__(self):
        return self.to_markdown()


def _number(value: float, digits: int) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.{digits}g}"
