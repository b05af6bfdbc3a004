"""``tfxai explain``: explain a folder, array file or TFRecord file into resumable shards."""

from __future__ import annotations

import argparse

from tfxai import user_classes
from tfxai.cli.models import load_model
from tfxai.cli.options import (
    EXIT_OK,
    add_model_options,
    failed,
    method_parameters,
    parameter,
    shape,
    subparser,
)
from tfxai.errors import TfxaiError


def add_explain_command(subparsers) -> argparse.ArgumentParser:
    """Add ``explain MODEL INPUTS --method NAME --out DIR`` to an argparse subparsers object."""
    parser = subparser(
        subparsers,
        "explain",
        help="explain a folder of images, an .npy/.npz file or a TFRecord file into sharded .npz files",
        description="Explain every input with one method, in batches, into OUT/shard-<k>.npz files holding "
        "predictions, relevance and explained (the keys of an exported explainer) and the sample names. "
        "Finished shards are skipped, so an interrupted run resumes where it stopped.",
    )
    parser.add_argument(
        "model", help="a .keras/.h5 file, or a keras.applications name (built without weights)"
    )
    parser.add_argument(
        "inputs",
        help="a folder of PNG/JPEG images (resized to the model input), an .npy file, an .npz file with one "
        "array per input name, or a .tfrecord file of tf.train.Example with one flat feature per input name",
    )
    parser.add_argument("--method", required=True, metavar="NAME", help="analyzer name, e.g. lrp.epsilon")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder of the shards")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="[METHOD:]KEY=VALUE",
        type=parameter,
        help="method or composite parameter, VALUE in JSON (epsilon=0.1)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="samples per analysis call (default: 32)")
    parser.add_argument("--shard-size", type=int, default=256, help="samples per shard file (default: 256)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="factor for image pixels 0..255, e.g. 0.00392"
    )
    parser.add_argument("--input-shape", type=shape, default=None, help="for keras.applications names: H,W,C")
    parser.add_argument(
        "--heatmaps", action="store_true", help="also write OUT/heatmaps/<name>.png per image"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(parser)
    parser.set_defaults(handler=run_explain_command)
    return parser


def run_explain_command(args) -> int:
    """Run ``tfxai explain`` for parsed arguments; print errors, return the exit status."""
    from tfxai import shards, sources  # noqa: PLC0415
    from tfxai.analyzers import create_analyzer  # noqa: PLC0415

    try:
        params = method_parameters([args.method], args.param)[args.method]
        model = load_model(args.model, args.input_shape, user_classes.load(args.imports, args.custom_objects))
        analyzer = create_analyzer(args.method, model, **params)
        source = sources.open_source(args.inputs, analyzer.input_specs, args.scale)
        settings = {
            "model": str(args.model),
            "inputs": str(args.inputs),
            "method": args.method,
            "params": params,
            "scale": args.scale,
        }
        run = shards.explain_shards(
            analyzer,
            source,
            args.out,
            shard_size=args.shard_size,
            batch_size=args.batch_size,
            heatmaps=args.heatmaps,
            settings=settings,
            verbose=0 if args.quiet else 1,
        )
    except (TfxaiError, OSError) as error:
        return failed("explain", error)
    print(
        f"{run.samples} samples: wrote {len(run.written)} shards, skipped {len(run.skipped)} finished ones "
        f"in {args.out}"
    )
    return EXIT_OK
