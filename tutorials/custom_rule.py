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
# # A custom layer and a rule of your own
#
# tfxai knows the Keras layers (see the supported-layers page); a layer you
# wrote yourself needs a rule. This tutorial takes a model with a custom
# element-wise affine layer, shows the error tfxai gives, fixes it with a
# built-in rule, then writes a rule from scratch and checks it against the
# built-in one. A few seconds on two CPU cores.

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfxai  # noqa: E402
from tfxai import rules  # noqa: E402

keras.utils.set_random_seed(0)

# %% [markdown]
# ## A model with a custom layer
#
# `Affine` scales and shifts each feature with learned weights:
# `y = x * scale + shift`.


# %%
class Affine(keras.layers.Layer):
    """Learned per-feature scale and shift."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")
        self.shift = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="shift")

    def call(self, x):
        return x * self.scale + self.shift


rng = np.random.default_rng(0)
x = rng.normal(size=(2000, 6)).astype("float32")
y = (x[:, 0] + 2 * x[:, 1] - x[:, 2] > 0).astype("int64")
model = keras.Sequential(
    [
        keras.Input((6,)),
        keras.layers.Dense(16, activation="relu", use_bias=False, name="hidden"),
        Affine(name="affine"),
        keras.layers.Dense(2, use_bias=False, name="logits"),
    ]
)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
model.fit(x, y, epochs=3, batch_size=64, verbose=0)

# %% [markdown]
# ## What tfxai says
#
# `create_analyzer` refuses the model with one error that lists every
# unsupported node and how to add support. (`tfxai.check(model)` prints the
# same as a table.)

# %%
try:
    tfxai.create_analyzer("lrp.epsilon", model)
except tfxai.UnsupportedLayerError as error:
    print(error)

# %% [markdown]
# ## The quick fix: a built-in rule
#
# A linear rule given to a layer without tfxai-known weights uses the layer's
# own `call` as its function. `Epsilon` then splits relevance in proportion to
# input x gradient, `(x * scale) / (x * scale + shift)` here, and the shift
# absorbs the rest. `rules=` gives the rule to this analyzer only;
# `tfxai.register_rule(Affine, rule)` would give it to every analyzer.

# %%
builtin = tfxai.create_analyzer("lrp.epsilon", model, rules=[(Affine, rules.Epsilon(1e-6))])
samples = x[:5]
r_builtin = builtin.analyze(samples)

# %% [markdown]
# ## Writing the rule yourself
#
# A rule subclasses `tfxai.rules.Rule`, validates its parameters in
# `__init__` and implements `backward(node, state, relevance)`:
#
# - `node.layer` is the Keras layer, `node.forward(inputs, params)` recomputes it;
# - `state.inputs` / `state.outputs` are this forward pass's tensors;
# - `relevance` holds the relevance of each output; return one per input.
#
# It runs inside the analyzer's `tf.function`, so use TensorFlow ops.


# %%
class AffineRule(rules.Rule):
    """LRP-epsilon for ``Affine``: ``R_in = x * scale / (z + epsilon * sign(z)) * R_out``.

    Parameters
    ----------
    epsilon : float
        Stabiliser of the denominator, >= 0.
    """

    def __init__(self, epsilon: float = 1e-6):
        if epsilon < 0:
            raise ValueError(f"AffineRule expects epsilon >= 0. Received: epsilon={epsilon}")
        self.epsilon = float(epsilon)

    def backward(self, node, state, relevance):
        x, z = state.inputs[0], state.outputs[0]
        contribution = x * node.layer.scale
        return [contribution * tf.math.divide_no_nan(relevance[0], rules.signed_stabilize(z, self.epsilon))]


mine = tfxai.create_analyzer("lrp.epsilon", model, rules=[(Affine, AffineRule(1e-6))])
r_mine = mine.analyze(samples)
print("largest difference to the built-in Epsilon:", np.abs(r_mine - r_builtin).max())
assert np.allclose(r_mine, r_builtin, atol=1e-5)

# %% [markdown]
# ## Registering the rule for the class
#
# `register_rule` makes the rule the default for `Affine` and its subclasses
# in every analyzer and composite; `unregister_rule` removes it.

# %%
tfxai.register_rule(Affine, AffineRule())
report = tfxai.check(model)
tfxai.unregister_rule(Affine)
print("supported after registering:", report.ok)
