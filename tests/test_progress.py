"""Long analyses show a progress bar that counts samples, and nothing when verbose=0."""

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


class _Recorder:
    """Stands in for ``keras.utils.Progbar``: records its target and every update."""

    made = []

    def __init__(self, target, verbose=1):
        self.target, self.updates = target, []
        _Recorder.made.append(self)

    def update(self, current, finalize=None):
        self.updates.append(current)


@pytest.mark.parametrize("as_dataset", [False, True])
def test_the_progress_bar_counts_samples_not_batches(as_dataset, monkeypatch):
    # The documented unit (docstring of analyze, getting started, big datasets): samples.
    monkeypatch.setattr(keras.utils, "Progbar", _Recorder)
    _Recorder.made.clear()
    analyzer = tfxai.create_analyzer("gradient", _model())
    x = np.random.default_rng(0).normal(size=(7, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(x).batch(4) if as_dataset else x
    analyzer.analyze(data, batch_size=3, verbose=1)
    (bar,) = _Recorder.made
    if as_dataset:  # elements of 4 and 3 samples, split into batches of at most 3: 3, 1, 3
        assert bar.target is None and bar.updates == [3, 4, 7, 7]
    else:
        assert bar.target == 7 and bar.updates == [3, 6, 7]
