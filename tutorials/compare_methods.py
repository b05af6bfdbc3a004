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
# # Comparing methods on a trained CNN
#
# The classic comparison picture: test images in rows, one explanation method
# per column. We train the demo CNN on generated shapes (the shape is the only
# evidence for the class, so a good explanation highlights it) and explain the
# same images with gradient, path, class-activation, perturbation and LRP
# methods. About half a minute on two CPU cores.
#
# Pictures go to `TFXAI_TUTORIAL_OUTPUT` (a new temporary folder if unset).

# %%
import os
import pathlib
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfxai  # noqa: E402
from tfxai import datasets, visualize  # noqa: E402

OUT = pathlib.Path(os.environ.get("TFXAI_TUTORIAL_OUTPUT") or tempfile.mkdtemp(prefix="tfxai-compare-"))
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Train

# %%
model, (x_test, y_test), accuracy = datasets.train_shapes_cnn(samples=1500, epochs=4, seed=0)
print(f"test accuracy: {accuracy:.2f}")

# One test image of each class.
shown = np.array([np.flatnonzero(y_test == label)[0] for label in range(len(datasets.SHAPE_CLASSES))])
images, titles = x_test[shown], [datasets.SHAPE_CLASSES[label] for label in y_test[shown]]

# %% [markdown]
# ## Explain with every family of methods
#
# Every analyzer answers the same call. The parameters below are the ones to
# think about: SmoothGrad's noise level (a fraction of the input range),
# Integrated Gradients' number of steps, the occlusion window, and for the LRP
# composite the pixel range of the input.

# %%
METHODS = {
    "gradient": {},
    "smoothgrad": {"noise_level": 0.1, "n_samples": 16},
    "integrated_gradients": {"steps": 32},
    "guided_backprop": {},
    "grad_cam": {},
    "occlusion": {"window": 4},
    "lrp.epsilon": {"epsilon": 0.1},
    "lrp.epsilon_plus_flat": {},
    "lrp.epsilon_gamma_box": {"low": 0.0, "high": 1.0},
}
relevances = {}
for name, params in METHODS.items():
    began = time.perf_counter()
    relevances[name] = tfxai.create_analyzer(name, model, **params).analyze(images)
    print(f"{name:24s} {time.perf_counter() - began:5.2f} s")

# %% [markdown]
# ## The grid
#
# Each map is centred at zero (white) and clipped at the 99.5th percentile of
# its own `|relevance|`: red is evidence for the predicted class, blue against.
# The colour bar is in units of each map's clip value.

# %%
figure = visualize.plot_grid(images, relevances, titles, colorbar=True)
visualize.save_figure(figure, OUT / "methods_grid.png")

# %% [markdown]
# What to look for:
#
# - the **gradient** is noisy and shows where the output is sensitive, not what
#   it used; SmoothGrad averages the noise away;
# - **Integrated Gradients** and **LRP-epsilon** are signed attributions that
#   sum to (about) the explained logit;
# - **Grad-CAM** is coarse: one value per cell of the last feature map;
# - the **LRP composites** give the sharpest, least noisy maps, concentrated on
#   the shape: the reason they are recommended for CNNs.
#
# Unsigned pictures suit sensitivity methods better. `absolute_heatmap` shows
# the magnitude in grayscale, and `overlay` puts a signed map on the image.

# %%
gradient = visualize.plot_heatmap(relevances["gradient"][0], absolute=True, title="|gradient|")
visualize.save_figure(gradient, OUT / "gradient_absolute.png")
lrp = visualize.plot_heatmap(
    relevances["lrp.epsilon_gamma_box"][0], image=images[0], title="epsilon_gamma_box"
)
visualize.save_figure(lrp, OUT / "lrp_overlay.png")

# %% [markdown]
# ## Do they agree?
#
# A number to go with the picture: the correlation of each method's map with
# the LRP composite's, over the four images (channels summed).

# %%
reference = visualize.reduce_channels(relevances["lrp.epsilon_gamma_box"]).ravel()
for name, relevance in relevances.items():
    corr = np.corrcoef(visualize.reduce_channels(relevance).ravel(), reference)[0, 1]
    print(f"{name:24s} correlation with epsilon_gamma_box: {corr:+.2f}")
print("pictures in", OUT)
