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
# # Which words drove the prediction? Explaining a sentiment LSTM
#
# We generate sentences of neutral filler words with ONE planted sentiment word each
# ("great", "awful", ...), train an Embedding + LSTM classifier on them, explain its
# predictions with LRP, and check that the explanation points at the planted word.
# No downloads; about ten seconds on two CPU cores:
#
#     python tutorials/sentiment_text.py
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
import numpy as np  # noqa: E402

import tfxai  # noqa: E402
from tfxai import datasets, visualize  # noqa: E402

OUTPUT = pathlib.Path(os.environ.get("TFXAI_TUTORIAL_OUTPUT") or tempfile.mkdtemp(prefix="tfxai_sentiment_"))
OUTPUT.mkdir(parents=True, exist_ok=True)
WORDS = datasets.SENTIMENT_VOCABULARY

# %% [markdown]
# ## Data and model
# Token id 0 is padding; `mask_zero=True` makes the LSTM skip it.

# %%
keras.utils.set_random_seed(0)
tokens, labels, _ = datasets.make_sentiment(3000, seed=0)
test_tokens, test_labels, test_planted = datasets.make_sentiment(300, seed=1)

model = keras.Sequential(
    [
        keras.Input((tokens.shape[1],), dtype="int32"),
        keras.layers.Embedding(len(WORDS), 16, mask_zero=True),
        keras.layers.LSTM(16),
        keras.layers.Dense(2),  # logits: negative, positive
    ]
)
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
model.fit(tokens, labels, epochs=4, batch_size=64, verbose=0)
accuracy = model.evaluate(test_tokens, test_labels, verbose=0)[1]
print(f"test accuracy: {accuracy:.3f}")

# %% [markdown]
# ## Explain
# The analyzer takes the integer token ids and returns one relevance value per token,
# shape (sentences, tokens): the relevance of a token's embedding vector, summed.
# Inside the LSTM, LRP follows Arras et al. (2017): linear maps LRP-epsilon, gates
# get no relevance.

# %%
analyzer = tfxai.create_analyzer("lrp.epsilon", model)
relevance = analyzer.analyze(test_tokens)  # explains the predicted class
print("relevance shape:", relevance.shape)
print("largest relevance on padding:", float(np.abs(relevance[test_tokens == 0]).max()))

# %% [markdown]
# ## Did it find the planted word?
# A sentence counts when its most relevant token is the planted word. Picking a token
# at random would score about 1/11.

# %%
top1 = float(np.mean(relevance.argmax(axis=1) == test_planted))
print(f"planted word ranked first in {top1:.1%} of test sentences")
assert top1 >= 0.9, top1

# %% [markdown]
# ## Pictures: coloured text (a figure, and HTML for notebooks or web pages)

# %%
for i in range(3):
    words = [WORDS[t] for t in test_tokens[i] if t != 0]
    figure = visualize.text_heatmap(words, relevance[i])
    visualize.save_figure(figure, OUTPUT / f"sentence_{i}.png")
    print(
        " ".join(words), "->", ["negative", "positive"][int(model(test_tokens[i : i + 1]).numpy().argmax())]
    )
html = "\n".join(
    visualize.text_html([WORDS[t] for t in test_tokens[i] if t != 0], relevance[i]) for i in range(10)
)
(OUTPUT / "sentences.html").write_text(html)
print("pictures written to", OUTPUT)
