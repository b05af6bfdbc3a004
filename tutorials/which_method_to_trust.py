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
# # Which method should I trust for my model?
#
# Heatmaps that look convincing are not evidence that a method explains *your*
# model. `tfxai.evaluate` measures it: how much the output drops when what a
# method calls relevant is removed (faithfulness), whether the relevance falls
# on the real evidence (localisation), whether the explanation changes when the
# model's weights or the explained class do (sanity), plus cost, robustness
# and sparseness.
#
# We need data where the evidence is known. tfxai generates two such sets:
# images of shapes with the mask of each shape, and tabular rows whose label
# depends on two planted columns. About a minute on two CPU cores; no
# downloads. Tables and plots go to `TFXAI_TUTORIAL_OUTPUT` (a new temporary
# folder if unset).

# %%
import os
import pathlib
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import tfxai  # noqa: E402
from tfxai import datasets, visualize  # noqa: E402

OUT = pathlib.Path(os.environ.get("TFXAI_TUTORIAL_OUTPUT") or tempfile.mkdtemp(prefix="tfxai-trust-"))
OUT.mkdir(parents=True, exist_ok=True)
began = time.perf_counter()

# %% [markdown]
# ## Images with known evidence
#
# The demo CNN learns to tell four shapes apart; the shape is the only
# evidence of its class, and `make_shapes(..., return_masks=True)` says where
# it is. `train_shapes_cnn` draws its test images with `seed + 1`, so the
# same call with masks gives the masks of the test images.

# %%
model, (x_test, y_test), accuracy = datasets.train_shapes_cnn(samples=1500, epochs=4, seed=0)
_, _, masks = datasets.make_shapes(200, seed=1, return_masks=True)
x, y, masks = x_test[:16], y_test[:16], masks[:16]
print(f"test accuracy {accuracy:.2f}; evaluating on {len(x)} test images")

# %% [markdown]
# ## The comparison
#
# Every method explains the same neuron (the predicted class) of the same
# images. Faithfulness is measured on 4x4-pixel patches (64 regions, one per
# step), replaced by each image's mean colour: `morf` is the area over the
# curve when the most relevant patches go first (higher is better), `lerf`
# when the least relevant go first (lower is better), `abpc` their gap.
# The sanity checks report the rank correlation with the explanation of a
# fully randomised copy of the model (`randomisation`) and the SSIM with the
# explanation of another class (`random_logit`): lower means the method
# really depends on the model and the class. `random` is noise: the floor.

# %%
IMAGE_METHODS = {
    "gradient": {},
    "input_t_gradient": {},
    "integrated_gradients": {"steps": 16},
    "lrp.epsilon": {"epsilon": 0.1},
    "lrp.epsilon_plus_flat": {},
    "lrp.epsilon_gamma_box": {"low": 0.0, "high": 1.0},
    "grad_cam": {},
    "occlusion": {"window": 4},
    "random": {},
}
IMAGE_METRICS = [
    "morf",
    "lerf",
    "abpc",
    "insertion",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "pointing_game",
    "randomisation",
    "random_logit",
    "sparseness",
]
images = tfxai.evaluate(model, x, IMAGE_METHODS, IMAGE_METRICS, masks=masks, patch_size=4, verbose=0)
print(images.to_markdown())

# %% [markdown]
# Read the table per column, not as a single verdict: a method can be faithful
# and still spread its relevance beyond the object, or localise well and fail
# a sanity check. Time and memory are those of explaining the 16 images (with
# tracing), so they show the price of each method too.
#
# ## The protocol matters
#
# Faithfulness depends on how regions are removed. Here are the same
# explanations scored with 2x2 patches (256 regions in 32 steps): compare the
# order of the methods with the 4x4 column above before trusting either.

# %%
fine = tfxai.evaluate(model, x, IMAGE_METHODS, ["morf", "abpc"], patch_size=2, steps=32, verbose=0)
print(fine.to_markdown())
ranking = {
    patch: [m for m, _ in sorted(((m, r.mean(m, "abpc")) for m in r.methods), key=lambda p: -p[1])]
    for patch, r in ((4, images), (2, fine))
}
print("abpc ranking, 4x4 patches:", ", ".join(ranking[4]))
print("abpc ranking, 2x2 patches:", ", ".join(ranking[2]))

# %% [markdown]
# The curves behind `morf` and `lerf`: the mean explained logit as patches
# are removed. A faithful method's MoRF curve falls fast and its LeRF curve
# stays up.

# %%
visualize.save_figure(images.plot(["morf", "lerf"]), OUT / "perturbation_curves.png")

# %% [markdown]
# ## Tabular data with planted features
#
# Ten standard-normal columns; the label is whether columns 1 and 4 sum to a
# positive number. The masks mark those two columns, so localisation asks how
# much of the relevance lands on them. Patches are single features here, and
# robustness (`max_sensitivity`: the largest relative change of the
# explanation under noise of 5% of each feature's range) is cheap enough to
# include.

# %%
x_rows, y_rows, row_masks = datasets.make_planted_features(3000, features=10, planted=(1, 4), seed=0)
keras.utils.set_random_seed(0)
mlp = keras.Sequential(
    [
        keras.Input((10,)),
        keras.layers.Dense(32, activation="relu", name="dense1"),
        keras.layers.Dense(32, activation="relu", name="dense2"),
        keras.layers.Dense(2, activation="softmax", name="predictions"),
    ]
)
mlp.compile(
    optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
)
mlp.fit(x_rows[:2500], y_rows[:2500], epochs=8, batch_size=64, verbose=0)
print(f"tabular test accuracy {mlp.evaluate(x_rows[2500:], y_rows[2500:], verbose=0)[1]:.2f}")

TABULAR_METHODS = {
    "gradient": {},
    "input_t_gradient": {},
    "integrated_gradients": {"steps": 16},
    "lrp.epsilon": {"epsilon": 0.1},
    "lrp.alpha_1_beta_0": {},
    "occlusion": {"window": 1},
    "random": {},
}
TABULAR_METRICS = [
    "morf",
    "lerf",
    "abpc",
    "faithfulness_correlation",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "randomisation",
    "random_logit",
    "max_sensitivity",
    "sparseness",
]
tabular = tfxai.evaluate(
    mlp,
    x_rows[2500:2564],
    TABULAR_METHODS,
    TABULAR_METRICS,
    masks=row_masks[2500:2564],
    patch_size=1,
    verbose=0,
)
print(tabular.to_markdown())

# %% [markdown]
# The plain gradient scores lower on faithfulness and localisation than input
# x gradient here: it is large wherever the model is sensitive, not only where
# the evidence is. Occlusion of one feature at a time removes exactly what
# MoRF removes, so it is close to the best there; alpha-1-beta-0 drops the
# negative evidence and loses on faithfulness correlation.
#
# ## Keep the tables
#
# `to_markdown()` and `to_csv()` write what you see; the docs page
# "Which method should I trust?" shows these two tables, regenerated with
# `python docs/generate_evaluation.py`.

# %%
(OUT / "comparison_images.md").write_text(images.to_markdown() + "\n")
(OUT / "comparison_images_2x2.md").write_text(fine.to_markdown() + "\n")
(OUT / "comparison_tabular.md").write_text(tabular.to_markdown() + "\n")
images.to_csv(OUT / "comparison_images.csv")
print(f"tables and curves in {OUT} ({time.perf_counter() - began:.0f} s)")
