"""Guided backpropagation and the deconvnet: gradients with a modified ReLU backward.

Both walk the canonized graph backwards with :func:`tfxai.reverse.propagate`.
Every node passes the signal along its local gradient (:class:`~tfxai.rules.Route`,
a vector-Jacobian product), except ReLU nodes, which get
:class:`~tfxai.rules.GuidedReLU` or :class:`~tfxai.rules.DeconvReLU`. A ReLU is
found in every form it takes in a Keras graph: a ``keras.layers.ReLU`` layer,
an ``Activation("relu")`` layer, a fused ``activation="relu"`` (split into its
own node by the canonizers) and the raw operation ``keras.ops.relu``; ``relu6``
counts as a ReLU too.

Like the gradient, the walk starts from the 0/1 mask of the explained
neuron(s). iNNvestigate starts these two methods from the logit instead, so
its results are ours multiplied by the explained logit.
"""

from __future__ import annotations

import keras

from tfxai import reverse, rules
from tfxai.analyzers.base import Analyzer
from tfxai.canonizers import activation_name
from tfxai.graph import raw_op_classes

RELU_NAMES = ("relu", "relu6")
"""Names of the Keras activations treated as ReLUs."""

RELU_TYPES = (keras.layers.ReLU,) + raw_op_classes("Relu", "Relu6")
"""Layer and operation classes that are ReLUs whatever their configuration."""


def is_relu(node) -> bool:
    """Whether a node of a canonized view applies a ReLU."""
    if node.activation is not None:
        return node.activation in RELU_NAMES
    if issubclass(node.op_type, RELU_TYPES):
        return True
    layer = node.layer
    return isinstance(layer, keras.layers.Activation) and activation_name(layer.activation) in RELU_NAMES


class ModifiedGradient(Analyzer):
    """The gradient, with ``relu_rule`` as the backward pass of every ReLU.

    Subclasses set ``relu_rule``.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    Attributes
    ----------
    assignment : dict
        Node name -> Rule used by the backward walk.
    """

    relu_rule: rules.Rule = rules.Route()

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        gradient = rules.Route()
        self.assignment = {
            node.name: self.relu_rule if is_relu(node) else gradient for node in self.view.nodes
        }

    def relevance(self, xs, forward):
        start = {self.explained_key(): forward.mask}
        return reverse.input_relevance(self.view, self.assignment, forward.states, start, xs)


class GuidedBackprop(ModifiedGradient):
    """Guided backpropagation (Springenberg et al. 2015).

    The gradient, except that a ReLU passes back only positive signal and
    only where its input was positive (:class:`~tfxai.rules.GuidedReLU`).

    References
    ----------
    Springenberg, Dosovitskiy, Brox, Riedmiller (2015). Striving for
    simplicity: the all convolutional net. ICLR workshop.
    """

    relu_rule = rules.GuidedReLU()


class Deconvnet(ModifiedGradient):
    """Deconvnet (Zeiler and Fergus 2014).

    The gradient, except that a ReLU rectifies the signal on its way back and
    ignores its forward input (:class:`~tfxai.rules.DeconvReLU`). Max pooling
    routes the signal to the forward winner (the "switches").

    References
    ----------
    Zeiler, Fergus (2014). Visualizing and understanding convolutional
    networks. ECCV.
    """

    relu_rule = rules.DeconvReLU()
