"""The ``tfxai`` command: ``demo``, ``check`` and ``export``."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

DEMO_METHODS = {
    "gradient": {},
    "input_t_gradient": {},
    "integrated_gradients": {"steps": 32},
    "lrp.z": {},
    "lrp.epsilon": {"epsilon": 0.1},
    "lrp.epsilon_plus_flat": {},
    "lrp.epsilon_gamma_box": {"low": 0.0, "high": 1.0},
    "lrp.alpha_1_beta_0": {},
}
"""Methods the demo compares, with their parameters (images lie in [0, 1])."""


def run_demo(args) -> int:
    """Train a CNN on generated shapes, explain test images, write heatmap PNGs."""
    import numpy as np  # noqa: PLC0415

    import tfxai  # noqa: PLC0415
    from tfxai import datasets, visualize  # noqa: PLC0415

    start = time.perf_counter()
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    print(f"training a small CNN on {args.samples} generated 32x32 images ({args.epochs} epochs)...")
    model, (x_test, y_test), accuracy = datasets.train_shapes_cnn(args.samples, args.epochs, args.seed, 400)
    print(f"test accuracy: {accuracy:.3f}  ({time.perf_counter() - start:.1f} s)")

    shown = np.concatenate([np.flatnonzero(y_test == label)[:2] for label in range(len(datasets.SHAPE_CLASSES))])
    images = x_test[shown]
    relevances = {}
    print(f"{'method':24s} {'time s':>7s}")
    for name, params in DEMO_METHODS.items():
        began = time.perf_counter()
        analyzer = tfxai.create_analyzer(name, model, **params)
        relevances[name], delta = analyzer.analyze(images, return_delta=True)
        print(f"{name:24s} {time.perf_counter() - began:7.2f}")
        if name == "lrp.epsilon":
            median_delta = np.median(delta)
    print(f"lrp.epsilon: median conservation delta (explained logit minus summed relevance): {median_delta:.3g}")

    titles = [datasets.SHAPE_CLASSES[label] for label in y_test[shown]]
    paths = [output / "heatmaps.png"]
    visualize.save_figure(visualize.plot_grid(images, relevances, titles), paths[0])
    for name, relevance in relevances.items():
        path = output / f"{name.replace('.', '_')}.png"
        visualize.save_figure(visualize.plot_grid(images, {name: relevance}, titles), path)
        paths.append(path)
    print("wrote " + ", ".join(str(p) for p in paths))
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _add_demo_command(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="train a small CNN on generated images and write heatmaps of several methods",
        description="Generate coloured shapes on noise (no downloads), train a small CNN, explain test "
        "images with gradient and LRP methods and write the heatmaps side by side as PNG files.",
    )
    parser.add_argument("--output", default="tfxai-demo", help="folder for the PNG files (default: tfxai-demo)")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs (default: 4)")
    parser.add_argument("--samples", type=int, default=2000, help="training images (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.set_defaults(handler=run_demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``tfxai`` argument parser with all its subcommands."""
    from tfxai.export import add_export_command  # noqa: PLC0415
    from tfxai.report import add_check_command, run_check_command  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="tfxai", description="Explain Keras 3 / TensorFlow models.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_demo_command(subparsers)
    add_check_command(subparsers).set_defaults(handler=run_check_command)
    add_export_command(subparsers)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``tfxai`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
