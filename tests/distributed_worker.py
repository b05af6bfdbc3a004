"""Run ``analyze`` under a ``tf.distribute`` strategy in a fresh process; save the results.

``python distributed_worker.py mirrored OUT.npz`` splits the CPU into two
logical devices (possible only before TensorFlow initialises them, hence the
fresh process) and runs a ``MirroredStrategy`` over them.
``python distributed_worker.py multi_worker OUT.npz`` is one worker of a
``MultiWorkerMirroredStrategy``; ``TF_CONFIG`` names the cluster.

The file holds, per case, the single-device result ``<case>/reference`` and
the distributed one ``<case>/distributed`` for ``tests/test_distributed.py``
to compare.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import conftest  # noqa: E402

import tfxai  # noqa: E402

N_SAMPLES = 11  # odd: the last share of every split is short


def mirrored_cases(strategy, zoo):
    """Arrays with uneven global batches, targets, dicts, and distributed datasets."""
    cnn = tfxai.create_analyzer("lrp.epsilon", zoo("cnn", True), epsilon=0.1)
    x = conftest.make_inputs(cnn.model, N_SAMPLES)
    yield "cnn", cnn.analyze(x), cnn.analyze(x, strategy=strategy, batch_size=4)
    targets = np.arange(N_SAMPLES) % conftest.N_CLASSES
    yield "cnn_targets", cnn.analyze(x, targets), cnn.analyze(x, targets, strategy=strategy, batch_size=5)
    yield "one_sample", cnn.analyze(x[:1]), cnn.analyze(x[:1], strategy=strategy)
    dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(3))
    yield "cnn_distributed_dataset", cnn.analyze(x), cnn.analyze(dataset, strategy=strategy)
    with strategy.scope():
        yield "cnn_in_scope_index", cnn.analyze(x, 2), cnn.analyze(dataset, 2)

    multi = tfxai.create_analyzer("integrated_gradients", zoo("multi_input", True), steps=8)
    xa, xb = conftest.make_inputs(multi.model, N_SAMPLES, seed=1)
    named = {"xa": xa, "xb": xb}
    reference = multi.analyze(named)
    yield "multi_input_dict", reference, multi.analyze(named, strategy=strategy, batch_size=6)
    pipeline = tf.data.Dataset.from_tensor_slices((named, np.zeros(N_SAMPLES))).batch(4)
    yield "multi_input_dataset", reference, multi.analyze(pipeline, strategy=strategy)
    distributed = strategy.experimental_distribute_dataset(pipeline)
    yield "multi_input_distributed_dataset", reference, multi.analyze(distributed, strategy=strategy)


def multi_worker_cases(strategy, zoo):
    """Every worker explains the same input and receives the whole result."""
    cnn = tfxai.create_analyzer("lrp.epsilon", zoo("cnn", True), epsilon=0.1)
    x = conftest.make_inputs(cnn.model, N_SAMPLES)
    yield "cnn", cnn.analyze(x), cnn.analyze(x, strategy=strategy, batch_size=4)
    targets = np.arange(N_SAMPLES) % conftest.N_CLASSES
    yield "cnn_targets", cnn.analyze(x, targets), cnn.analyze(x, targets, strategy=strategy)


def _flat(result):
    if isinstance(result, dict):
        return [result[name] for name in sorted(result)]
    return list(result) if isinstance(result, list) else [result]


def main(kind, out):
    if kind == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        cases = mirrored_cases
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        cases = multi_worker_cases
    saved = {"replicas": np.array(strategy.num_replicas_in_sync)}
    for name, reference, distributed in cases(strategy, conftest.Zoo()):
        for i, (r, d) in enumerate(zip(_flat(reference), _flat(distributed))):
            saved[f"{name}/{i}/reference"], saved[f"{name}/{i}/distributed"] = r, d
    np.savez(out, **saved)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
