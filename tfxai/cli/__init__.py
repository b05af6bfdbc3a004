"""The ``tfxai`` command: ``demo``, ``check``, ``explain``, ``export`` and ``evaluate``.

One module per command (:mod:`tfxai.cli.demo`, :mod:`~tfxai.cli.check`,
:mod:`~tfxai.cli.explain`, :mod:`~tfxai.cli.export`, :mod:`~tfxai.cli.evaluate`),
model loading in :mod:`tfxai.cli.models`, shared options and the exit
status in :mod:`tfxai.cli.options`. The commands import TensorFlow and
Keras only inside their handlers, so that ``--help`` and argument errors
answer at once, and the handlers import TensorFlow through
:func:`tfxai.logs.quiet`, without its start-up log lines.

Exit status (also in ``tfxai --help``): see :data:`tfxai.cli.options.EXIT_STATUS`.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from tfxai.cli.check import add_check_command, run_check_command
from tfxai.cli.demo import DEMO_METHODS, DEMO_METRICS, add_demo_command, conservation_sentence, run_demo
from tfxai.cli.evaluate import EVALUATE_METHODS, add_evaluate_command, run_evaluate
from tfxai.cli.explain import add_explain_command, run_explain_command
from tfxai.cli.export import add_export_command, run_export_command
from tfxai.cli.models import MODEL_SUFFIXES, load_model, load_model_file
from tfxai.cli.options import EXIT_BUG, epilog, exit_status

__all__ = [
    "DEMO_METHODS",
    "DEMO_METRICS",
    "EVALUATE_METHODS",
    "MODEL_SUFFIXES",
    "add_check_command",
    "add_demo_command",
    "add_evaluate_command",
    "add_explain_command",
    "add_export_command",
    "build_parser",
    "conservation_sentence",
    "exit_status",
    "load_model",
    "load_model_file",
    "main",
    "run_check_command",
    "run_demo",
    "run_evaluate",
    "run_explain_command",
    "run_export_command",
]


def build_parser() -> argparse.ArgumentParser:
    """The ``tfxai`` argument parser with all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="tfxai",
        description="Explain Keras 3 / TensorFlow models.",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_command in (
        add_demo_command,
        add_check_command,
        add_explain_command,
        add_export_command,
        add_evaluate_command,
    ):
        add_command(subparsers)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``tfxai`` console script.

    Parses the arguments without importing TensorFlow (``--help`` and
    argument errors, exit status 2, answer at once), then imports it
    without its start-up log lines (:func:`tfxai.logs.quiet`) and runs the
    command. An unexpected exception prints its traceback and returns 5.
    """
    args = build_parser().parse_args(argv)
    from tfxai.logs import quiet  # noqa: PLC0415

    quiet()
    try:
        return args.handler(args)
    except Exception:  # noqa: BLE001  (a bug: show it, with its own exit status)
        traceback.print_exc()
        print(
            f"tfxai {args.command}: unexpected error; please report it with the traceback above.",
            file=sys.stderr,
        )
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
