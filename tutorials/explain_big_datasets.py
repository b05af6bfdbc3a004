# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explaining big datasets
#
# Three patterns, from simple to parallel: `analyze` with `batch_size` and a
# progress bar; a `tf.data` pipeline streamed to a memory-mapped file on
# disk; and `analyze` with a `tf.distribute` strategy, which runs the
# analyzer's `tf.function` on every replica. The strategy here mirrors over two logical CPU
# devices so that the tutorial runs anywhere; on a machine with GPUs use
# `tf.distribute.MirroredStrategy()` and the same code. A few seconds on two
# CPU cores.
#
# Files go to `TFXAI_TUTORIAL_OUTPUT` (a new temporary folder if unset).

# %%
import os
import pathlib
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so that MirroredStrategy has two replicas. This must
# happen before TensorFlow first uses the CPU.
CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfxai  # noqa: E402
from tfxai import datasets  # noqa: E402

OUT = pathlib.Path(os.environ.get("TFXAI_TUTORIAL_OUTPUT") or tempfile.mkdtemp(prefix="tfxai-big-"))
OUT.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(0)

x, y = datasets.make_credit(5000, seed=0)
model = keras.Sequential(
    [
        keras.Input((x.shape[1],), name="application"),
        keras.layers.Normalization(mean=x.mean(axis=0), variance=x.var(axis=0)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(2),
    ]
)
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(x, y, epochs=2, batch_size=128, verbose=0)
analyzer = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.01)

# %% [markdown]
# ## 1. `batch_size` and a progress bar
#
# `analyze` splits the input into batches of at most `batch_size` samples,
# which bounds the memory, and shows a Keras progress bar with `verbose=1`
# (silent with the default `verbose=0`). The analyzer's `tf.function` is
# traced once: its batch dimension is `None`, so the last, smaller batch does
# not retrace it.

# %%
reference = analyzer.analyze(x, batch_size=1000, verbose=1)

# %% [markdown]
# ## 2. A `tf.data` pipeline, streamed to disk
#
# `analyze` also takes a `tf.data.Dataset` of batches (labels are ignored), but
# it returns all relevance at once. For more samples than fit in memory,
# explain one chunk of the pipeline at a time and write it to a memory-mapped
# `.npy` file.

# %%
pipeline = tf.data.Dataset.from_tensor_slices((x, y)).batch(500).prefetch(2)
stored = np.lib.format.open_memmap(OUT / "relevance.npy", mode="w+", dtype=np.float32, shape=x.shape)
done = 0
progress = keras.utils.Progbar(len(x))
for features, _ in pipeline:
    chunk = analyzer.analyze(features)
    stored[done : done + len(chunk)] = chunk
    done += len(chunk)
    progress.update(done)
stored.flush()
np.testing.assert_allclose(np.load(OUT / "relevance.npy", mmap_mode="r"), reference, atol=1e-5)

# %% [markdown]
# ## 3. Several devices with `tf.distribute`
#
# Give `analyze` a strategy: each global batch is split across the replicas,
# every replica runs the analyzer's compiled function on its share, and the
# results come back in input order. A dataset distributed by the strategy
# works too. Create the analyzer outside the strategy's scope: the model's
# weights are only read.

# %%
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
relevance = analyzer.analyze(x, batch_size=1000, strategy=strategy)
print(
    f"{strategy.num_replicas_in_sync} replicas; largest difference to analyze:",
    np.abs(relevance - reference).max(),
)
np.testing.assert_allclose(relevance, reference, atol=1e-5)

distributed = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(1000))
np.testing.assert_allclose(analyzer.analyze(distributed, strategy=strategy), reference, atol=1e-5)
