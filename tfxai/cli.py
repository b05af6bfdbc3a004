"""The ``tfxai`` command: ``demo``, ``check``, ``explain``, ``export`` and ``evaluate``.

This module owns every command of the console script and the loading of
model files. It imports TensorFlow and Keras only inside the command
handlers, so that parsing arguments stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import sys
import time

from tfxai.errors import ModelLoadError, TfxaiError

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
"""Model files the commands load."""
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


def add_export_command(subparsers):
    """Add ``tfxai export`` to an ``argparse`` sub-parser collection.

    The parser it adds sets ``handler=run_export_command``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = subparsers.add_parser(
        "export",
        help="export a model's explainer as a SavedModel for TF Serving",
        description=(
            "Export explanations of a Keras model as a TensorFlow SavedModel that TF Serving runs. "
            "The model file is loaded with Keras' safe_mode: files that would run Python code "
            "(Lambda layers holding Python lambdas) are refused."
        ),
    )
    parser.add_argument("model", help="model file: .keras, .h5 or .hdf5")
    parser.add_argument("output", help="SavedModel directory, e.g. models/classifier_xai/1")
    parser.add_argument(
        "--method",
        action="append",
        required=True,
        metavar="NAME",
        help="analyzer name (see tfxai.analyzer_names()); repeat to export several, one signature each",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_parameter,
        help="method or composite parameter, VALUE in JSON (epsilon=0.1, low=[-1,-1,-1], baseline=\"zero\"); "
        "given to every method",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing SavedModel")
    parser.set_defaults(handler=run_export_command)
    return parser


def run_export_command(args) -> int:
    """Run ``tfxai export`` with parsed arguments; print errors, return the exit status."""
    try:
        path, names, analyzer = _export_from_file(args)
    except (TfxaiError, ValueError, TypeError, OSError) as error:
        print(f"tfxai export: error: {error}", file=sys.stderr)
        return 1
    _print_summary(path, names, analyzer)
    return 0


def _export_from_file(args):
    from tfxai.analyzers import create_analyzer  # noqa: PLC0415
    from tfxai.export import DEFAULT_NAME, ExportError, export_analyzers  # noqa: PLC0415

    names = [DEFAULT_NAME] if len(args.method) == 1 else [re.sub(r"\W", "_", m) for m in args.method]
    if len(set(names)) != len(names):
        raise ExportError(f"Each --method needs its own signature name. Received: {args.method}")
    model = load_model_file(args.model)
    params = dict(args.param)
    analyzers = {name: create_analyzer(method, model, **params) for name, method in zip(names, args.method)}
    path = export_analyzers(analyzers, args.output, overwrite=args.overwrite)
    return path, names, analyzers[names[0]]


def add_explain_command(subparsers) -> argparse.ArgumentParser:
    """Add ``explain MODEL INPUTS --method NAME --out DIR`` to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "explain",
        help="explain a folder of images, an .npy/.npz file or a TFRecord file into sharded .npz files",
        description="Explain every input with one method, in batches, into OUT/shard-<k>.npz files holding "
        "predictions, relevance and explained (the keys of an exported explainer) and the sample names. "
        "Finished shards are skipped, so an interrupted run resumes where it stopped.",
    )
    parser.add_argument("model", help="a .keras/.h5 file, or a keras.applications name (built without weights)")
    parser.add_argument(
        "inputs",
        help="a folder of PNG/JPEG images (resized to the model input), an .npy file, an .npz file with one "
        "array per input name, or a .tfrecord file of tf.train.Example with one flat feature per input name",
    )
    parser.add_argument("--method", required=True, metavar="NAME", help="analyzer name, e.g. lrp.epsilon")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder of the shards")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", type=_parameter,
        help="method or composite parameter, VALUE in JSON (epsilon=0.1)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="samples per analysis call (default: 32)")
    parser.add_argument("--shard-size", type=int, default=256, help="samples per shard file (default: 256)")
    parser.add_argument("--scale", type=float, default=1.0, help="factor for image pixels 0..255, e.g. 0.00392")
    parser.add_argument("--input-shape", type=_shape, default=None, help="for keras.applications names: H,W,C")
    parser.add_argument("--heatmaps", action="store_true", help="also write OUT/heatmaps/<name>.png per image")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run_explain_command(args) -> int:
    """Run ``tfxai explain`` for parsed arguments; print errors, return the exit status."""
    from tfxai import shards, sources  # noqa: PLC0415
    from tfxai.analyzers import create_analyzer  # noqa: PLC0415

    try:
        analyzer = create_analyzer(args.method, load_model(args.model, args.input_shape), **dict(args.param))
        source = sources.open_source(args.inputs, analyzer.input_specs, args.scale)
        settings = {
            "model": str(args.model), "inputs": str(args.inputs), "method": args.method,
            "params": dict(args.param), "scale": args.scale,
        }
        run = shards.explain_shards(
            analyzer, source, args.out, shard_size=args.shard_size, batch_size=args.batch_size,
            heatmaps=args.heatmaps, settings=settings, verbose=0 if args.quiet else 1,
        )
    except (TfxaiError, KeyError, ValueError, TypeError, OSError) as error:
        print(f"tfxai explain: error: {error}", file=sys.stderr)
        return 1
    print(
        f"{run.samples} samples: wrote {len(run.written)} shards, skipped {len(run.skipped)} finished ones "
        f"in {args.out}"
    )
    return 0


def load_model_file(path):
    """Load a ``.keras`` / ``.h5`` model with ``safe_mode=True`` (no Python code from the file runs).

    Raises
    ------
    ModelLoadError
        For a missing file or another format.
    ValueError
        From Keras, when the file holds a Python lambda or an unknown class.
    """
    import keras  # noqa: PLC0415  (the CLI starts without Keras and TensorFlow)

    path = pathlib.Path(path)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        suffixes = ", ".join(MODEL_SUFFIXES)
        raise ModelLoadError(f"Expected a model file ending in {suffixes}. Received: {str(path)!r}")
    if not path.is_file():
        raise ModelLoadError(f"Model file {str(path)!r} does not exist.")
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def _parameter(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. epsilon=0.1. Received: {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _print_summary(path, names, analyzer):
    from tfxai.export import TARGET_INPUT, TARGET_SUFFIX, output_names, signature_names  # noqa: PLC0415

    inputs = ", ".join(f"{s.name} {s.dtype} {(None,) + tuple(s.shape[1:])}" for s in analyzer.input_specs)
    keys = output_names(analyzer)
    outputs = ", ".join(keys["predictions"] + keys["relevance"] + [keys["explained"]])
    print(f"Wrote SavedModel {str(path)!r}")
    print(f"  signatures: {', '.join(signature_names(names))} (serving_default = {names[0]})")
    print(f"  inputs: {inputs}; '{TARGET_SUFFIX}' signatures also take {TARGET_INPUT} int32 (None,)")
    print(f"  outputs: {outputs}")
    base = path.resolve().parent
    if not path.name.isdigit():
        print("  note: TF Serving loads numbered version directories; export to <model>/1, <model>/2, ...")
    print(
        f"Serve it: tensorflow_model_server --rest_api_port=8501 --model_name={base.name} "
        f"--model_base_path={base}"
    )


def load_model(spec: str, input_shape=None):
    """A model from a saved-model file, or a ``keras.applications`` architecture (no weights).

    Parameters
    ----------
    spec : str
        A path to a ``.keras`` / ``.h5`` file, or an application name such as
        ``"ResNet50"`` or ``"keras.applications.EfficientNetB0"``.
    input_shape : tuple of int, optional
        For applications: the input shape (default: the architecture's own).
    """
    import keras  # noqa: PLC0415

    if os.path.exists(spec):
        return load_model_file(spec)
    name = spec.removeprefix("keras.applications.")
    builder = getattr(keras.applications, name, None)
    if not (callable(builder) and name[:1].isupper()):
        raise ModelLoadError(
            f"{spec!r} is neither a model file nor a keras.applications model. "
            "Give a .keras/.h5 path or a name such as ResNet50 or EfficientNetB0."
        )
    return builder(weights=None, input_shape=None if input_shape is None else tuple(input_shape))


def add_check_command(subparsers) -> argparse.ArgumentParser:
    """Add ``check MODEL [--composite NAME] [--input-shape H,W,C]`` to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "check",
        help="print the rule every node of a model gets, and what is unsupported",
        description="Walk and canonize a model without tracing it; print one row per node with its "
        "type, its rule under a composite, and a fix for every unsupported node. "
        "Exit status 0 when every node has a rule, 1 otherwise.",
    )
    parser.add_argument(
        "model", help="a .keras/.h5 file, or a keras.applications name (built without weights)"
    )
    parser.add_argument(
        "--composite",
        default="epsilon_plus",
        help="registered composite name, or 'epsilon' (default: epsilon_plus)",
    )
    parser.add_argument(
        "--input-shape",
        type=_shape,
        default=None,
        help="input shape for keras.applications names, e.g. 32,32,3",
    )
    return parser


def run_check_command(args) -> int:
    """Run ``tfxai check`` for parsed arguments; return the exit status."""
    from tfxai.checks import check  # noqa: PLC0415
    try:
        model = load_model(args.model, args.input_shape)
        report = check(model, args.composite)
    except (TfxaiError, KeyError, ValueError) as error:
        print(f"tfxai check: {error}", file=sys.stderr)
        return 2
    return 0 if report.ok else 1


def _shape(text: str) -> tuple:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, e.g. 32,32,3. Received: {text!r}"
        )


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
    import numpy as np  # noqa: PLC0415

    import tfxai  # noqa: PLC0415

    try:
        out = pathlib.Path(args.out) if args.out else None
        if out is not None and out.suffix.lower() not in (".md", ".csv"):
            raise ValueError(f"--out must end in .md or .csv. Received: {args.out!r}")
        x, y, masks = _evaluation_data(args.data, args.samples, np)
        methods = [_method_spec(text) for text in (args.method or EVALUATE_METHODS)]
        result = tfxai.evaluate(
            load_model_file(args.model), x, methods, args.metric, masks=masks, target=y,
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


def _method_spec(text: str):
    """``"name:key=value,key=value"`` -> ``(name, params)``, values parsed as JSON where they can be."""
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


def build_parser() -> argparse.ArgumentParser:
    """The ``tfxai`` argument parser with all its subcommands."""
    parser = argparse.ArgumentParser(prog="tfxai", description="Explain Keras 3 / TensorFlow models.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_demo_command(subparsers)
    add_check_command(subparsers).set_defaults(handler=run_check_command)
    add_explain_command(subparsers).set_defaults(handler=run_explain_command)
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
