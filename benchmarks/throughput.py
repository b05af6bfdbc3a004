"""Explanations per second: ``analyze`` on 1 and 2 replicas, and the Beam path's overhead.

For ``lrp.epsilon`` on ``keras.applications.ResNet50`` (random weights,
224x224x3) the script times, after one warm-up call that traces everything:

* ``analyze(x, batch_size=B)`` on one device;
* ``analyze(x, strategy=MirroredStrategy(R devices), batch_size=B)``, the
  global batch B split across R replicas. Without GPUs the replicas are
  logical CPU devices: they share the same cores, so this measures the
  overhead of the distributed path rather than a speed-up;
* with ``--beam`` (needs the ``beam`` extra): the exported explainer run by
  :class:`tfxai.integrations.beam.ExplainToTFRecord` on the DirectRunner,
  writing sharded TFRecord files, from pipeline start to files written
  (SavedModel loading included), against plain ``analyze`` on the same
  samples.

    python benchmarks/throughput.py --samples 16 --batch 8 --replicas 2 --beam
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402


def logical_devices(replicas: int) -> list:
    """GPU names if TensorFlow sees at least ``replicas``; else split the CPU (before TF initialises it)."""
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= replicas:
        return [f"/gpu:{i}" for i in range(replicas)]
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    return [f"/cpu:{i}" for i in range(replicas)]


def timed(function, repeats: int) -> float:
    """Best wall time of ``repeats`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def beam_seconds(analyzer, x, batch, folder) -> float:
    """Wall time of the Beam pipeline over ``x``: create, explain, write 2 TFRecord shards."""
    import apache_beam as beam  # noqa: PLC0415

    from tfxai.integrations.beam import ExplainToTFRecord  # noqa: PLC0415

    saved = str(analyzer.export(os.path.join(folder, "explainer", "1")))
    options = beam.options.pipeline_options.PipelineOptions(
        ["--runner=DirectRunner", "--direct_num_workers=1", "--direct_running_mode=in_memory"]
    )
    start = time.perf_counter()
    with beam.Pipeline(options=options) as pipeline:
        _ = (
            pipeline
            | beam.Create(list(enumerate(x)))
            | ExplainToTFRecord(
                saved, os.path.join(folder, "out", "explanations"), num_shards=2, max_batch_size=batch
            )
        )
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8, help="global batch size")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--beam", action="store_true", help="also time the Beam path (needs tfxai[beam])")
    args = parser.parse_args(argv)
    devices = logical_devices(args.replicas)

    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    import tfxai  # noqa: PLC0415

    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None)
    analyzer = tfxai.create_analyzer("lrp.epsilon", model)
    x = np.random.default_rng(0).uniform(0, 1, (args.samples, 224, 224, 3)).astype(np.float32)
    strategy = tf.distribute.MirroredStrategy(devices)
    rows = {}
    single = lambda: analyzer.analyze(x, batch_size=args.batch)  # noqa: E731
    mirrored = lambda: analyzer.analyze(x, batch_size=args.batch, strategy=strategy)  # noqa: E731
    reference = single()
    difference = np.abs(mirrored() - reference).max()
    rows["analyze, 1 device"] = timed(single, args.repeats)
    rows[f"analyze, MirroredStrategy {args.replicas} replicas ({', '.join(devices)})"] = timed(
        mirrored, args.repeats
    )
    if args.beam:
        with tempfile.TemporaryDirectory() as folder:
            rows["Beam DirectRunner (ExplainToTFRecord, 2 shards)"] = beam_seconds(
                analyzer, x, args.batch, folder
            )
    print(
        f"ResNet50, lrp.epsilon, {args.samples} samples, global batch {args.batch}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, TF {tf.__version__}; mirrored vs 1 device max |difference| {difference:.2g}"
    )
    print("| path | seconds | explanations/s | vs analyze, 1 device |")
    print("|---|---|---|---|")
    base = rows["analyze, 1 device"]
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.2f} | {args.samples / seconds:.2f} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
