"""``analyze`` under ``tf.distribute`` strategies equals single-device ``analyze``.

Logical devices can be configured only before TensorFlow initialises them,
so each strategy runs in a fresh process (``tests/distributed_worker.py``):
a ``MirroredStrategy`` over two logical CPU devices, and a
``MultiWorkerMirroredStrategy`` of two worker processes on 127.0.0.1. Every
case compares the distributed relevance with the single-device relevance of
the same process, in the same order.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai.errors import InputError

WORKER = pathlib.Path(__file__).with_name("distributed_worker.py")
TIMEOUT_S = 240
MIRRORED_CASES = {
    "cnn": 1,
    "cnn_targets": 1,
    "one_sample": 1,
    "cnn_distributed_dataset": 1,
    "cnn_in_scope_index": 1,
    "multi_input_dict": 2,
    "multi_input_dataset": 2,
    "multi_input_distributed_dataset": 2,
}


def _environment(**extra):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    return dict(env, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(WORKER.parents[1]), **extra)


def _assert_equal_to_single_device(saved, cases, replicas):
    assert int(saved["replicas"]) == replicas
    for case, n_inputs in cases.items():
        for i in range(n_inputs):
            reference, distributed = saved[f"{case}/{i}/reference"], saved[f"{case}/{i}/distributed"]
            assert distributed.shape == reference.shape, case
            scale = np.abs(reference).max()
            np.testing.assert_allclose(distributed, reference, rtol=1e-5, atol=1e-6 * scale, err_msg=case)


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus_equals_single_device(tmp_path):
    out = tmp_path / "mirrored.npz"
    done = subprocess.run(
        [sys.executable, str(WORKER), "mirrored", str(out)],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_equal_to_single_device(np.load(out), MIRRORED_CASES, replicas=2)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_of_two_local_workers_equals_single_device(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), "multi_worker", str(tmp_path / f"worker{index}.npz")],
                env=_environment(TF_CONFIG=config),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        logs = [worker.communicate(timeout=TIMEOUT_S)[1] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, log in zip(workers, logs):
        assert worker.returncode == 0, log[-3000:]
    for index in range(2):
        _assert_equal_to_single_device(
            np.load(tmp_path / f"worker{index}.npz"), {"cnn": 1, "cnn_targets": 1}, 2
        )


def test_a_distributed_dataset_without_its_strategy_is_a_clear_error(zoo, make_x):
    analyzer = tfxai.create_analyzer("gradient", zoo("mlp"))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(make_x(analyzer.model, 4)).batch(2)
    )
    with pytest.raises(InputError, match="pass strategy="):
        analyzer.analyze(dataset)
    with pytest.raises(TypeError, match="tf.distribute.Strategy"):
        analyzer.analyze(make_x(analyzer.model, 4), strategy="mirrored")


def test_an_unbatched_distributed_dataset_is_a_clear_error(zoo, make_x):
    analyzer = tfxai.create_analyzer("gradient", zoo("mlp"))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(make_x(analyzer.model, 4))
    )
    with pytest.raises(InputError, match=r"expects batches of shape \(batch, 6\).*batch the dataset"):
        analyzer.analyze(dataset, strategy=strategy)


def test_per_sample_targets_need_the_undistributed_input(zoo, make_x):
    analyzer = tfxai.create_analyzer("gradient", zoo("mlp"))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    x = make_x(analyzer.model, 4)
    dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(2))
    with pytest.raises(InputError, match="strategy= instead"):
        analyzer.analyze(dataset, [0, 1, 2, 0], strategy=strategy)
    np.testing.assert_allclose(
        analyzer.analyze(x, [0, 1, 2, 0], strategy=strategy),
        analyzer.analyze(x, [0, 1, 2, 0]),
        rtol=1e-6,
        atol=1e-7,
    )
