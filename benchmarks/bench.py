"""Speed and memory of tfxai analyzers against a plain tf.function gradient.

For each model (keras.applications VGG16 / ResNet50, random weights,
224x224x3 inputs, classifier head included) and each batch size, the script
times on the current device (GPU if TensorFlow sees one, else CPU):

* ``forward``: a ``tf.function`` calling ``model(x, training=False)``;
* ``baseline gradient``: a ``tf.function`` with a ``GradientTape`` over the
  pre-softmax logits, differentiating the largest logit of each sample with
  respect to ``x``. The logits come from a clone of the model whose last Dense
  layer has a linear activation (same weights); the original model is not
  modified. tfxai explains the logits too, so this is the fair baseline;
* every requested tfxai analyzer, run as
  ``analyzer.compiled("max_activation")(x)`` on a ``tf.Tensor``.

and prints one Markdown table per (model, batch) with the columns
``method | median ms | ratio vs gradient | first call s | peak MB``.

Run ``python benchmarks/bench.py --help`` for the options and
benchmarks/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import resource
import statistics
import sys
import threading
import time

DEFAULT_MODELS = ("VGG16", "ResNet50")
DEFAULT_BATCHES = (1, 8)
DEFAULT_METHODS = (
    "lrp.z",
    "lrp.epsilon",
    "lrp.epsilon_plus",
    "lrp.epsilon_plus_flat",
    "lrp.epsilon_gamma_box",
    "lrp.alpha_2_beta_1",
    "lrp.w_square",
    "gradient",
    "input_t_gradient",
    "smoothgrad",
    "vargrad",
    "noise_tunnel",
    "integrated_gradients",
    "guided_backprop",
    "deconvnet",
    "grad_cam",
    "grad_cam_plus_plus",
    "deep_taylor",
    "deep_taylor.bounded",
    "occlusion",
    "input",
    "random",
    "deeplift",
    "deeplift.reveal_cancel",
    "deep_shap",
    "gradient_shap",
    "squaregrad",
    "kernel_shap",
    "lime",
    "rise",
    "score_cam",
    "sobol",
)
METHOD_PARAMS = {
    "smoothgrad": {"n_samples": 4},
    "vargrad": {"n_samples": 4},
    "noise_tunnel": {"analyzer": "lrp.epsilon", "n_samples": 4},
    "integrated_gradients": {"steps": 8},
    "occlusion": {"window": 56},
    "deep_shap": {"background": "4 images"},
    "gradient_shap": {"background": "4 images", "n_samples": 8},
    "squaregrad": {"n_samples": 4},
    "kernel_shap": {"n_samples": 256},
    "lime": {"n_samples": 256},
    "rise": {"n_masks": 256},
    "sobol": {"n_designs": 8, "grid_size": 4},
}
"""Parameters the benchmark gives some methods so that a CPU run stays affordable.

The cost of these methods scales with the parameter (n_samples or steps
passes, or (224 / window)^2 forward passes); the table names them."""
BACKGROUND_SIZE = 4
"""``"4 images"`` in METHOD_PARAMS: a background set of that many random images (seeded)."""
QUICK_METHODS = ("lrp.epsilon", "gradient")
TINY_CNN = "TinyCNN"
"""A small convolutional network (not from keras.applications) for methods costing hundreds of passes."""
FORWARD = "forward"
BASELINE = "baseline gradient"
IMAGE_SHAPE = (224, 224, 3)

DESCRIPTION = """\
Benchmark tfxai analyzers (LRP variants, gradient, input x gradient) on
keras.applications VGG16 and ResNet50 (weights=None, 224x224x3, classifier
head included) against a plain tf.function input gradient of the pre-softmax
logits. Runs on the GPU when TensorFlow sees one, else on the CPU.

Expected duration of the full default run (2 models x batches 1 and 8 x 9
methods + forward + baseline, 5 repeats): about 10-20 minutes on 2 CPU cores
(VGG16 at batch 8 takes 1-2 s per forward pass there; longer when other
processes share the cores), a few minutes on a GPU. `--quick` (batch 1,
2 repeats, lrp.epsilon and gradient) takes under a minute on 2 CPU cores.
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="MODEL",
        help=f"keras.applications model names, or {TINY_CNN} (two convolutions, 224x224x3 input) "
        f"(default: {' '.join(DEFAULT_MODELS)}).",
    )
    parser.add_argument(
        "--batches",
        nargs="+",
        type=int,
        default=None,
        metavar="N",
        help="batch sizes (default: 1 8; --quick: 1).",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="NAME",
        help="tfxai analyzer names, see tfxai.analyzer_names() "
        f"(default: {' '.join(DEFAULT_METHODS)}; --quick: {' '.join(QUICK_METHODS)}). "
        "The forward pass and the baseline gradient are always measured.",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls per method (default: 5; --quick: 2)."
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed calls after the first call (default: 1, minimum 1)."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: batch 1, 2 repeats, methods lrp.epsilon and gradient "
        "(explicit --batches/--repeats/--methods still win).",
    )
    parser.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile the forward pass, the baseline and every analyzer with XLA.",
    )
    parser.add_argument(
        "--memory",
        choices=("auto", "allocator", "rss"),
        default="auto",
        help="peak memory source: TensorFlow's allocator statistics of the device (GPU; x86 CPU with "
        "oneDNN), or the sampled process RSS; auto (default) prefers the allocator.",
    )
    parser.add_argument("--markdown-out", metavar="FILE", help="also write the tables to FILE (Markdown).")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs (default: 0).")
    parser.add_argument(
        "--verbose", action="store_true", help="print every timed call to stderr as it happens."
    )
    args = parser.parse_args(argv)
    if args.batches is None:
        args.batches = [1] if args.quick else list(DEFAULT_BATCHES)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.methods is None:
        args.methods = list(QUICK_METHODS if args.quick else DEFAULT_METHODS)
    if args.models is None:
        args.models = list(DEFAULT_MODELS)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.warmup < 1:
        parser.error("--warmup must be >= 1 (the peak memory is measured during the warm-up call)")
    if any(b < 1 for b in args.batches):
        parser.error("--batches must be >= 1")
    return args


# ----------------------------------------------------------------------------
# Memory


class MemoryMeter:
    """Peak memory growth during a block, in bytes.

    ``source="allocator"``: TensorFlow's allocator statistics of ``device``
    (``tf.config.experimental.get_memory_info``), the peak reset at the start
    of the block; the result is ``peak - current at start``: the most memory
    the block's tensors held at once, excluding weights and tensors alive
    before it. Available on GPUs and, with TensorFlow's default oneDNN build,
    on x86 CPUs (whose allocator keeps freed memory in a pool).

    ``source="rss"``: the process resident set size sampled by a background
    thread from ``/proc/self/statm`` every ``interval`` seconds; the result is
    the largest sample minus the RSS at the start (freed heap memory is handed
    back to the OS with ``malloc_trim`` first). Memory an allocator pool keeps
    from earlier calls is reused without growing the RSS, so this is a lower
    bound. Without ``/proc`` it uses the growth of ``ru_maxrss`` (0 unless the
    process reaches a new maximum).
    """

    def __init__(self, tf, source: str, device: str = "CPU:0", interval: float = 0.002):
        self.tf = tf
        self.source = source
        self.device = device
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.statm = "/proc/self/statm" if os.path.exists("/proc/self/statm") else None
        try:
            self.libc = ctypes.CDLL("libc.so.6")
        except OSError:
            self.libc = None
        self.peak = 0

    def _rss(self) -> int:
        with open(self.statm) as handle:
            return int(handle.read().split()[1]) * self.page

    def _sample(self):
        while not self._stop.is_set():
            self._max = max(self._max, self._rss())
            self._stop.wait(self.interval)
        self._max = max(self._max, self._rss())

    def __enter__(self):
        gc.collect()
        if self.source == "allocator":
            self.tf.config.experimental.reset_memory_stats(self.device)
            self._start = self.tf.config.experimental.get_memory_info(self.device)["current"]
            return self
        if self.libc is not None:
            try:
                self.libc.malloc_trim(0)
            except AttributeError:
                pass
        if self.statm is None:
            self._start = _maxrss_bytes()
            return self
        self._start = self._max = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.source == "allocator":
            self.peak = self.tf.config.experimental.get_memory_info(self.device)["peak"] - self._start
        elif self.statm is None:
            self.peak = _maxrss_bytes() - self._start
        else:
            self._stop.set()
            self._thread.join()
            self.peak = self._max - self._start
        self.peak = max(self.peak, 0)
        return False


def memory_source(tf, device: str, requested: str) -> str:
    """``"allocator"`` if ``device`` has allocator statistics and ``rss`` is not requested, else ``"rss"``."""
    if requested == "rss":
        return "rss"
    try:
        tf.config.experimental.reset_memory_stats(device)
        tf.config.experimental.get_memory_info(device)
    except (ValueError, RuntimeError, AttributeError) as error:
        if requested == "allocator":
            raise SystemExit(f"--memory allocator: no allocator statistics for {device}: {error}") from None
        return "rss"
    return "allocator"


def _maxrss_bytes() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024


# ----------------------------------------------------------------------------
# Models and baselines


def build_model(keras, name: str):
    if name == TINY_CNN:
        layers = keras.layers
        return keras.Sequential(
            [
                keras.Input(IMAGE_SHAPE),
                layers.Conv2D(8, 3, strides=4, padding="same", activation="relu"),
                layers.MaxPooling2D(2),
                layers.Conv2D(16, 3, padding="same", activation="relu"),
                layers.GlobalAveragePooling2D(),
                layers.Dense(10, activation="softmax"),
            ],
            name="tiny_cnn",
        )
    try:
        constructor = getattr(keras.applications, name)
    except AttributeError:
        raise SystemExit(f"Unknown keras.applications model {name!r}.") from None
    return constructor(weights=None, include_top=True, input_shape=IMAGE_SHAPE)


def logits_model(keras, model):
    """A clone of ``model`` whose final Dense layer has no softmax (same weights)."""
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense):
        raise SystemExit(f"Expected {model.name} to end with a Dense layer; got {type(last).__name__}.")

    def clone_layer(layer):
        config = layer.get_config()
        if layer is last:
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    return clone


def method_params(tf, method: str, seed: int) -> dict:
    """METHOD_PARAMS of ``method``, with ``"4 images"`` replaced by a seeded random background set."""
    params = dict(METHOD_PARAMS.get(method, {}))
    if "background" in params:
        shape = (BACKGROUND_SIZE,) + IMAGE_SHAPE
        params["background"] = tf.random.stateless_uniform(shape, seed=(seed, 99), minval=-1.0, maxval=1.0).numpy()
    return params


def input_signature(tf):
    return [tf.TensorSpec((None,) + IMAGE_SHAPE, tf.float32)]


def make_forward(tf, model, jit_compile):
    def forward(x):
        return model(x, training=False)

    return tf.function(forward, input_signature=input_signature(tf), jit_compile=jit_compile or None)


def make_baseline_gradient(tf, logits, jit_compile):
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            top = tf.reduce_max(logits(x, training=False), axis=1)
        return tape.gradient(top, x)

    return tf.function(gradient, input_signature=input_signature(tf), jit_compile=jit_compile or None)


# ----------------------------------------------------------------------------
# Measurement


def materialize(tf, result):
    """Copy every output to host memory (synchronizes asynchronous devices)."""
    for tensor in tf.nest.flatten(result):
        tensor.numpy()


def prepare(tf, meter_factory, make_function, x, warmup):
    """``(function, first call s, peak bytes)``: build, trace and warm up ``make_function()``.

    The first call includes ``make_function()`` (e.g. ``create_analyzer``),
    tracing and the first run; the peak memory is taken during the first
    warm-up call.
    """
    gc.collect()
    start = time.perf_counter()
    function = make_function()
    materialize(tf, function(x))
    first = time.perf_counter() - start
    with meter_factory() as meter:
        materialize(tf, function(x))
    for _ in range(warmup - 1):
        materialize(tf, function(x))
    return function, first, meter.peak


def time_round_robin(tf, functions, x, repeats, verbose):
    """Per name, the wall and process CPU times of ``repeats`` calls, interleaved across names.

    Round ``i`` calls every function once, so a change of background load
    during the run affects all methods alike instead of whichever ran then.
    """
    wall = {name: [] for name in functions}
    cpu = {name: [] for name in functions}
    for i in range(repeats):
        for name, function in functions.items():
            start_cpu, start = time.process_time(), time.perf_counter()
            materialize(tf, function(x))
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            if verbose:
                log(f"  round {i + 1}/{repeats} {name}: {wall[name][-1] * 1e3:.1f} ms")
    return wall, cpu


def log(message):
    print(message, file=sys.stderr, flush=True)


def table(rows, baseline_median):
    lines = [
        "| method | median ms | ratio vs gradient | first call s | peak MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, median, _, first, peak in rows:
        if name in METHOD_PARAMS:
            name += " (" + ", ".join(f"{k}={v}" for k, v in METHOD_PARAMS[name].items()) + ")"
        if median is None:
            lines.append(f"| {name} | error | - | - | - |")
            continue
        ratio = median / baseline_median if baseline_median else float("nan")
        lines.append(f"| {name} | {median * 1e3:.1f} | {ratio:.2f} | {first:.1f} | {peak / 2**20:.0f} |")
    return "\n".join(lines)


def cpu_line(cpu_times):
    """Median process CPU time per call and its ratio to the baseline's (robust to background load)."""
    medians = {name: statistics.median(values) for name, values in cpu_times.items()}
    base = medians.get(BASELINE)
    parts = [
        f"{name} {value * 1e3:.0f}" + (f" ({value / base:.2f})" if base else "")
        for name, value in medians.items()
    ]
    return "Process CPU time per call, median ms (ratio vs baseline gradient): " + ", ".join(parts) + "."


def environment(tf, keras, gpus, args, memory):
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        device = f"GPU: {details.get('device_name', gpus[0].name)}"
    else:
        device = f"CPU: {_cpu_name()}, {os.cpu_count()} logical cores"
    threads = (
        f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}, "
        f"inter-op {tf.config.threading.get_inter_op_parallelism_threads() or 'auto'}"
    )
    return [
        f"- device: {device} ({threads})",
        f"- TensorFlow {tf.__version__}, Keras {keras.__version__}, Python {platform.python_version()}",
        f"- per method: 1 first call, {args.warmup} warm-up call(s), then {args.repeats} timed calls "
        "interleaved round-robin with the other methods (median reported); "
        f"XLA {'on' if args.jit_compile else 'off'}; inputs: random float32 in [-1, 1), seed {args.seed}",
        f"- baseline (`{BASELINE}`): tf.function + GradientTape of the max pre-softmax logit per sample "
        "w.r.t. x, on a clone of the model whose last Dense layer has a linear activation (same weights)",
        "- analyzers: `tfxai.create_analyzer(name, model).compiled(\"max_activation\")(x)` on a tf.Tensor x "
        "(they explain the pre-softmax logits as well)",
        "- first call s: from before create_analyzer (or tf.function) to the first result in host memory; "
        "peak MB: "
        + (
            f"peak bytes in use by TensorFlow's {memory[1]} allocator during one call minus bytes in use "
            "before it (weights excluded)"
            if memory[0] == "allocator"
            else "largest process RSS during one call minus RSS before it (sampled every 2 ms; a lower bound "
            "when an allocator pool reuses memory of earlier calls)"
        ),
    ]


def load_average() -> str:
    try:
        return "load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average: unknown"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Report:
    """Prints Markdown to stdout and, optionally, to a file (rewritten as it grows)."""

    def __init__(self, path):
        self.path = path
        self.parts = []

    def add(self, text):
        self.parts.append(text)
        print(text + "\n", flush=True)
        if self.path:
            with open(self.path, "w") as handle:
                handle.write("\n\n".join(self.parts) + "\n")


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    import tfxai

    unknown = [m for m in args.methods if m not in tfxai.analyzer_names()]
    if unknown:
        raise SystemExit(f"Unknown methods {unknown}. Valid names: {', '.join(tfxai.analyzer_names())}")

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass

    device = "GPU:0" if gpus else "CPU:0"
    memory = (memory_source(tf, device, args.memory), device)

    def meter_factory():
        return MemoryMeter(tf, memory[0], device)

    report = Report(args.markdown_out)
    report.add(
        "# tfxai benchmark\n\n"
        + "\n".join(environment(tf, keras, gpus, args, memory))
        + f"\n- at start: {load_average()}"
    )
    started = time.perf_counter()
    for model_name in args.models:
        keras.utils.set_random_seed(args.seed)
        model = build_model(keras, model_name)
        logits = logits_model(keras, model)
        for batch in args.batches:
            x = tf.random.stateless_uniform(
                (batch,) + IMAGE_SHAPE, seed=(args.seed, batch), minval=-1.0, maxval=1.0
            )
            log(f"[{time.perf_counter() - started:.0f} s] {model_name}, batch {batch}")
            candidates = [
                (FORWARD, lambda: make_forward(tf, model, args.jit_compile)),
                (BASELINE, lambda: make_baseline_gradient(tf, logits, args.jit_compile)),
            ]
            for method in args.methods:
                candidates.append(
                    (
                        method,
                        lambda method=method: tfxai.create_analyzer(
                            method, model, jit_compile=args.jit_compile, **method_params(tf, method, args.seed)
                        ).compiled("max_activation"),
                    )
                )
            functions, prepared = {}, {}
            for name, make in candidates:
                try:
                    function, first, peak = prepare(tf, meter_factory, make, x, args.warmup)
                except Exception as error:  # noqa: BLE001 - report and go on with the other methods
                    log(f"  {name} failed: {type(error).__name__}: {error}")
                    continue
                functions[name], prepared[name] = function, (first, peak)
                log(f"  {name}: first call {first:.1f} s, peak {peak / 2**20:.0f} MB")
            times, cpu_times = time_round_robin(tf, functions, x, args.repeats, args.verbose)
            rows = []
            for name, _ in candidates:
                if name not in functions:
                    rows.append((name, None, None, None, None))
                    continue
                median = statistics.median(times[name])
                rows.append((name, median, times[name], *prepared[name]))
                log(
                    f"  {name}: median {median * 1e3:.1f} ms (min {min(times[name]) * 1e3:.1f}, "
                    f"max {max(times[name]) * 1e3:.1f}), "
                    f"CPU {statistics.median(cpu_times[name]) * 1e3:.1f} ms"
                )
            del functions
            gc.collect()
            baseline = next((r[1] for r in rows if r[0] == BASELINE), None)
            text = f"## {model_name}, batch {batch}\n\n" + table(rows, baseline)
            if not gpus:
                text += "\n\n" + cpu_line(cpu_times)
            report.add(text)
        del model, logits
        gc.collect()
    elapsed = time.perf_counter() - started
    report.add(f"Total {elapsed / 60:.1f} min; at the end: {load_average()}.")


if __name__ == "__main__":
    main()
