"""CP-LRP and AttnLRP on a BERT-base-sized KerasHub classifier against a plain tf.function gradient.

The model: ``keras_hub.models.BertBackbone`` with 12 layers, hidden size 768,
12 heads, intermediate size 3072, vocabulary 30522, random weights, and a
``BertTextClassifier`` head (2 classes); inputs of ``--sequence-length``
tokens (default 128) and ``--batch`` samples (default 8), no padding.

Columns as in ``bench.py``: the baseline is a ``tf.function`` with a
``GradientTape`` differentiating each sample's largest logit with respect to
the token-embedding table (one backward pass through the whole network, no
other weight gradients; the sparse gradient's rows are returned); each analyzer runs ``analyzer.compiled("max_activation")``.
Peak memory is TensorFlow's allocator peak during one warm call, above what
was allocated before it (weights, inputs). On a CPU the script turns on
TensorFlow's BFC allocator (``TF_CPU_ALLOCATOR_USE_BFC=true``, set before
TensorFlow is imported) so that the CPU has allocator statistics; without
them it falls back to the process RSS, a lower bound (see ``bench.MemoryMeter``).

Run ``python benchmarks/bench_transformers.py --repeats 3`` (needs keras-hub).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")  # allocator statistics on the CPU
import bench  # noqa: E402

METHODS = ("lrp.cp_lrp", "lrp.attn_lrp", "gradient")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    return parser.parse_args(argv)


def build(keras_hub, args):
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30522,
        num_layers=args.layers,
        num_heads=args.hidden // 64,
        hidden_dim=args.hidden,
        intermediate_dim=4 * args.hidden,
        max_sequence_length=512,
    )
    return keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None)


def baseline_gradient(tf, model):
    table = model.backbone.token_embedding.embeddings

    @tf.function(autograph=False)
    def gradient(x):
        with tf.GradientTape() as tape:
            logits = model(x, training=False)
            explained = tf.reduce_sum(tf.reduce_max(logits, axis=1))
        return tape.gradient(explained, table).values  # the rows of the looked-up tokens

    return gradient


def main(argv=None):
    args = parse_args(argv)
    import keras_hub
    import numpy as np
    import tensorflow as tf

    import tfxai

    model = build(keras_hub, args)
    rng = np.random.default_rng(0)
    shape = (args.batch, args.sequence_length)
    x = {
        "token_ids": tf.constant(rng.integers(1, 30522, shape), tf.int32),
        "segment_ids": tf.zeros(shape, tf.int32),
        "padding_mask": tf.ones(shape, tf.int32),
    }
    device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
    source = bench.memory_source(tf, device, "auto")

    def meter():
        return bench.MemoryMeter(tf, source, device)

    makers = {"baseline gradient": lambda: baseline_gradient(tf, model)}
    for method in METHODS:
        makers[method] = lambda method=method: _compiled(tfxai, model, method)
    functions, first, peak = {}, {}, {}
    for name, make in makers.items():
        bench.log(f"preparing {name}")
        functions[name], first[name], peak[name] = bench.prepare(tf, meter, make, x, args.warmup)
    wall, _ = bench.time_round_robin(tf, functions, x, args.repeats, verbose=True)
    base = statistics.median(wall["baseline gradient"])
    print(
        f"BERT {args.layers} layers, hidden {args.hidden}, sequence {args.sequence_length}, batch {args.batch}, "
        f"{device}, {args.repeats} repeats, memory: {source}\n"
    )
    print("| method | median ms | ratio vs gradient | first call s | peak MB | peak ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in functions:
        median = statistics.median(wall[name])
        peak_ratio = peak[name] / peak["baseline gradient"] if peak["baseline gradient"] else float("nan")
        print(
            f"| {name} | {median * 1e3:.0f} | {median / base:.2f} | {first[name]:.1f} | "
            f"{peak[name] / 2**20:.0f} | {peak_ratio:.2f} |"
        )


def _compiled(tfxai, model, method):
    analyzer = tfxai.create_analyzer(method, model)
    function, names = analyzer.compiled("max_activation"), [spec.name for spec in analyzer.input_specs]
    return lambda x: function(*[x[name] for name in names])


if __name__ == "__main__":
    main()
