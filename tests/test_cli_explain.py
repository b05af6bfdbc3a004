"""``tfxai explain``: image folders, .npy/.npz and TFRecord inputs into resumable shards equal to ``analyze``."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.image import imread

import tfxai
from tfxai import cli, shards
from tfxai.visualize import heatmap

L = keras.layers
N = 10


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3), name="image"),
            L.Conv2D(4, 3, padding="same", activation="relu", bias_initializer="random_normal"),
            L.Flatten(),
            L.Dense(3, bias_initializer="random_normal"),
        ]
    )
    path = tmp_path_factory.mktemp("models") / "image.keras"
    model.save(path)
    return model, path


def _load(out, index):
    with np.load(shards.shard_path(out, index)) as stored:
        return {key: stored[key] for key in stored.files}


def _merged(out, count):
    parts = [_load(out, k) for k in range(count)]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _assert_equals_analyze(merged, model, x, method="lrp.epsilon", relevance_keys=("relevance",)):
    analyzer = tfxai.create_analyzer(method, model)
    relevance, delta = analyzer.analyze(x, return_delta=True)
    relevance = relevance if isinstance(relevance, list) else [relevance]
    for key, expected in zip(relevance_keys, relevance):
        np.testing.assert_allclose(merged[key], expected, rtol=1e-5, atol=1e-6)
    summed = sum(merged[k].reshape(len(delta), -1).sum(axis=1) for k in relevance_keys)
    np.testing.assert_allclose(merged["explained"] - summed, delta, atol=1e-4)
    np.testing.assert_allclose(merged["predictions"], np.asarray(model(x)), rtol=1e-5, atol=1e-6)


def test_an_image_folder_is_explained_in_sorted_order_with_heatmaps(image_model, tmp_path, capsys):
    model, path = image_model
    pixels = np.random.default_rng(0).integers(0, 256, (N, 8, 8, 3), dtype=np.uint8)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(pixels):
        keras.utils.save_img(folder / f"img{i:02d}.png", image, scale=False)
    keras.utils.save_img(folder / "img10.JPG", pixels[0], scale=False)  # lossy: compared as decoded
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    argv = [
        "explain",
        str(path),
        str(folder),
        "--method",
        "lrp.epsilon",
        "--out",
        str(out),
        "--shard-size",
        "4",
        "--batch-size",
        "3",
        "--scale",
        str(1 / 255),
        "--heatmaps",
    ]
    assert cli.main(argv) == 0
    assert "11/11" in capsys.readouterr().out  # the progress bar
    merged = _merged(out, 3)
    assert merged["names"].tolist() == [f"img{i:02d}" for i in range(N + 1)]
    decoded = keras.utils.img_to_array(keras.utils.load_img(folder / "img10.JPG"))
    x = np.concatenate([pixels, decoded[None]]).astype(np.float32) * np.float32(1 / 255)
    _assert_equals_analyze(merged, model, x)
    drawn = imread(out / "heatmaps" / "img03.png")[..., :3]
    np.testing.assert_allclose(drawn, heatmap(merged["relevance"][3]), atol=1 / 255 + 1e-6)


def test_an_npy_file_resumes_and_skips_finished_shards(image_model, tmp_path, capsys):
    model, path = image_model
    x = np.random.default_rng(1).normal(size=(N, 8, 8, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    argv = [
        "explain",
        str(path),
        str(tmp_path / "x.npy"),
        "--method",
        "lrp.epsilon",
        "--out",
        str(out),
        "--shard-size",
        "4",
        "--quiet",
    ]
    assert cli.main(argv) == 0
    reference = _merged(out, 3)
    _assert_equals_analyze(reference, model, x)

    # An interrupted run: shard 1 never finished (a partial file is left), shard 0 is done. A marker
    # value in the finished shard shows that the rerun leaves it alone.
    marked = dict(_load(out, 0), explained=np.full(4, 12345.0, np.float32))
    np.savez(shards.shard_path(out, 0), **marked)
    shards.shard_path(out, 1).rename(out / ".shard-00001.npz.partial")
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert "wrote 1 shards, skipped 2" in capsys.readouterr().out
    np.testing.assert_array_equal(_load(out, 0)["explained"], marked["explained"])
    for key, value in _load(out, 1).items():
        np.testing.assert_array_equal(value, reference[key][4:8])


def test_a_folder_of_another_run_is_refused(image_model, tmp_path, capsys):
    _, path = image_model
    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8, 3), np.float32))
    base = ["explain", str(path), str(tmp_path / "x.npy"), "--out", str(tmp_path / "out"), "--quiet"]
    assert cli.main(base + ["--method", "gradient"]) == 0
    assert json.loads((tmp_path / "out" / shards.MANIFEST).read_text())["method"] == "gradient"
    assert cli.main(base + ["--method", "lrp.epsilon"]) == 2  # usage error: input that does not fit
    assert "another run (differs in ['method'])" in capsys.readouterr().err


def test_an_npz_file_gives_one_array_per_input_name(zoo, make_x, tmp_path):
    model = zoo("multi_input", True)
    path = tmp_path / "multi.keras"
    model.save(path)
    xa, xb = make_x(model, N, seed=2)
    np.savez(tmp_path / "x.npz", xb=xb, xa=xa)
    out = tmp_path / "out"
    argv = [
        "explain",
        str(path),
        str(tmp_path / "x.npz"),
        "--method",
        "lrp.epsilon",
        "--out",
        str(out),
        "--quiet",
    ]
    assert cli.main(argv) == 0
    _assert_equals_analyze(_merged(out, 1), model, [xa, xb], relevance_keys=("relevance_xa", "relevance_xb"))


def test_a_tfrecord_file_of_examples(image_model, tmp_path):
    model, path = image_model
    x = np.random.default_rng(3).normal(size=(N, 8, 8, 3)).astype(np.float32)
    with tf.io.TFRecordWriter(str(tmp_path / "x.tfrecord")) as writer:
        for sample in x:
            feature = {"image": tf.train.Feature(float_list=tf.train.FloatList(value=sample.ravel()))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    out = tmp_path / "out"
    argv = [
        "explain",
        str(path),
        str(tmp_path / "x.tfrecord"),
        "--method",
        "lrp.epsilon",
        "--out",
        str(out),
        "--shard-size",
        "6",
        "--quiet",
    ]
    assert cli.main(argv) == 0
    merged = _merged(out, 2)
    assert merged["names"].tolist() == [f"{i:08d}" for i in range(N)]
    _assert_equals_analyze(merged, model, x)


@pytest.mark.parametrize(
    "inputs, message",
    [("missing.npy", "do not exist"), ("x.csv", "Expected an image folder"), ("empty", "holds no")],
)
def test_bad_inputs_are_clear_errors(image_model, tmp_path, capsys, inputs, message):
    _, path = image_model
    (tmp_path / "x.csv").write_text("1,2")
    (tmp_path / "empty").mkdir()
    argv = [
        "explain",
        str(path),
        str(tmp_path / inputs),
        "--method",
        "gradient",
        "--out",
        str(tmp_path / "o"),
    ]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
