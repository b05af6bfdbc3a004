"""Gradient-based analyzers (Simonyan et al. 2014; Shrikumar et al. 2016)."""

from __future__ import annotations

import tensorflow as tf

from tfxai import reverse
from tfxai.analyzers.base import Analyzer


class Gradient(Analyzer):
    """Saliency: the gradient of the explained neuron(s) with respect to the input.

    Differentiates the canonized model (logits, not softmax). With
    ``neuron_selection="all"`` it is the gradient of the sum of the outputs.
    """

    def gradients(self, xs, select):
        """``(gradients, explained, predictions)`` for one batch."""
        with tf.GradientTape() as tape:
            tape.watch(xs)
            values, _ = reverse.forward(self.view, xs)
            y = values[self.explained_key()]
        mask = select(y)
        grads = tape.gradient(y, xs, output_gradients=mask, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        explained = tf.reduce_sum(tf.reshape(y * mask, (tf.shape(y)[0], -1)), axis=1)
        return grads, explained, [values[key] for key in self.view.outputs]

    def explain_tensors(self, xs, select):
        return self.gradients(xs, select)


class InputTimesGradient(Gradient):
    """Input times gradient (Shrikumar et al. 2016): ``x * d y / d x``.

    On ReLU networks without biases it sums to the explained output and equals
    LRP-0.
    """

    def explain_tensors(self, xs, select):
        grads, explained, predictions = self.gradients(xs, select)
        return [x * g for x, g in zip(xs, grads)], explained, predictions
