"""The Apache Beam transform on the DirectRunner equals ``analyze`` (needs the ``beam`` extra)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfxai

beam = pytest.importorskip(
    "apache_beam", reason="the beam extra (pip install 'tfxai[beam]') is not installed"
)
from tfxai.integrations import beam as tfxai_beam  # noqa: E402

N = 300
DIRECT = ["--runner=DirectRunner", "--direct_num_workers=1", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def explainer(zoo, tmp_path_factory):
    analyzer = tfxai.create_analyzer("lrp.epsilon", zoo("cnn", True), epsilon=0.1)
    return analyzer, str(tfxai.export.export_analyzer(analyzer, tmp_path_factory.mktemp("explainer") / "1"))


def _assert_equals_analyze(results, analyzer, x, keys):
    assert sorted(results) == keys  # every input once: none lost, none doubled
    relevance, delta = analyzer.analyze(x, return_delta=True)
    got = np.stack([results[k]["relevance"] for k in keys])
    np.testing.assert_allclose(got, relevance, rtol=1e-5, atol=1e-6)
    explained = np.array([results[k]["explained"] for k in keys])
    np.testing.assert_allclose(explained - got.reshape(len(x), -1).sum(axis=1), delta, atol=1e-4)
    predictions = np.stack([results[k]["predictions"] for k in keys])
    np.testing.assert_allclose(predictions, np.asarray(analyzer.model(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_explain_to_tfrecord_on_the_direct_runner_equals_analyze(explainer, make_x, tmp_path):
    analyzer, saved = explainer
    x = make_x(analyzer.model, N, seed=5)
    prefix = str(tmp_path / "explanations")
    options = beam.options.pipeline_options.PipelineOptions(DIRECT)
    with beam.Pipeline(options=options) as pipeline:
        _ = (
            pipeline
            | beam.Create(list(enumerate(x)))
            | tfxai_beam.ExplainToTFRecord(saved, prefix, num_shards=3, max_batch_size=32)
        )
    files = sorted(p.name for p in tmp_path.glob("explanations-*.tfrecord"))
    assert files == [f"explanations-0000{i}-of-00003.tfrecord" for i in range(3)]
    _assert_equals_analyze(tfxai_beam.read_results(prefix + "-*"), analyzer, x, list(range(N)))


@pytest.mark.slow
def test_the_command_reads_keyed_tfrecord_examples(explainer, make_x, tmp_path):
    analyzer, saved = explainer
    x = make_x(analyzer.model, 40, seed=6)
    with tf.io.TFRecordWriter(str(tmp_path / "inputs.tfrecord")) as writer:
        for i, sample in enumerate(x):
            feature = {
                "key": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"sample-{i:03d}".encode()])),
                analyzer.input_specs[0].name: tf.train.Feature(
                    float_list=tf.train.FloatList(value=sample.ravel())
                ),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    prefix = str(tmp_path / "out" / "explanations")
    tfxai_beam.main(
        ["--saved_model", saved, "--inputs", str(tmp_path / "inputs.tfrecord"), "--output", prefix] + DIRECT
    )
    keys = [f"sample-{i:03d}" for i in range(40)]
    _assert_equals_analyze(tfxai_beam.read_results(prefix + "-*"), analyzer, x, keys)


def test_an_unknown_signature_is_a_clear_error(explainer):
    _, saved = explainer
    with pytest.raises(ValueError, match=r"has signatures .*explain_target.*Received: signature='nope'"):
        tfxai_beam.ExplainerModelHandler(saved, "nope").load_model()
