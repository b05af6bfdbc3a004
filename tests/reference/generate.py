"""Regenerate the golden files of tests/reference/data (run by hand, never in CI).

Usage (see README.md for building the two environments)::

    python tests/reference/generate.py --innvestigate-python ENV_A/bin/python \\
        --zennit-python ENV_B/bin/python

Steps:

1. Draw the weights of every network in ``networks.py`` and its inputs with
   NumPy (fixed seeds), load them into the Keras 3 model, pick each input's
   target logit (:func:`pick_targets`) and write ``data/networks.npz``.
2. Run ``run_innvestigate.py`` with the iNNvestigate interpreter and
   ``run_zennit.py`` with the zennit interpreter on that file.
3. Check that the three frameworks compute the same logits, then write
   ``data/innvestigate.npz``, ``data/zennit.npz`` and ``data/legacy_cnn.h5``.

Needs Keras 3 with the TensorFlow backend in the interpreter running it.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import networks  # noqa: E402

DATA = HERE / "data"
SEEDS = {"mlp": 11, "cnn": 12, "residual": 13, "bn": 14}
LOGIT_TOLERANCE = 1e-4


def draw_weights(model, rng, prefix: str, unit_scale: bool = False) -> dict:
    """He-normal kernels, biases of both signs, BatchNorm statistics far from the identity.

    ``unit_scale`` sets every BatchNorm's gamma and moving variance to 1 (mean
    and beta stay random): the one case iNNvestigate's BatchNorm formula is exact.
    """
    arrays = {}
    for layer in networks.weighted_layers(model):
        shapes = [w.shape for w in layer.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):
            (channels,) = shapes[0]
            values = [
                np.ones(channels) if unit_scale else rng.uniform(0.6, 1.4, channels),  # gamma
                rng.normal(0.0, 0.2, channels),  # beta
                rng.normal(0.0, 0.3, channels),  # moving mean
                np.ones(channels) if unit_scale else rng.uniform(0.3, 2.5, channels),  # moving variance
            ]
        else:
            kernel_shape, bias_shape = shapes
            fan_in = int(np.prod(kernel_shape[:-1]))
            values = [rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel_shape), rng.normal(0.0, 0.2, bias_shape)]
        for index, value in enumerate(values):
            arrays[f"{prefix}/{layer.name}/{index}"] = value.astype(np.float32)
    return arrays


def pick_targets(logits):
    """The largest logit of even samples; the second largest of odd samples where it is positive."""
    order = np.argsort(-logits, axis=1)
    second = np.where(logits[np.arange(len(logits)), order[:, 1]] > 0, order[:, 1], order[:, 0])
    return np.where(np.arange(len(logits)) % 2 == 0, order[:, 0], second).astype(np.int32)


def draw_network(name: str, prefix: str, seed: int, unit_scale: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    model = networks.build(keras, name)
    arrays = draw_weights(model, rng, prefix, unit_scale)
    networks.set_weights(model, arrays, prefix)
    x = rng.uniform(networks.LOW, networks.HIGH, (networks.N_SAMPLES,) + networks.INPUT_SHAPES[name])
    x = x.astype(np.float32)
    logits = np.asarray(model(x), np.float32)
    targets = pick_targets(logits)
    if not np.all(logits[np.arange(len(x)), targets] > 0):
        raise RuntimeError(f"{prefix}: choose another seed, a target logit is not positive")
    arrays.update({f"{prefix}/x": x, f"{prefix}/targets": targets, f"{prefix}/logits": logits})
    return arrays


def draw_all() -> dict:
    arrays = {}
    for name in networks.NETWORKS:
        arrays.update(draw_network(name, name, SEEDS[name]))
    arrays.update(draw_network("bn", "bn_unit", SEEDS["bn"], unit_scale=True))
    return arrays


def check_logits(arrays: dict, results: dict, library: str) -> None:
    for key, logits in results.items():
        if key.endswith("/logits"):
            reference = arrays[key.replace("legacy/", "cnn/")]  # the legacy model is cnn + softmax
            difference = float(np.max(np.abs(logits - reference)))
            if difference > LOGIT_TOLERANCE:
                raise RuntimeError(f"{library} computes other logits for {key}: max difference {difference}")


def run(python: str, script: str, *args: str) -> None:
    subprocess.run([python, str(HERE / script), *args], check=True, cwd=HERE)


def main():
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--innvestigate-python", required=True, help="python of the iNNvestigate environment")
    parser.add_argument("--zennit-python", required=True, help="python of the zennit environment")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    arrays = draw_all()
    np.savez_compressed(DATA / "networks.npz", **arrays)
    with tempfile.TemporaryDirectory() as tmp:
        innvestigate_out, zennit_out = os.path.join(tmp, "innvestigate.npz"), os.path.join(tmp, "zennit.npz")
        data = str(DATA / "networks.npz")
        legacy = str(DATA / "legacy_cnn.h5")
        innvestigate_args = ("--data", data, "--out", innvestigate_out, "--legacy-h5", legacy)
        run(args.innvestigate_python, "run_innvestigate.py", *innvestigate_args)
        run(args.zennit_python, "run_zennit.py", "--data", data, "--out", zennit_out)
        for library, path in (("innvestigate", innvestigate_out), ("zennit", zennit_out)):
            results = dict(np.load(path))
            check_logits(arrays, results, library)
            maps = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in results.items()}
            np.savez_compressed(DATA / f"{library}.npz", **maps)
    total = sum(path.stat().st_size for path in DATA.iterdir())
    print(f"wrote {', '.join(sorted(p.name for p in DATA.iterdir()))}: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
