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
# # Which words made a KerasHub BERT decide?
#
# We build a tiny KerasHub `BertTextClassifier` from a config (random weights, no
# download, no tokenizer: we feed token ids), train it on generated sentences in which
# ONE planted sentiment word decides the label, and explain its decisions with the two
# transformer rules tfxai offers: CP-LRP (attention weights held constant) and AttnLRP.
# About half a minute on two CPU cores (needs `pip install tfxai[hub]`):
#
#     python tutorials/kerashub_bert_words.py
#
# Pictures go to the directory in the environment variable TFXAI_TUTORIAL_OUTPUT, or
# to a new temporary directory.

# %%
import os
import pathlib
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import tfxai  # noqa: E402
from tfxai import datasets, visualize  # noqa: E402

OUTPUT = pathlib.Path(os.environ.get("TFXAI_TUTORIAL_OUTPUT") or tempfile.mkdtemp(prefix="tfxai_bert_"))
OUTPUT.mkdir(parents=True, exist_ok=True)
WORDS = datasets.SENTIMENT_VOCABULARY

# %% [markdown]
# ## Data and model
# KerasHub's BERT takes three inputs: token ids, segment ids and a padding mask (id 0 is
# padding here).

# %%
keras.utils.set_random_seed(0)
tokens, labels, _ = datasets.make_sentiment(2000, seed=0)
test_tokens, test_labels, test_planted = datasets.make_sentiment(300, seed=1)


def features(ids):
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": (ids != 0).astype("int32")}


backbone = keras_hub.models.BertBackbone(
    vocabulary_size=len(WORDS),
    num_layers=1,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    max_sequence_length=16,
    dropout=0.0,
)
model = keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None, dropout=0.0)
model.compile(
    optimizer=keras.optimizers.Adam(3e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.fit(features(tokens), labels, epochs=4, batch_size=32, verbose=0)
print(f"test accuracy: {model.evaluate(features(test_tokens), test_labels, verbose=0)[1]:.3f}")

# %% [markdown]
# ## What tfxai sees inside
# The transformer blocks are KerasHub layers without a rule of their own: tfxai captures
# the Keras layers and operations their `call` is made of. `tfxai.check` lists every node
# and its rule without running anything.

# %%
report = tfxai.check(model, "cp_lrp", verbose=False)
print(f"{len(report.nodes)} nodes, all supported: {report.ok}")

# %% [markdown]
# ## Explain
# Relevance comes back per input; `relevance["token_ids"]` holds one value per token: the
# relevance of its embedding vector, summed. Padding gets exactly zero: the attention
# mask keeps every other token from reading it.

# %%
found = {}
for method in ("lrp.cp_lrp", "lrp.attn_lrp"):
    relevance = tfxai.create_analyzer(method, model).analyze(
        features(test_tokens), neuron_selection=test_labels
    )
    per_token = relevance["token_ids"]
    found[method] = per_token
    top1 = float(np.mean(per_token.argmax(axis=1) == test_planted))
    print(
        f"{method}: planted word ranked first in {top1:.1%}; padding max |R| {np.abs(per_token[test_tokens == 0]).max()}"
    )
    assert top1 >= 0.95, top1

# %% [markdown]
# ## Pictures

# %%
for i in range(3):
    words = [WORDS[t] for t in test_tokens[i] if t != 0]
    visualize.save_figure(visualize.text_heatmap(words, found["lrp.cp_lrp"][i]), OUTPUT / f"sentence_{i}.png")
    print(" ".join(words), "->", ["negative", "positive"][int(test_labels[i])])
html = "\n".join(
    visualize.text_html([WORDS[t] for t in test_tokens[i] if t != 0], found["lrp.attn_lrp"][i])
    for i in range(10)
)
(OUTPUT / "sentences.html").write_text(html)
print("pictures written to", OUTPUT)
