"""Long analyses show a progress bar over batches, and nothing when verbose=0."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)]
    )


@pytest.mark.parametrize("as_dataset", [False, True])
def test_verbose_shows_a_progress_bar_and_verbose_0_is_silent(as_dataset, capsys):
    analyzer = tfxai.create_analyzer("lrp.epsilon", _model())
    x = np.random.default_rng(0).normal(size=(10, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(x).batch(3) if as_dataset else x
    quiet = analyzer.analyze(data, batch_size=3, verbose=0)
    assert capsys.readouterr().out == ""
    loud = analyzer.analyze(data, batch_size=3, verbose=1)
    out = capsys.readouterr().out
    assert "10/" in out
    np.testing.assert_array_equal(quiet, loud)
