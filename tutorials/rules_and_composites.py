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
# # Rules and composites
#
# LRP sends the explained logit back through the network layer by layer; a
# *rule* decides how each layer splits relevance among its inputs, and a
# *composite* decides which layer gets which rule. This tutorial shows the
# rules each layer of a CNN gets, compares single rules with composites,
# overrides rules per layer, and registers a composite of its own. About
# half a minute on two CPU cores.
#
# Pictures go to `TFXAI_TUTORIAL_OUTPUT` (a new temporary folder if unset).

# %%
import os
import pathlib
import re
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfxai  # noqa: E402
from tfxai import datasets, rules, visualize  # noqa: E402
from tfxai.registry import CONV, DENSE  # noqa: E402

OUT = pathlib.Path(os.environ.get("TFXAI_TUTORIAL_OUTPUT") or tempfile.mkdtemp(prefix="tfxai-rules-"))
OUT.mkdir(parents=True, exist_ok=True)

model, (x_test, y_test), accuracy = datasets.train_shapes_cnn(samples=1500, epochs=4, seed=0)
shown = np.array([np.flatnonzero(y_test == label)[0] for label in range(len(datasets.SHAPE_CLASSES))])
images, titles = x_test[shown], [datasets.SHAPE_CLASSES[label] for label in y_test[shown]]

# %% [markdown]
# ## Which rule does each layer get?
#
# `tfxai.check(model, composite)` prints the rule of every node of the
# canonized graph: the fused ReLUs are split off (they pass relevance
# through), max pooling routes it to the winner and global average pooling
# splits it in proportion. `get_composite` builds a preset with its
# parameters, here the pixel range of the z^B rule.

# %%
report = tfxai.check(model, tfxai.composites.get_composite("epsilon_gamma_box", low=0.0, high=1.0))

# %% [markdown]
# ## One rule everywhere versus a composite
#
# LRP-0 (`lrp.z`) is faithful to the gradient (it equals input x gradient on
# ReLU networks) and as noisy. Epsilon absorbs weak, contradictory evidence.
# The composites use epsilon on dense layers, a rule favouring positive
# evidence on convolutions (z+, gamma or alpha2-beta1), and an input-domain
# rule on the first layer: z^B for pixels with known bounds, flat otherwise.

# %%
METHODS = {
    "lrp.z": {},
    "lrp.epsilon": {"epsilon": 0.1},
    "lrp.alpha_2_beta_1": {},
    "lrp.epsilon_plus": {},
    "lrp.epsilon_plus_flat": {},
    "lrp.epsilon_alpha2_beta1_flat": {},
    "lrp.epsilon_gamma_box": {"low": 0.0, "high": 1.0},
}
relevances, deltas = {}, {}
for name, params in METHODS.items():
    short = name.removeprefix("lrp.")
    relevances[short], deltas[short] = tfxai.create_analyzer(name, model, **params).analyze(
        images, return_delta=True
    )
visualize.save_figure(visualize.plot_grid(images, relevances, titles, colorbar=True), OUT / "rules_grid.png")

# %% [markdown]
# The conservation delta (explained logit minus summed relevance) shows how
# much relevance biases and stabilisers absorb. Large deltas mean the map
# accounts for less of the logit.

# %%
for name, delta in deltas.items():
    print(f"{name:32s} mean |delta| {np.abs(delta).mean():.3f}")

# %% [markdown]
# ## Overriding rules for one analyzer
#
# `rules=` takes `(selector, rule)` pairs tried before the composite: a layer
# class, a layer name, a compiled regular expression, `tfxai.FIRST` (the
# layers that see the input) or `tfxai.LAST`. `analyzer.assignment` says what
# each node got.

# %%
analyzer = tfxai.create_analyzer(
    "lrp.epsilon_plus",
    model,
    rules=[
        (tfxai.FIRST, rules.ZBox(low=0.0, high=1.0)),
        ("predictions", rules.Epsilon(0.25)),
        (re.compile("conv[34]"), rules.Gamma(0.5)),
    ],
)
for node, rule in analyzer.assignment.items():
    if node.startswith(("conv", "predictions")) and "activation" not in node:
        print(f"{node:28s} {rule}")

# %% [markdown]
# ## A composite of your own
#
# A `Composite` is an ordered list of `(selector, rule)` entries: the first
# match wins. Registered with `register_composite`, it gets an analyzer name
# `lrp.<name>` whose keyword arguments reach the factory.


# %%
@tfxai.register_composite("gamma_flat")
def gamma_flat(gamma=0.5, epsilon=0.01):
    return tfxai.Composite(
        [(tfxai.FIRST, rules.Flat()), (CONV, rules.Gamma(gamma)), (DENSE, rules.Epsilon(epsilon))],
        "gamma_flat",
    )


mine = tfxai.create_analyzer("lrp.gamma_flat", model, gamma=1.0).analyze(images)
pair = {"epsilon_gamma_box": relevances["epsilon_gamma_box"], "gamma_flat": mine}
grid = visualize.plot_grid(images, pair, titles)
visualize.save_figure(grid, OUT / "my_composite.png")
print("pictures in", OUT)
