"""Modified-gradient rules: the backward ReLUs of guided backpropagation and the deconvnet."""

from __future__ import annotations

from tfxai.rules.engine import Rule, node_function, positive, single_input, vjp


class GuidedReLU(Rule):
    """Guided backpropagation through a ReLU (Springenberg et al. 2015).

    Only the positive part of the incoming signal passes, and only where the
    forward input was positive: ``R_in = (z > 0) * max(R_out, 0)``. For other
    ReLU forms (``max_value``, ``threshold``, ``negative_slope``) the positive
    part is sent through the node's own local gradient.

    References
    ----------
    Springenberg, Dosovitskiy, Brox, Riedmiller (2015). Striving for
    simplicity: the all convolutional net. ICLR workshop.
    """

    def backward(self, node, state, relevance):
        single_input(state, self)
        return vjp(node_function(node, state.params), state.inputs, positive(relevance[0]))


class DeconvReLU(Rule):
    """The deconvnet's backward ReLU (Zeiler and Fergus 2014): ``R_in = max(R_out, 0)``.

    The forward input is ignored: the signal is rectified on its way back.

    References
    ----------
    Zeiler, Fergus (2014). Visualizing and understanding convolutional
    networks. ECCV.
    """

    def backward(self, node, state, relevance):
        single_input(state, self)
        return [positive(relevance[0])]
