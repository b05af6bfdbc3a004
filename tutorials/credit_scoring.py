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
# # Tabular data: explaining a credit-scoring model
#
# A loan officer wants to know why the model flags an application as likely
# to default. We train an MLP on synthetic loan applications whose true risk
# formula is known (`tfxai.datasets.make_credit`), explain single decisions
# with a bar chart and a plain-text report, and check that the features that
# carry no evidence get little relevance over the whole test set. About ten
# seconds on two CPU cores.
#
# Pictures go to `TFXAI_TUTORIAL_OUTPUT` (a new temporary folder if unset).

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

OUT = pathlib.Path(os.environ.get("TFXAI_TUTORIAL_OUTPUT") or tempfile.mkdtemp(prefix="tfxai-credit-"))
OUT.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(0)
NAMES, CLASSES = datasets.CREDIT_FEATURES, datasets.CREDIT_CLASSES

# %% [markdown]
# ## Data and model
#
# Features come in their natural units (years, thousands, ratios, counts). A
# `Normalization` layer inside the model standardises them, so the model, and
# its explanations, take raw applications. tfxai passes relevance through
# `Normalization` unchanged: the relevance of "income" is that of the
# standardised income.

# %%
x_train, y_train = datasets.make_credit(6000, seed=0)
x_test, y_test = datasets.make_credit(1000, seed=1)
normalization = keras.layers.Normalization(name="standardise")
normalization.adapt(x_train)
model = keras.Sequential(
    [
        keras.Input((len(NAMES),), name="application"),
        normalization,
        keras.layers.Dense(32, activation="relu", name="hidden1"),
        keras.layers.Dense(16, activation="relu", name="hidden2"),
        keras.layers.Dense(len(CLASSES), activation="softmax", name="risk"),
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
)
model.fit(x_train, y_train, batch_size=64, epochs=8, verbose=0)
print(f"test accuracy: {model.evaluate(x_test, y_test, verbose=0)[1]:.2f}")

# %% [markdown]
# ## Explaining one application
#
# For dense networks on tabular data, LRP-epsilon is the rule to start with
# (see "Which rule should I use?" in the docs). A standardised feature at its
# training mean gets no relevance, so relevance reads as "compared with an
# average applicant". We explain the *default* logit (class 1) of the
# application the model finds riskiest.

# %%
analyzer = tfxai.create_analyzer("lrp.epsilon", model, epsilon=0.01)
probabilities = model.predict(x_test, verbose=0)
riskiest = int(np.argmax(probabilities[:, 1]))
relevance, delta = analyzer.analyze(x_test[riskiest : riskiest + 1], neuron_selection=1, return_delta=True)
logit = relevance.sum() + delta[0]

print(f"application {riskiest}: P(default) = {probabilities[riskiest, 1]:.2f}")
print(
    visualize.feature_report(relevance[0], NAMES, x_test[riskiest], top_k=6, explained=logit, label="default")
)

# %% [markdown]
# The same as a picture: red bars push towards default, blue bars against.

# %%
figure = visualize.plot_feature_bars(
    relevance[0], NAMES, x_test[riskiest], top_k=9, title=f"Why application {riskiest} looks risky"
)
visualize.save_figure(figure, OUT / "credit_features.png")

# %% [markdown]
# ## Over the whole test set
#
# The mean `|relevance|` per feature ranks what the model uses. `batch_size`
# bounds the memory and `verbose=1` shows progress. The three features that
# the risk formula ignores should come last.

# %%
everything = analyzer.analyze(x_test, neuron_selection=1, batch_size=250, verbose=1)
importance = np.abs(everything).mean(axis=0)
for rank, i in enumerate(visualize.top_features(importance), start=1):
    print(f"{rank:2d}. {NAMES[i]:22s} {importance[i]:.3f}")

unused = {"age", "open_accounts", "applicant_id_digit"}
last_three = {NAMES[i] for i in visualize.top_features(importance)[-3:]}
print("features without evidence among the three least relevant:", sorted(unused & last_three))
assert len(unused & last_three) >= 2
print("pictures in", OUT)
