"""Quiet TensorFlow start-up: :func:`quiet` hides the C++ and absl log lines of ``import tensorflow``.

Importing TensorFlow 2.21 on a CPU-only machine prints lines such as
``oneDNN custom operations are on ...``, ``Could not find cuda drivers on
your machine ...`` and ``failed call to cuInit ...``. Most of them are
written by absl's C++ logging *before* it is initialised, which ignores
``TF_CPP_MIN_LOG_LEVEL``, so no environment variable hides them. :func:`quiet`
imports TensorFlow (and starts its devices) with the process's standard error
redirected to a temporary file, then writes back every line that is not one
of the known start-up notices: nothing else TensorFlow says is lost, and no
option that changes numerical results (such as ``TF_ENABLE_ONEDNN_OPTS``) is
touched.

The ``tfxai`` command line calls it before every command that needs
TensorFlow; library users opt in with ``tfxai.quiet()`` before their first
``import tensorflow`` (``import tfxai`` itself does not import TensorFlow).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2", "GRPC_VERBOSITY": "ERROR"}
"""Variables :func:`quiet` sets when they are unset: C++ logs from warnings up, gRPC errors only."""

START_UP_NOTICES = re.compile(
    "|".join(
        [
            r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
            r"oneDNN custom operations are on",
            r"Could not find cuda drivers on your machine",
            r"failed call to cuInit",
            r"This TensorFlow binary is optimized to use available CPU instructions",
            r"To enable the following instructions: .* rebuild TensorFlow",
            r"Unable to register cu(DNN|FFT|BLAS) factory",
            r"computation placer already registered",
            r"TF-TRT Warning: Could not find TensorRT",
        ]
    )
)
"""The start-up lines :func:`quiet` hides; any other line is written back to standard error."""


def quiet() -> None:
    """Import TensorFlow without its start-up log lines, and keep its Python loggers to errors.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` and ``GRPC_VERBOSITY=ERROR`` where they
    are unset, imports TensorFlow and lists its devices with standard error
    filtered (see :data:`START_UP_NOTICES`; every other line is kept), and
    sets the ``tensorflow`` and ``absl`` Python loggers to ``ERROR``. Called
    after TensorFlow was imported, it can only do the last part: the
    start-up lines were already printed.
    """
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if "tensorflow" not in sys.modules:
        with filtered_stderr(START_UP_NOTICES):
            import tensorflow as tf  # noqa: PLC0415

            tf.config.list_physical_devices()  # device start-up is where cuInit is tried
    import absl.logging  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel("ERROR")


@contextlib.contextmanager
def filtered_stderr(hidden: re.Pattern):
    """Redirect file descriptor 2 to a temporary file; on exit, write back the lines ``hidden`` does not match.

    Works for output of C/C++ code, which bypasses ``sys.stderr``.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not hidden.search(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
