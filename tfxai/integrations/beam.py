"""Apache Beam: explain with an exported explainer SavedModel through ``RunInference``.

Needs the ``beam`` extra (``pip install "tfxai[beam]"``); ``import tfxai``
never imports this module. The explainer is a SavedModel written by
:func:`tfxai.export.export_analyzer` (or ``tfxai export``): it needs neither
tfxai nor Keras on the workers, only TensorFlow.

:class:`ExplainerModelHandler` loads it with ``tf.saved_model.load`` and runs
one signature on the batches ``RunInference`` forms. :class:`ExplainToTFRecord`
is the whole pipeline step: keyed examples in, sharded TFRecord files of
``tf.train.Example`` out, one record per input with its key and every output
of the signature (``predictions``, ``relevance``, ``explained``: see
:func:`tfxai.export.output_names`). :func:`read_results` reads them back.

Run as a module, it explains a TFRecord file of examples on any runner; see
the Dataflow command in the documentation (``docs/big_datasets.md``).
"""

from __future__ import annotations

import argparse

import numpy as np

from tfxai.errors import ParameterError

try:
    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError('tfxai.integrations.beam needs Apache Beam: pip install "tfxai[beam]"') from error

KEY = "key"
"""Feature of the output records (and of the command's input records) holding the example's key."""


class ExplainerModelHandler(ModelHandler):
    """A ``RunInference`` model handler for one signature of an exported explainer.

    Parameters
    ----------
    saved_model_dir : str
        The SavedModel directory (a local path or a ``gs://`` URL).
    signature : str
        ``serving_default`` (the largest output of each example), a method's
        name, or its ``_target`` signature (then each example also holds ``target``).
    min_batch_size, max_batch_size : int
        Bounds of the batches ``RunInference`` forms.

    Notes
    -----
    An example is a NumPy array (signatures with one input) or a dict
    ``{input name: array}``, without a batch axis. Each prediction is a
    ``PredictionResult`` whose ``inference`` is ``{output name: array}``.
    """

    def __init__(
        self, saved_model_dir: str, signature: str = "serving_default", *, min_batch_size=1, max_batch_size=64
    ):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self.saved_model_dir = str(saved_model_dir)
        self.signature = signature

    def load_model(self):
        """The signature's concrete function, from ``tf.saved_model.load``."""
        import tensorflow as tf  # noqa: PLC0415

        signatures = tf.saved_model.load(self.saved_model_dir).signatures
        if self.signature not in signatures:
            raise ParameterError(
                f"The SavedModel {self.saved_model_dir!r} has signatures {sorted(signatures)}. "
                f"Received: signature={self.signature!r}"
            )
        return signatures[self.signature]

    def run_inference(self, batch, model, inference_args=None):
        """Explain one batch of examples; one ``PredictionResult`` per example, in batch order."""
        names = sorted(model.structured_input_signature[1])
        if isinstance(batch[0], dict):
            stacked = {name: np.stack([example[name] for example in batch]) for name in names}
        elif len(names) == 1:
            stacked = {names[0]: np.stack(batch)}
        else:
            raise ParameterError(
                f"Examples of this signature are dicts with keys {names}. Received: {type(batch[0])}"
            )
        outputs = {key: value.numpy() for key, value in model(**stacked).items()}
        return [
            PredictionResult(example, {key: value[i] for key, value in outputs.items()})
            for i, example in enumerate(batch)
        ]

    def get_metrics_namespace(self):
        return "tfxai_explainer"


def to_example(key, result) -> bytes:
    """A serialized ``tf.train.Example``: ``key``, and per output a float list and its ``<name>.shape``."""
    import tensorflow as tf  # noqa: PLC0415

    train = tf.train
    key_feature = (
        train.Feature(int64_list=train.Int64List(value=[key]))
        if isinstance(key, (int, np.integer))
        else train.Feature(bytes_list=train.BytesList(value=[str(key).encode()]))
    )
    features = {KEY: key_feature}
    for name, value in result.inference.items():
        value = np.asarray(value, np.float32)
        features[name] = train.Feature(float_list=train.FloatList(value=value.ravel()))
        features[f"{name}.shape"] = train.Feature(int64_list=train.Int64List(value=value.shape))
    return train.Example(features=train.Features(feature=features)).SerializeToString()


class ExplainToTFRecord(beam.PTransform):
    """``(key, example)`` pairs -> explanations in sharded TFRecord files.

    Parameters
    ----------
    saved_model_dir : str
        An exported explainer (:func:`tfxai.export.export_analyzer`).
    output_prefix : str
        Files are ``<prefix>-<shard>-of-<num_shards>.tfrecord``.
    signature : str
        The signature to run, see :class:`ExplainerModelHandler`.
    num_shards : int
        Output files; 0 lets the runner choose.
    max_batch_size : int
        Largest batch handed to the SavedModel.
    """

    def __init__(
        self, saved_model_dir, output_prefix, *, signature="serving_default", num_shards=0, max_batch_size=64
    ):
        super().__init__()
        self.handler = KeyedModelHandler(
            ExplainerModelHandler(saved_model_dir, signature, max_batch_size=max_batch_size)
        )
        self.output_prefix, self.num_shards = output_prefix, num_shards

    def expand(self, keyed_examples):
        return (
            keyed_examples
            | "Explain" >> RunInference(self.handler)
            | "ToExample" >> beam.MapTuple(to_example)
            | "Write"
            >> beam.io.WriteToTFRecord(
                self.output_prefix, file_name_suffix=".tfrecord", num_shards=self.num_shards
            )
        )


def read_results(pattern) -> dict:
    """Read output records back: ``{key: {output name: array}}``.

    Parameters
    ----------
    pattern : str
        A glob of output files, e.g. ``"out/explanations-*.tfrecord"``.
    """
    import tensorflow as tf  # noqa: PLC0415

    results = {}
    for record in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern)).as_numpy_iterator():
        features = tf.train.Example.FromString(record).features.feature
        key = _key(features[KEY])
        names = [n for n in features if n != KEY and not n.endswith(".shape")]
        results[key] = {
            n: np.asarray(features[n].float_list.value, np.float32).reshape(
                features[f"{n}.shape"].int64_list.value
            )
            for n in names
        }
    return results


def _key(feature):
    """An int64 or bytes key feature as int or str."""
    return feature.int64_list.value[0] if feature.int64_list.value else feature.bytes_list.value[0].decode()


def parse_input(record: bytes, specs: dict):
    """``(key, example)`` of an input record: ``key`` and one flat feature per input name."""
    import tensorflow as tf  # noqa: PLC0415

    features = tf.train.Example.FromString(record).features.feature
    key = _key(features[KEY])
    example = {}
    for name, (shape, dtype) in specs.items():
        values = (
            features[name].int64_list.value
            if np.dtype(dtype).kind in "iu"
            else features[name].float_list.value
        )
        example[name] = np.asarray(values, dtype).reshape(shape)
    return key, example


def input_specs(saved_model_dir: str, signature: str = "serving_default") -> dict:
    """``{input name: (per-example shape, dtype name)}`` of a signature of the SavedModel."""
    import tensorflow as tf  # noqa: PLC0415

    function = tf.saved_model.load(saved_model_dir).signatures[signature]
    return {
        name: (tuple(spec.shape[1:]), spec.dtype.name)
        for name, spec in function.structured_input_signature[1].items()
    }


def main(argv=None):
    """``python -m tfxai.integrations.beam --saved_model DIR --inputs GLOB --output PREFIX [runner options]``."""
    parser = argparse.ArgumentParser(
        description="Explain TFRecord examples with an exported explainer on Beam."
    )
    parser.add_argument("--saved_model", required=True, help="the explainer SavedModel (local or gs://)")
    parser.add_argument(
        "--inputs",
        required=True,
        help="TFRecord files of tf.train.Example: 'key' + one flat feature per input",
    )
    parser.add_argument("--output", required=True, help="output prefix of the sharded .tfrecord files")
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--num_shards", type=int, default=0)
    args, pipeline_args = parser.parse_known_args(argv)
    specs = input_specs(args.saved_model, args.signature)
    options = beam.options.pipeline_options.PipelineOptions(pipeline_args)
    with beam.Pipeline(options=options) as pipeline:
        _ = (
            pipeline
            | "Read" >> beam.io.ReadFromTFRecord(args.inputs)
            | "Parse" >> beam.Map(parse_input, specs)
            | ExplainToTFRecord(
                args.saved_model, args.output, signature=args.signature, num_shards=args.num_shards
            )
        )


if __name__ == "__main__":
    main()
