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
# # Explain a next-token prediction of a causal language model
#
# A tiny KerasHub `GPT2CausalLM`, built from a config and trained for a few seconds on a
# generated language in which the next token is always the token two steps back plus
# one (`..., a, x, a+1, y, a+2, ...`). We let it generate a few tokens and ask, for each
# generated token, which context tokens the prediction rests on. No download, no
# tokenizer; under a minute on two CPU cores (needs `pip install tfxai[hub]`):
#
#     python tutorials/causal_lm_next_token.py
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
from tfxai import visualize  # noqa: E402

OUTPUT = pathlib.Path(os.environ.get("TFXAI_TUTORIAL_OUTPUT") or tempfile.mkdtemp(prefix="tfxai_lm_"))
OUTPUT.mkdir(parents=True, exist_ok=True)
VOCAB, LENGTH = 20, 12

# %% [markdown]
# ## A language with a known rule
# Token `t` is `token[t - 2] + 1` (mod 20): the evidence for each next token sits two
# positions back.

# %%
rng = np.random.default_rng(0)


def sentences(n):
    ids = np.zeros((n, LENGTH), np.int32)
    ids[:, :2] = rng.integers(0, VOCAB, (n, 2))
    for t in range(2, LENGTH):
        ids[:, t] = (ids[:, t - 2] + 1) % VOCAB
    return ids


keras.utils.set_random_seed(0)
backbone = keras_hub.models.GPT2Backbone(
    vocabulary_size=VOCAB,
    num_layers=2,
    num_heads=2,
    hidden_dim=32,
    intermediate_dim=64,
    max_sequence_length=LENGTH,
)
model = keras_hub.models.GPT2CausalLM(backbone, preprocessor=None)
train = sentences(3000)
x = {"token_ids": train[:, :-1], "padding_mask": np.ones_like(train[:, :-1])}
model.compile(
    optimizer=keras.optimizers.Adam(3e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    weighted_metrics=[],
)
model.fit(x, train[:, 1:], epochs=4, batch_size=64, verbose=0)

# %% [markdown]
# ## Generate, and explain each generated token
# The decoder blocks compute a causal mask from their input's length, so tfxai captures
# them at a fixed length: `sequence_length=`. The prompt is right-padded to that length;
# the token predicted at position `p` is the logit `(p, token)` of the `(positions,
# vocabulary)` output, flat index `p * VOCAB + token`.

# %%
SEQ = LENGTH - 1
analyzer = tfxai.create_analyzer("lrp.cp_lrp", model, sequence_length=SEQ)
prompt = sentences(1)[0, :5]
ids = np.zeros((1, SEQ), np.int32)
ids[0, : len(prompt)] = prompt
rows, generated = [], []
for position in range(len(prompt) - 1, SEQ - 1):
    x = {"token_ids": ids, "padding_mask": (np.arange(SEQ) <= position).astype("int32")[None]}
    token = int(np.asarray(model(x))[0, position].argmax())
    relevance = analyzer.analyze(x, neuron_selection=position * VOCAB + token)["token_ids"][0]
    rows.append(relevance)
    generated.append(token)
    ids[0, position + 1] = token
    print(f"position {position}: predicts {token}; most relevant context position {int(relevance.argmax())}")

# %% [markdown]
# ## Did it use the right evidence?
# The rule says the evidence is two positions back. Future positions get exactly zero
# (the causal mask).

# %%
rows = np.array(rows)
hits = [int(np.abs(row).argmax()) == len(prompt) - 2 + i for i, row in enumerate(rows)]
print(f"evidence two steps back ranked first for {sum(hits)} of {len(hits)} generated tokens")
assert sum(hits) >= len(hits) - 1, hits
for i, row in enumerate(rows):
    assert np.all(row[len(prompt) + i :] == 0.0)

# %% [markdown]
# ## One row per generated token

# %%
words = [str(t) for t in ids[0]]
figure = visualize.generation_heatmap(words, [str(g) for g in generated], rows)
visualize.save_figure(figure, OUTPUT / "generation.png")
print("picture written to", OUTPUT)
