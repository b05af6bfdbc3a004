"""The ``tfxai`` command: ``demo``, ``check``, ``export`` and ``evaluate``."""

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
    masks = datasets.make_shapes(400, seed=args.seed + 1, return_masks=True)[2]  # the masks of x_test
    _print_demo_evaluation(model, images, masks[shown])
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


DEMO_METRICS = ("morf", "abpc", "relevance_mass_accuracy", "random_logit")
"""The short comparison the demo prints: faithfulness, localisation on the shapes' masks, a sanity check."""


def _print_demo_evaluation(model, images, masks):
    import tfxai  # noqa: PLC0415

    began = time.perf_counter()
    result = tfxai.evaluate(
        model, images, DEMO_METHODS, list(DEMO_METRICS), masks=masks, patch_size=4, steps=16, verbose=0
    )
    seconds = time.perf_counter() - began
    print(f"how good are the explanations? tfxai.evaluate on the same images ({seconds:.1f} s):")
    print(result.to_markdown())
    print("(higher is better for metrics marked ↑; see the docs page 'Which method should I trust?')")


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


# ---------------------------------------------------------------------------- tfxai evaluate

EVALUATE_METHODS = ("gradient", "input_t_gradient", "integrated_gradients", "lrp.epsilon", "random")
"""Methods ``tfxai evaluate`` compares when no ``--method`` is given."""


def _add_evaluate_command(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="score explanation methods on a model and data (faithfulness, localisation, sanity, ...)",
        description="Explain the samples of DATA with each method and score the explanations with "
        "tfxai.evaluate; print a Markdown table (one row per method) and optionally write it.",
    )
    parser.add_argument("model", help="model file: .keras, .h5 or .hdf5")
    parser.add_argument(
        "data",
        help=".npz with x (inputs) and optionally y (explained class per sample; default the predicted "
        "class) and masks (ground truth for the localisation metrics), or .npy with x",
    )
    parser.add_argument(
        "--method",
        action="append",
        metavar="NAME[:KEY=VALUE,...]",
        help="analyzer name with optional parameters in JSON, e.g. lrp.epsilon:epsilon=0.1; repeatable "
        f"(default: {', '.join(EVALUATE_METHODS)})",
    )
    parser.add_argument(
        "--metric", action="append", metavar="NAME", help="metric name (see tfxai.evaluate); repeatable"
    )
    parser.add_argument("--out", help="also write the table to FILE.md (Markdown) or FILE.csv")
    parser.add_argument("--samples", type=int, default=None, help="evaluate only the first N samples")
    parser.add_argument("--patch-size", type=int, default=None, help="region side of perturbation metrics")
    parser.add_argument("--steps", type=int, default=None, help="steps of the perturbation metrics")
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args) -> int:
    """Run ``tfxai evaluate`` with parsed arguments; print errors, return the exit status."""
    import json  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    import tfxai  # noqa: PLC0415
    from tfxai.errors import TfxaiError  # noqa: PLC0415
    from tfxai.export import load_model  # noqa: PLC0415

    try:
        out = pathlib.Path(args.out) if args.out else None
        if out is not None and out.suffix.lower() not in (".md", ".csv"):
            raise ValueError(f"--out must end in .md or .csv. Received: {args.out!r}")
        x, y, masks = _evaluation_data(args.data, args.samples, np)
        methods = [_method_spec(text, json) for text in (args.method or EVALUATE_METHODS)]
        result = tfxai.evaluate(
            load_model(args.model), x, methods, args.metric, masks=masks, target=y,
            patch_size=args.patch_size, steps=args.steps, verbose=0,
        )
    except (TfxaiError, ValueError, TypeError, KeyError, OSError) as error:
        print(f"tfxai evaluate: error: {error}", file=sys.stderr)
        return 1
    table = result.to_markdown()
    print(table)
    if out is not None:
        out.write_text(result.to_csv() if out.suffix.lower() == ".csv" else table + "\n")
        print(f"wrote {out}")
    return 0


def _evaluation_data(path, samples, np):
    """``(x, y or None, masks or None)`` from a .npz (keys x, y, masks) or a .npy file."""
    path = pathlib.Path(path)
    if path.suffix.lower() not in (".npz", ".npy"):
        raise ValueError(f"DATA must be a .npz (x; optional y, masks) or a .npy. Received: {str(path)!r}")
    if path.suffix.lower() == ".npy":
        arrays = {"x": np.load(path, allow_pickle=False)}
    else:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    if "x" not in arrays:
        raise ValueError(f"{path.name} has no array named 'x'. Found: {sorted(arrays)}")
    keep = slice(None) if samples is None else slice(0, samples)
    return tuple(arrays[key][keep] if key in arrays else None for key in ("x", "y", "masks"))


def _method_spec(text: str, json):
    """``"name:key=value,key=value"`` -> ``(name, params)``, values parsed as JSON where they can be."""
    import re  # noqa: PLC0415

    name, _, rest = text.partition(":")
    params = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", rest)):
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"Parameters are KEY=VALUE, e.g. lrp.epsilon:epsilon=0.1. Received: {text!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return name, params


# ---------------------------------------------------------------------------- end of tfxai evaluate


def build_parser() -> argparse.ArgumentParser:
    """The ``tfxai`` argument parser with all its subcommands."""
    from tfxai.export import add_export_command  # noqa: PLC0415
    from tfxai.report import add_check_command, run_check_command  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="tfxai", description="Explain Keras 3 / TensorFlow models.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_demo_command(subparsers)
    add_check_command(subparsers).set_defaults(handler=run_check_command)
    add_export_command(subparsers)
    _add_evaluate_command(subparsers)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``tfxai`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
