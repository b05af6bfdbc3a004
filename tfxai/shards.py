"""Explain a source shard by shard into ``.npz`` files, resumably (``tfxai explain``).

Shard ``k`` holds samples ``k * shard_size`` to ``(k + 1) * shard_size`` of
the source, in ``shard-<k>.npz`` with the keys of an exported explainer's
signature (:func:`tfxai.export.output_names`: ``predictions``,
``relevance``, ``explained``, per input or output where there are several)
and ``names``, the sample names. A shard is written to a temporary file and
renamed when complete, so a file that exists is finished: a run that is
interrupted and started again skips it. ``explain.json`` records what the
folder holds (model, method, parameters, inputs, shard size); a run with
other settings is refused rather than mixed into it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import numpy as np

from tfxai import inputs
from tfxai.errors import InputError

MANIFEST = "explain.json"
"""The file of an output folder that says how its shards were made."""


@dataclasses.dataclass(frozen=True)
class ShardRun:
    """What :func:`explain_shards` did.

    Attributes
    ----------
    written, skipped : list of pathlib.Path
        Shards explained by this run, and shards found finished.
    samples : int
        Samples in the source.
    """

    written: list
    skipped: list
    samples: int


def shard_path(out, index: int) -> pathlib.Path:
    """``out/shard-<index>.npz``, the index zero-padded to five digits."""
    return pathlib.Path(out) / f"shard-{index:05d}.npz"


def explain_shards(
    analyzer, source, out, *, shard_size=256, batch_size=32, heatmaps=False, settings=None, verbose=1
):
    """Explain every sample of ``source`` into shard files under ``out``, skipping finished shards.

    Parameters
    ----------
    analyzer : Analyzer
        Explains the largest output of each sample (``neuron_selection="max_activation"``).
    source : ImageFolder, ArrayFile or TFRecordFile
        From :func:`tfxai.sources.open_source`.
    out : str or os.PathLike
        The output folder; created if missing.
    shard_size, batch_size : int
        Samples per shard file, and per call of the analysis.
    heatmaps : bool
        Also write ``heatmaps/<sample name>.png`` per sample (image inputs only), with
        :func:`tfxai.visualize.heatmap`.
    settings : dict, optional
        JSON-able description of the run, stored in ``explain.json`` and compared on resume.
    verbose : int
        1 shows a progress bar over samples.

    Returns
    -------
    ShardRun
    """
    import keras  # noqa: PLC0415

    from tfxai.export import output_names  # noqa: PLC0415

    out = pathlib.Path(out)
    shard_size, batch_size = _positive(shard_size, "shard_size"), _positive(batch_size, "batch_size")
    if heatmaps and len(analyzer.input_specs[0].shape) != 4:
        raise InputError(
            f"Heatmaps need image inputs (batch, H, W, C). Received: {analyzer.input_specs[0].shape}"
        )
    _claim(out, dict(settings or {}, shard_size=shard_size, samples=len(source)))
    keys = output_names(analyzer)
    progress = keras.utils.Progbar(len(source), verbose=1) if verbose else None
    written, skipped = [], []
    for index, start in enumerate(range(0, len(source), shard_size)):
        stop = min(start + shard_size, len(source))
        path = shard_path(out, index)
        if path.exists():
            skipped.append(path)
        else:
            arrays = inputs.validate(source.read(start, stop), analyzer.input_specs)
            results = _explain(analyzer, arrays, batch_size, keys)
            names = source.names(start, stop)
            if heatmaps:
                _write_heatmaps(out / "heatmaps", names, results[keys["relevance"][0]])
            _write_atomically(path, dict(results, names=np.array(names)))
            written.append(path)
        if progress is not None:
            progress.update(stop)
    return ShardRun(written, skipped, len(source))


def _explain(analyzer, arrays, batch_size, keys) -> dict:
    explain = analyzer.compiled("max_activation")
    parts = []
    for batch in inputs.batches(arrays, batch_size):
        relevance, explained, predictions = explain(*batch)
        parts.append([*relevance, explained, *predictions])
    names = keys["relevance"] + [keys["explained"]] + keys["predictions"]
    return {name: np.concatenate([np.asarray(p[i]) for p in parts]) for i, name in enumerate(names)}


def _claim(out, settings):
    """Create ``out`` with its manifest, or check that the manifest there matches ``settings``."""
    manifest = out / MANIFEST
    settings = json.loads(json.dumps(settings))
    if manifest.exists():
        found = json.loads(manifest.read_text())
        if found != settings:
            changed = sorted(k for k in set(found) | set(settings) if found.get(k) != settings.get(k))
            raise InputError(
                f"{str(out)!r} holds shards of another run (differs in {changed}). Use a new --out folder, "
                "or delete the old one."
            )
        return
    if out.exists() and any(out.glob("shard-*.npz")):
        raise InputError(f"{str(out)!r} holds shards but no {MANIFEST}: use a new --out folder.")
    out.mkdir(parents=True, exist_ok=True)
    _write_atomically(manifest, json.dumps(settings, indent=1, sort_keys=True).encode())


def _write_heatmaps(folder, names, relevance):
    from matplotlib.image import imsave  # noqa: PLC0415

    from tfxai.visualize import heatmap  # noqa: PLC0415

    folder.mkdir(exist_ok=True)
    for name, r in zip(names, relevance):
        imsave(folder / f"{name}.png", heatmap(r))


def _write_atomically(path, content):
    """Write ``content`` (bytes, or a dict of arrays for ``.npz``) to ``path`` via a renamed temporary file."""
    temporary = path.with_name(f".{path.name}.partial")
    with open(temporary, "wb") as file:
        if isinstance(content, dict):
            np.savez(file, **content)
        else:
            file.write(content)
    os.replace(temporary, path)


def _positive(value, name) -> int:
    if int(value) <= 0:
        raise InputError(f"{name} must be a positive integer. Received: {name}={value}")
    return int(value)
