"""Wall time and peak memory of a block of work, for the cost columns of :func:`tfxai.evaluate`."""

from __future__ import annotations

import gc
import os
import resource
import sys
import threading
import time

import tensorflow as tf


class Meter:
    """Measure a ``with`` block: ``seconds`` (wall) and ``peak_bytes`` (memory growth), set on exit.

    The memory source is TensorFlow's allocator statistics of ``device``
    (``tf.config.experimental.get_memory_info``: the peak of bytes in use
    during the block minus those in use at its start) where the device has
    them (GPUs, x86 CPUs with oneDNN); otherwise the resident set size of the
    process sampled every ``interval`` seconds from ``/proc/self/statm``
    (largest sample minus the start; memory that an allocator pool reuses
    does not show, so it is a lower bound), and without ``/proc`` the growth
    of ``ru_maxrss``. ``source`` says which was used.
    """

    def __init__(self, device: str | None = None, interval: float = 0.005):
        self.device = device or ("GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0")
        self.interval = interval
        self.source = _source(self.device)
        self.seconds = 0.0
        self.peak_bytes = 0

    def __enter__(self):
        gc.collect()
        if self.source == "allocator":
            tf.config.experimental.reset_memory_stats(self.device)
            self._start = tf.config.experimental.get_memory_info(self.device)["current"]
        elif self.source == "rss":
            self._start = self._max = _rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self._start = _maxrss()
        self._began = time.perf_counter()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self._max = max(self._max, _rss())

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._began
        if self.source == "allocator":
            peak = tf.config.experimental.get_memory_info(self.device)["peak"]
        elif self.source == "rss":
            self._stop.set()
            self._thread.join()
            peak = max(self._max, _rss())
        else:
            peak = _maxrss()
        self.peak_bytes = max(int(peak - self._start), 0)
        return False


def _source(device: str) -> str:
    try:
        tf.config.experimental.reset_memory_stats(device)
        tf.config.experimental.get_memory_info(device)
        return "allocator"
    except (ValueError, RuntimeError, AttributeError):
        return "rss" if os.path.exists("/proc/self/statm") else "maxrss"


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024
