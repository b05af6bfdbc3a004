"""Slow, literal NumPy versions of the metrics of tfxai.metrics: one sample, one region, one step at a time.

Written from the papers' definitions, without vectorisation, so that a
disagreement points at the fast implementation. ``predict(batch)`` is any
function returning the model's outputs as a NumPy ``(n, classes)`` array.
"""

from __future__ import annotations

import math

import numpy as np


def patches(shape, patch):
    """Row-major list of the regions of one sample: each a list of position tuples (channels excluded)."""
    grid = [size // patch for size in shape]
    regions = []
    for cell in np.ndindex(*grid):
        positions = []
        for offset in np.ndindex(*([patch] * len(shape))):
            positions.append(tuple(c * patch + o for c, o in zip(cell, offset)))
        regions.append(positions)
    return regions


def position_shape(x):
    return x.shape[1:-1] if x.ndim >= 3 else x.shape[1:]


def region_relevance(relevance_i, regions):
    """Sum of one sample's relevance over each region (all channels)."""
    return [sum(float(np.sum(relevance_i[p])) for p in region) for region in regions]


def removal_order(scores, order):
    """Region indices, most relevant first (morf) or least first (lerf); ties by index."""
    indices = list(range(len(scores)))
    return sorted(indices, key=lambda r: (-scores[r] if order == "morf" else scores[r], r))


def perturbation_curve(predict, x, relevance, target, patch, steps, baseline, order="morf"):
    """``curve[i][k]``: output after the first round(k R / steps) regions of sample i got ``baseline``."""
    regions = patches(position_shape(x), patch)
    curve = np.zeros((len(x), steps + 1))
    for i in range(len(x)):
        ranked = removal_order(region_relevance(relevance[i], regions), order)
        for k in range(steps + 1):
            removed = int(np.round(k * len(regions) / steps))
            copy = x[i].copy()
            for r in ranked[:removed]:
                for p in regions[r]:
                    copy[p] = baseline[i][p]
            curve[i, k] = predict(copy[None])[0, target[i]]
    return curve


def insertion_curve(predict, x, relevance, target, patch, steps, baseline):
    """Start from ``baseline`` and put back the most relevant regions of ``x`` first."""
    regions = patches(position_shape(x), patch)
    curve = np.zeros((len(x), steps + 1))
    for i in range(len(x)):
        ranked = removal_order(region_relevance(relevance[i], regions), "morf")
        for k in range(steps + 1):
            restored = int(np.round(k * len(regions) / steps))
            copy = baseline[i].copy()
            for r in ranked[:restored]:
                for p in regions[r]:
                    copy[p] = x[i][p]
            curve[i, k] = predict(copy[None])[0, target[i]]
    return curve


def aopc(curve):
    """Samek et al. 2017, eq. 12: (1 / (L + 1)) sum_k (f(x^0) - f(x^k))."""
    return np.array([sum(row[0] - value for value in row) / len(row) for row in curve])


def auc(curve):
    """Trapezoids over the fraction axis from 0 to 1."""
    out = []
    for row in curve:
        width = 1.0 / (len(row) - 1)
        out.append(sum((row[k] + row[k + 1]) / 2 * width for k in range(len(row) - 1)))
    return np.array(out)


def faithfulness_correlation(predict, x, relevance, target, subset_ranks, size, baseline):
    """Bhatt et al. 2020 with given subsets: subset s of sample i = regions whose rank is below ``size``."""
    regions = patches(position_shape(x), 1)
    scores = []
    for i in range(len(x)):
        sums, drops = [], []
        full = predict(x[i][None])[0, target[i]]
        for s in range(len(subset_ranks)):
            chosen = [r for r in range(len(regions)) if subset_ranks[s][i][r] < size]
            copy = x[i].copy()
            total = 0.0
            for r in chosen:
                for p in regions[r]:
                    copy[p] = baseline[i][p]
                    total += float(np.sum(relevance[i][p]))
            sums.append(total)
            drops.append(full - predict(copy[None])[0, target[i]])
        scores.append(np.corrcoef(sums, drops)[0, 1])
    return np.array(scores)


def channel_map(relevance_i):
    return relevance_i.sum(axis=-1) if relevance_i.ndim >= 2 else relevance_i


def relevance_mass_accuracy(relevance, masks):
    """Positive relevance inside the mask over all positive relevance, per sample."""
    out = []
    for r, m in zip(relevance, masks):
        values = np.maximum(channel_map(r), 0).ravel()
        inside = sum(v for v, g in zip(values, m.ravel()) if g)
        out.append(inside / values.sum())
    return np.array(out)


def relevance_rank_accuracy(relevance, masks):
    out = []
    for r, m in zip(relevance, masks):
        values, truth = channel_map(r).ravel(), m.ravel()
        k = int(truth.sum())
        top = sorted(range(len(values)), key=lambda j: (-values[j], j))[:k]
        out.append(sum(1 for j in top if truth[j]) / k)
    return np.array(out)


def pointing_game(relevance, masks, tolerance=0.0):
    out = []
    for r, m in zip(relevance, masks):
        values = channel_map(r)
        peak = np.unravel_index(int(np.argmax(values)), values.shape)
        hit = any(
            math.dist(peak, position) <= tolerance for position in np.ndindex(*values.shape) if m[position]
        )
        out.append(float(hit))
    return np.array(out)


def gini(relevance):
    """Chalasani et al. 2020 on |channel-summed map|."""
    out = []
    for r in relevance:
        a = sorted(np.abs(channel_map(r)).ravel())
        d = len(a)
        out.append(sum((2 * (i + 1) - d - 1) * a[i] for i in range(d)) / (d * sum(a)))
    return np.array(out)


def entropy(relevance):
    out = []
    for r in relevance:
        a = np.abs(channel_map(r)).ravel()
        p = a / a.sum()
        out.append(-sum(v * math.log(v) for v in p if v > 0))
    return np.array(out)


def ranks(values):
    """Ranks from 1 with ties averaged, by counting."""
    out = []
    for v in values:
        less = sum(1 for w in values if w < v)
        equal = sum(1 for w in values if w == v)
        out.append(less + (equal + 1) / 2)
    return np.array(out)


def spearman(a, b):
    return np.array([np.corrcoef(ranks(x.ravel()), ranks(y.ravel()))[0, 1] for x, y in zip(a, b)])


def ssim_pair(a, b, window=7):
    """Wang et al. 2004 over every full window of 2D maps; uniform window, sample covariance."""
    span = max(a.max(), b.max()) - min(a.min(), b.min())
    c1, c2 = (0.01 * span) ** 2, (0.03 * span) ** 2
    values = []
    for i in range(a.shape[0] - window + 1):
        for j in range(a.shape[1] - window + 1):
            pa, pb = a[i : i + window, j : j + window].ravel(), b[i : i + window, j : j + window].ravel()
            ma, mb = pa.mean(), pb.mean()
            va, vb = pa.var(ddof=1), pb.var(ddof=1)
            cov = ((pa - ma) * (pb - mb)).sum() / (len(pa) - 1)
            values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))
