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
# # Quickstart: explain a CNN's predictions
#
# We train a small CNN on images tfxai generates (a coloured shape on a noisy
# background; the shape is the class), explain its predictions with LRP and
# look at the heatmaps. Runs in well under a minute on two CPU cores, with no
# downloads.
#
# Pictures go to the folder in the environment variable `TFXAI_TUTORIAL_OUTPUT`
# (a new temporary folder if it is not set).

# %%
import os
import pathlib
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import tfxai  # noqa: E402
from tfxai import datasets, visualize  # noqa: E402

OUT = pathlib.Path(os.environ.get("TFXAI_TUTORIAL_OUTPUT") or tempfile.mkdtemp(prefix="tfxai-quickstart-"))
OUT.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(0)

# %% [markdown]
# ## 1. Data and model
#
# `make_shapes` returns images in [0, 1] and labels; `SHAPE_CLASSES` names the
# labels. The model is the CNN `tfxai demo` trains: four convolutions, global
# average pooling and a softmax classifier.

# %%
x_train, y_train = datasets.make_shapes(1500, seed=0)
x_test, y_test = datasets.make_shapes(200, seed=1)
model = datasets.shapes_cnn(32)
model.compile(
    optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
)
model.fit(x_train, y_train, batch_size=64, epochs=4, verbose=0)
print(f"test accuracy: {model.evaluate(x_test, y_test, verbose=0)[1]:.2f}")

# %% [markdown]
# ## 2. Explain
#
# `create_analyzer(name, model, **params)` builds an explainer; the model is
# never modified. `epsilon_gamma_box` is the composite we recommend for CNNs
# on bounded pixels: it needs the pixel range, here [0, 1].
#
# `analyze` explains the largest logit of each sample (the final softmax is
# stripped: tfxai explains logits). The result has the shape of the input.

# %%
analyzer = tfxai.create_analyzer("lrp.epsilon_gamma_box", model, low=0.0, high=1.0)
images = x_test[:4]
relevance = analyzer.analyze(images)
print("input", images.shape, "relevance", relevance.shape)

# %% [markdown]
# Relevance is conserved: each sample's relevance sums to the explained logit,
# minus what biases and stabilisers absorb. `return_delta=True` reports that
# difference per sample.

# %%
relevance, delta = analyzer.analyze(images, return_delta=True)
logits = analyzer.compiled("max_activation")(images)[1].numpy()
for logit, total, d in zip(logits, relevance.reshape(4, -1).sum(axis=1), delta):
    print(f"explained logit {logit:7.3f}   sum of relevance {total:7.3f}   delta {d:+.3f}")

# %% [markdown]
# Choose the explained class with `neuron_selection`: an index for every
# sample, one index per sample, or `"all"`. Here: why would each image be a
# *disk* (class 3)?

# %%
disk = analyzer.analyze(images, neuron_selection=3)

# %% [markdown]
# ## 3. Look
#
# `plot_heatmap` draws one map with a colour bar in relevance units; given the
# input image it overlays the map on a grayscale copy. Red is evidence for the
# explained class, blue against.

# %%
label = datasets.SHAPE_CLASSES[int(model.predict(images[:1], verbose=0).argmax())]
visualize.save_figure(visualize.plot_heatmap(relevance[0], title=f"why '{label}'"), OUT / "heatmap.png")
visualize.save_figure(
    visualize.plot_heatmap(relevance[0], image=images[0], title="overlay"), OUT / "overlay.png"
)
visualize.save_figure(visualize.plot_heatmap(disk[0], title="why 'disk'"), OUT / "disk.png")

# %% [markdown]
# `plot_grid` puts samples in rows and methods in columns: the picture for
# comparing explanations. Both columns here are the same method in the same
# units, so `scale="row"` draws each row on one scale: where the image is no
# disk, the 'disk' map looks as weak as it is (the default, `scale="map"`,
# stretches every map to its own maximum, right for columns of different
# methods).

# %%
titles = [datasets.SHAPE_CLASSES[label] for label in y_test[:4]]
grid = visualize.plot_grid(
    images, {"predicted class": relevance, "class 'disk'": disk}, titles, colorbar=True, scale="row"
)
visualize.save_figure(grid, OUT / "grid.png")

# %% [markdown]
# ## 4. Many samples
#
# `batch_size` bounds the memory, `verbose=1` shows a progress bar. A
# `tf.data.Dataset` works too (labels are ignored).

# %%
all_relevance = analyzer.analyze(x_test, batch_size=50, verbose=1)
print("explained", len(all_relevance), "images; pictures in", OUT)
