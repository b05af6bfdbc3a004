"""Sanity checks: an explanation should change when the model or the explained class does.

Both checks call an ``explain(model, x, target) -> relevance`` function, so
they work with any method, e.g.
``lambda m, x, t: tfxai.create_analyzer("lrp.epsilon", m).analyze(x, neuron_selection=t)``.
Similarities are computed on relevance maps (summed over channels for
images) with :mod:`tfxai.metrics.similarity`; lower similarity means the
method passes the check.
"""

from __future__ import annotations

import keras
import numpy as np

from tfxai.metrics.base import Forward, MetricError, as_batch, as_relevance, relevance_map
from tfxai.metrics.similarity import similarity_function

_INITIALIZER_OF = {
    "depthwise_kernel": "depthwise_initializer",
    "pointwise_kernel": "pointwise_initializer",
    "recurrent_kernel": "recurrent_initializer",
}


def weighted_layers(model) -> list:
    """Layers that own weights, nested models flattened, in the order the model lists them (input first)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += weighted_layers(layer)
        elif layer.weights:
            found.append(layer)
    return found


def copy_model(model):
    """A ``keras.models.clone_model`` copy of ``model`` holding copies of its weights."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def reinitialise(layer, seed: int) -> None:
    """Draw new values for every weight of ``layer`` (a layer of a copy) from the layer's own initializers.

    A weight without an initializer attribute (``<name>_initializer``) gets
    Gaussian values with the standard deviation of its current values.
    """
    rng = np.random.default_rng(seed)
    for index, variable in enumerate(layer.weights):
        name = variable.name.split("/")[-1]
        initializer = getattr(layer, _INITIALIZER_OF.get(name, f"{name}_initializer"), None)
        if isinstance(initializer, keras.initializers.Initializer):
            config = initializer.get_config()
            if "seed" in config:
                config["seed"] = int(seed) * 1000 + index
            values = initializer.__class__.from_config(config)(variable.shape, dtype=variable.dtype)
        else:
            current = np.asarray(variable.numpy())
            values = rng.normal(0.0, float(current.std()) or 1.0, current.shape)
        variable.assign(np.asarray(values, dtype=variable.dtype))


def cascading_randomisation(model, layers=None, seed: int = 0):
    """Yield ``(layer name, copy)`` with the weights of the top layers re-initialised, one more each time.

    The cascade starts at the output (Adebayo et al. 2018). A single copy of
    ``model`` is made and randomised further at each step, so consume each
    copy before asking for the next. The user's model is never modified.

    Parameters
    ----------
    model : keras.Model
    layers : list of str, optional
        Names of the layers to randomise, in cascade order (default: every
        layer with weights, from the output to the input).
    seed : int
    """
    clone = copy_model(model)
    by_name = {layer.name: layer for layer in weighted_layers(clone)}
    names = list(reversed(list(by_name))) if layers is None else list(layers)
    unknown = [name for name in names if name not in by_name]
    if unknown or not names:
        raise MetricError(
            f"layers must name layers with weights of model {model.name!r}: {list(by_name)}. "
            f"Received: {layers!r}"
        )
    for step, name in enumerate(names):
        reinitialise(by_name[name], seed + step)
        yield name, clone


def model_parameter_randomisation(
    model,
    x,
    relevance,
    explain,
    target=None,
    *,
    similarity: str = "spearman",
    layers=None,
    seed: int = 0,
    logits: bool = True,
) -> dict:
    """Cascading model-parameter randomisation (Adebayo et al. 2018); lower similarity passes.

    The explanation of ``x`` is recomputed on a copy of the model whose
    layers are re-initialised one after the other from the output down
    (:func:`cascading_randomisation`), and compared with ``relevance``.

    Parameters
    ----------
    model : keras.Model
        Not modified (the check works on a copy).
    x, relevance : array-like
        A batch and its explanation by the method under test.
    explain : callable
        ``explain(model, x, target) -> relevance``, the method under test.
    target : int or array-like of int, optional
        Explained neuron per sample (default: the model's largest logit).
    similarity : {"spearman", "ssim"}
    layers, seed
        See :func:`cascading_randomisation`.
    logits : bool
        Pick the default target from the logits.

    Returns
    -------
    dict
        Layer name -> ``(n,)`` similarity after that layer and all before it
        in the cascade were randomised, in cascade order.

    References
    ----------
    Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim (2018). Sanity checks
    for saliency maps. NeurIPS.
    """
    compare = similarity_function(similarity)
    x = as_batch(x)
    reference = relevance_map(as_relevance(relevance, x))
    target = Forward(model, logits=logits).target(x, target)
    scores = {}
    for name, randomised in cascading_randomisation(model, layers, seed):
        changed = as_relevance(explain(randomised, x, target), x, "the explanation of the randomised model")
        scores[name] = compare(reference, relevance_map(changed))
    return scores


def random_logit(
    model,
    x,
    relevance,
    explain,
    target=None,
    *,
    other_target=None,
    similarity: str = "ssim",
    seed: int = 0,
    logits: bool = True,
) -> np.ndarray:
    """Random-logit test (Sixt et al. 2020): similarity to the explanation of another class; lower passes.

    Parameters
    ----------
    model, x, relevance, explain, target, logits
        As in :func:`model_parameter_randomisation`.
    other_target : int or array-like of int, optional
        The contrasting class per sample (default: drawn uniformly among the
        other classes, seeded by ``seed``).
    similarity : {"ssim", "spearman"}

    Returns
    -------
    numpy.ndarray
        ``(n,)`` similarity.

    References
    ----------
    Sixt, Granz, Landgraf (2020). When explanations lie: why many modified
    BP attributions fail. ICML.
    """
    compare = similarity_function(similarity)
    forward = Forward(model, logits=logits)
    x = as_batch(x)
    reference = relevance_map(as_relevance(relevance, x))
    target = forward.target(x, target)
    classes = int(forward.outputs(x[:1]).shape[1])
    if classes < 2:
        raise MetricError(f"random_logit needs a model with 2 or more outputs. Received: {classes}")
    if other_target is None:
        shift = np.random.default_rng(seed).integers(1, classes, len(x))
        other_target = (target + shift) % classes
    other_target = forward.target(x, other_target)
    changed = as_relevance(explain(model, x, other_target), x, "the explanation of the other class")
    return compare(reference, relevance_map(changed))
