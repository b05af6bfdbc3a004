"""``tfxai check``: the rule every node gets, and what is unsupported."""

from __future__ import annotations

import argparse

from tfxai import user_classes
from tfxai.cli.models import load_model
from tfxai.cli.options import EXIT_OK, EXIT_UNSUPPORTED, add_model_options, failed, shape, subparser
from tfxai.errors import TfxaiError


def add_check_command(subparsers) -> argparse.ArgumentParser:
    """Add ``check MODEL [--composite NAME] [--input-shape H,W,C] [--import MODULE]`` to argparse subparsers."""
    parser = subparser(
        subparsers,
        "check",
        help="print the rule every node of a model gets, and what is unsupported",
        description="Walk and canonize a model without tracing it; print one row per node with its "
        "type, its rule under a composite, and a fix for every unsupported node.",
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
        type=shape,
        default=None,
        help="input shape for keras.applications names, e.g. 32,32,3",
    )
    add_model_options(parser)
    parser.set_defaults(handler=run_check_command)
    return parser


def run_check_command(args) -> int:
    """Run ``tfxai check`` for parsed arguments; return the exit status."""
    from tfxai.checks import check  # noqa: PLC0415

    try:
        custom = user_classes.load(args.imports, args.custom_objects)
        report = check(load_model(args.model, args.input_shape, custom), args.composite)
    except TfxaiError as error:
        return failed("check", error)
    return EXIT_OK if report.ok else EXIT_UNSUPPORTED
