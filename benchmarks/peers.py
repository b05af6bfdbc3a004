"""tfxai next to iNNvestigate and zennit: the same models, batch and inputs, each library's own gradient as unit.

The peers need environments of their own (iNNvestigate 2.1.2 runs on TensorFlow 2.14 and
Keras 2, zennit on PyTorch), so this script runs each of them in a subprocess with that
environment's interpreter (``--innvestigate-python``, ``--zennit-python``; by default the
``TFXAI_INNVESTIGATE_PYTHON`` / ``TFXAI_ZENNIT_PYTHON`` environment variables). A peer whose
interpreter is missing, or cannot import the library, is reported as such and its column
stays empty. docs/benchmarks.md says how to create the two environments.

For every library the unit is its own plain gradient of the largest logit on the same
batch, in the same run: tfxai's column divides by the ``tf.function`` gradient of
benchmarks/bench.py, iNNvestigate's by its ``gradient`` analyzer, zennit's by a plain
``torch.autograd`` gradient. Weights are random (each framework draws its own: speed does
not depend on their values); the input batch is the same array everywhere (uniform in
[-1, 1), channels last for the TensorFlow libraries, channels first for PyTorch).

Run ``python benchmarks/peers.py --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

ROWS = (
    ("gradient", None, None),
    ("lrp.epsilon", "lrp.epsilon", None),
    ("lrp.z", "lrp.z", None),
    ("lrp.alpha_2_beta_1", "lrp.alpha_2_beta_1", None),
    ("lrp.sequential_preset_a_flat", "lrp.sequential_preset_a_flat", None),
    ("lrp.sequential_preset_b_flat", "lrp.sequential_preset_b_flat", None),
    ("lrp.epsilon_plus", None, "EpsilonPlus"),
    ("lrp.epsilon_plus_flat", None, "EpsilonPlusFlat"),
    ("lrp.epsilon_gamma_box", None, "EpsilonGammaBox"),
    ("lrp.epsilon_alpha2_beta1", None, "EpsilonAlpha2Beta1"),
    ("lrp.epsilon_alpha2_beta1_flat", None, "EpsilonAlpha2Beta1Flat"),
)
"""(tfxai analyzer, iNNvestigate analyzer or None, zennit composite or None): one row each.

Where a library has no equivalent of a preset, its cell stays empty."""

PEERS = {
    "iNNvestigate": ("innvestigate", "TFXAI_INNVESTIGATE_PYTHON", 1),
    "zennit": ("zennit", "TFXAI_ZENNIT_PYTHON", 2),
}
"""Column -> (worker name, environment variable of its interpreter, index of its name in ROWS)."""

GRADIENT = "gradient"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", nargs="+", default=["VGG16"], help="VGG16 and/or ResNet50 (default VGG16)."
    )
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8).")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed calls per method; the median is reported."
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the input batch (default 0).")
    for column, (worker, variable, _) in PEERS.items():
        parser.add_argument(
            f"--{worker}-python",
            default=os.environ.get(variable),
            metavar="PYTHON",
            help=f"interpreter of the {column} environment (default: ${variable}).",
        )
    parser.add_argument("--markdown-out", metavar="FILE", help="also write the tables to FILE.")
    parser.add_argument("--worker", choices=[w for w, _, _ in PEERS.values()], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def batch_of(seed, batch, size=224):
    import numpy as np

    return np.random.RandomState(seed).uniform(-1.0, 1.0, (batch, size, size, 3)).astype("float32")


def timed(call, repeats):
    """``(first call s, median of the timed calls s)``; one untimed warm-up call between."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


# ---------------------------------------------------------------- the three libraries


def run_tfxai(model_name, x, repeats):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, HERE)
    import bench
    import keras
    import tensorflow as tf

    import tfxai

    keras.utils.set_random_seed(0)
    model = bench.build_model(keras, model_name, x.shape[1:])
    x = tf.constant(x)
    functions = {GRADIENT: bench.make_baseline_gradient(tf, bench.logits_model(keras, model), False)}
    for name, _, _ in ROWS[1:]:
        functions[name] = tfxai.create_analyzer(name, model).compiled("max_activation")
    return {name: timed(lambda f=f: bench.materialize(tf, f(x)), repeats) for name, f in functions.items()}


def run_innvestigate(model_name, x, repeats):
    """Inside the iNNvestigate environment (TensorFlow 2.14, tf.keras 2, TF1 graph mode)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    import innvestigate

    keras = tf.keras
    keras.backend.set_learning_phase(0)
    model = innvestigate.model_wo_softmax(getattr(keras.applications, model_name)(weights=None))
    names = [GRADIENT] + [peer for _, peer, _ in ROWS[1:] if peer is not None]
    results = {}
    for name in names:
        analyzer = innvestigate.create_analyzer(name, model)
        results[name] = timed(lambda a=analyzer: a.analyze(x), repeats)
    return results


def torch_vgg16(torch):
    nn = torch.nn
    layers, channels = [], 3
    for width, count in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(count):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2))
    head = [nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU()]
    return nn.Sequential(*layers, *head, nn.Linear(4096, 1000))


def torch_resnet50(torch):
    """ResNet50 v1 as in keras.applications (stride in the first 1x1 convolution of a stage)."""
    nn = torch.nn

    class Bottleneck(nn.Module):
        def __init__(self, channels, width, stride):
            super().__init__()
            self.branch = nn.Sequential(
                nn.Conv2d(channels, width, 1, stride), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, 4 * width, 1), nn.BatchNorm2d(4 * width),
            )  # fmt: skip
            self.shortcut = (
                nn.Sequential(nn.Conv2d(channels, 4 * width, 1, stride), nn.BatchNorm2d(4 * width))
                if stride != 1 or channels != 4 * width
                else nn.Identity()
            )
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.branch(x) + self.shortcut(x))

    blocks, channels = [], 64
    for width, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(count):
            blocks.append(Bottleneck(channels, width, stride if i == 0 else 1))
            channels = 4 * width
    stem = [nn.Conv2d(3, 64, 7, 2, padding=3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)]
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)]
    return nn.Sequential(*stem, *blocks, *head)


def run_zennit(model_name, x, repeats):
    """Inside the zennit environment (PyTorch CPU)."""
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "reference"))
    import run_zennit  # noqa: F401  (imports zennit, stubbing torchvision where it cannot load)
    from zennit import composites
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm

    torch.manual_seed(0)
    model = {"VGG16": torch_vgg16, "ResNet50": torch_resnet50}[model_name](torch).eval()
    images = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

    def top_one_hot(output):
        return torch.nn.functional.one_hot(output.argmax(1), output.shape[1]).to(output)

    def gradient():
        inputs = images.clone().requires_grad_(True)
        output = model(inputs)
        (grad,) = torch.autograd.grad(output.max(1).values.sum(), inputs)
        return grad

    results = {GRADIENT: timed(gradient, repeats)}
    for _, _, name in ROWS[1:]:
        if name is None:
            continue
        params = {"low": -1.0, "high": 1.0} if name == "EpsilonGammaBox" else {}
        composite = getattr(composites, name)(canonizers=[SequentialMergeBatchNorm()], **params)

        def attribute(composite=composite):
            with Gradient(model=model, composite=composite) as attributor:
                return attributor(images.clone().requires_grad_(True), top_one_hot)[1]

        results[name] = timed(attribute, repeats)
    return results


WORKERS = {"innvestigate": run_innvestigate, "zennit": run_zennit}


# ---------------------------------------------------------------- driver and table


def run_peer(column, python, model_name, args):
    """``(results or None, note)``: the peer's timings from its subprocess, or why there are none."""
    worker, variable, _ = PEERS[column]
    if not python:
        return None, f"{column}: not run, no interpreter given (--{worker}-python or ${variable})"
    if not os.path.exists(python):
        return None, f"{column}: not run, no interpreter at {python}"
    command = [python, os.path.abspath(__file__), "--worker", worker, "--model", model_name]
    command += ["--batch", str(args.batch), "--repeats", str(args.repeats), "--seed", str(args.seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return None, f"{column}: failed with exit status {done.returncode}: {' / '.join(tail)}"
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    return payload["results"], f"{column}: {payload['version']}"


def cell(results, name):
    if not results or name not in results:
        return ""
    _, median = results[name]
    return f"{median:.2f} ({median / results[GRADIENT][1]:.2f})"


def markdown(model_name, batch, columns, notes) -> str:
    header = "| method | " + " | ".join(f"{c} s (x its gradient)" for c in columns) + " |"
    lines = [f"## {model_name}, batch {batch}", "", header, "|---" + "|---:" * len(columns) + "|"]
    for row in ROWS:
        cells = [cell(columns[c], row[0] if c == "tfxai" else row[PEERS[c][2]]) for c in columns]
        if row[0] == GRADIENT:
            cells = [cell(columns[c], GRADIENT) for c in columns]
        lines.append(f"| {row[0]} | " + " | ".join(cells) + " |")
    first = [f"{c} {columns[c][GRADIENT][0]:.1f} s" for c in columns if columns[c]]
    lines += ["", "First call of the gradient: " + ", ".join(first) + "."] if first else []
    return "\n".join(lines + [""] + [f"- {note}" for note in notes])


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        import importlib.metadata

        x = batch_of(args.seed, args.batch)
        results = WORKERS[args.worker](args.model, x, args.repeats)
        version = f"{args.worker} {importlib.metadata.version(args.worker)}"
        print(json.dumps({"version": version, "results": results}))
        return
    parts = []
    for model_name in args.models:
        x = batch_of(args.seed, args.batch)
        columns = {"tfxai": run_tfxai(model_name, x, args.repeats)}
        notes = []
        for column, (worker, _, _) in PEERS.items():
            columns[column], note = run_peer(column, getattr(args, f"{worker}_python"), model_name, args)
            notes.append(note)
        parts.append(markdown(model_name, args.batch, columns, notes))
        print(parts[-1] + "\n", flush=True)
    if args.markdown_out:
        with open(args.markdown_out, "w") as handle:
            handle.write("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
