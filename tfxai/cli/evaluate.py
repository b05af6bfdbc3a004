"""``tfxai evaluate``: score explanation methods on a model and data."""

from __future__ import annotations

import json
import pathlib
import re

from tfxai import user_classes
from tfxai.cli.models import load_model_file
from tfxai.cli.options import EXIT_OK, add_model_options, failed, subparser
from tfxai.errors import InputError, ParameterError, TfxaiError

EVALUATE_METHODS = ("gradient", "input_t_gradient", "integrated_gradients", "lrp.epsilon", "random")
"""Methods ``tfxai evaluate`` compares when no ``--method`` is given."""


def add_evaluate_command(subparsers):
    parser = subparser(
        subparsers,
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
    add_model_options(parser)
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args) -> int:
    """Run ``tfxai evaluate`` with parsed arguments; print errors, return the exit status."""
    import numpy as np  # noqa: PLC0415

    import tfxai  # noqa: PLC0415

    try:
        out = pathlib.Path(args.out) if args.out else None
        if out is not None and out.suffix.lower() not in (".md", ".csv"):
            raise ParameterError(f"--out must end in .md or .csv. Received: {args.out!r}")
        x, y, masks = _evaluation_data(args.data, args.samples, np)
        methods = [_method_spec(text) for text in (args.method or EVALUATE_METHODS)]
        model = load_model_file(args.model, user_classes.load(args.imports, args.custom_objects))
        result = tfxai.evaluate(
            model,
            x,
            methods,
            args.metric,
            masks=masks,
            target=y,
            patch_size=args.patch_size,
            steps=args.steps,
            verbose=0,
        )
    except (TfxaiError, OSError) as error:
        return failed("evaluate", error)
    table = result.to_markdown()
    print(table)
    if out is not None:
        out.write_text(result.to_csv() if out.suffix.lower() == ".csv" else table + "\n")
        print(f"wrote {out}")
    return EXIT_OK


def _evaluation_data(path, samples, np):
    """``(x, y or None, masks or None)`` from a .npz (keys x, y, masks) or a .npy file."""
    path = pathlib.Path(path)
    if path.suffix.lower() not in (".npz", ".npy"):
        raise InputError(f"DATA must be a .npz (x; optional y, masks) or a .npy. Received: {str(path)!r}")
    if path.suffix.lower() == ".npy":
        arrays = {"x": np.load(path, allow_pickle=False)}
    else:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    if "x" not in arrays:
        raise InputError(f"{path.name} has no array named 'x'. Found: {sorted(arrays)}")
    keep = slice(None) if samples is None else slice(0, samples)
    return tuple(arrays[key][keep] if key in arrays else None for key in ("x", "y", "masks"))


def _method_spec(text: str):
    """``"name:key=value,key=value"`` -> ``(name, params)``, values parsed as JSON where they can be."""
    name, _, rest = text.partition(":")
    params = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", rest)):
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ParameterError(
                f"Parameters are KEY=VALUE, e.g. lrp.epsilon:epsilon=0.1. Received: {text!r}"
            )
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return name, params
