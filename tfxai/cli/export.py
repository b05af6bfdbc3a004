"""``tfxai export``: write a model's explainer as a SavedModel for TF Serving."""

from __future__ import annotations

import re

from tfxai import user_classes
from tfxai.cli.models import load_model_file
from tfxai.cli.options import EXIT_OK, add_model_options, failed, method_parameters, parameter, subparser
from tfxai.errors import TfxaiError


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
    parser = subparser(
        subparsers,
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
        metavar="[METHOD:]KEY=VALUE",
        type=parameter,
        help='method or composite parameter, VALUE in JSON (epsilon=0.1, low=[-1,-1,-1], baseline="zero"). '
        "KEY=VALUE goes to every --method that takes KEY (an error if none does); "
        "METHOD:KEY=VALUE (lrp.epsilon:epsilon=0.1) to that method only, and wins over KEY=VALUE",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing SavedModel")
    add_model_options(parser)
    parser.set_defaults(handler=run_export_command)
    return parser


def run_export_command(args) -> int:
    """Run ``tfxai export`` with parsed arguments; print errors, return the exit status."""
    try:
        path, names, analyzer = _export_from_file(args)
    except (TfxaiError, OSError) as error:
        return failed("export", error)
    _print_summary(path, names, analyzer)
    return EXIT_OK


def _export_from_file(args):
    from tfxai.analyzers import create_analyzer  # noqa: PLC0415
    from tfxai.export import DEFAULT_NAME, ExportError, export_analyzers  # noqa: PLC0415

    names = [DEFAULT_NAME] if len(args.method) == 1 else [re.sub(r"\W", "_", m) for m in args.method]
    if len(set(names)) != len(names):
        raise ExportError(f"Each --method needs its own signature name. Received: {args.method}")
    params = method_parameters(args.method, args.param)
    model = load_model_file(args.model, user_classes.load(args.imports, args.custom_objects))
    analyzers = {name: create_analyzer(m, model, **params[m]) for name, m in zip(names, args.method)}
    path = export_analyzers(analyzers, args.output, overwrite=args.overwrite)
    return path, names, analyzers[names[0]]


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
