"""Layer-wise Relevance Propagation analyzers (Bach et al. 2015)."""

from __future__ import annotations

from tfxai import assignment, composites, reverse, rules
from tfxai.analyzers.base import Analyzer
from tfxai.composites import FIRST, Composite
from tfxai.errors import ParameterError, ParameterTypeError


class LRP(Analyzer):
    """Layer-wise Relevance Propagation with a rule per node.

    The explained neuron's logit is the starting relevance (iNNvestigate's
    convention); each node's rule redistributes relevance to its inputs, in one
    ``tf.function``.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    composite : Composite or str, optional
        Rules of weighted layers; a name from
        :func:`tfxai.composites.composite_names` or a Composite. Without one,
        every weighted layer gets LRP-epsilon.
    rules : sequence of (selector, Rule), optional
        Entries that override the composite (first match wins): selectors are
        layer classes, layer names, compiled regexes, ``FIRST`` or ``LAST``.
    input_layer_rule : Rule, str or (low, high), optional
        Rule of the first weighted layer(s): a Rule, ``"Flat"``,
        ``"WSquare"``, or a ``(low, high)`` pair for ZBox.
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    Attributes
    ----------
    assignment : dict
        Node name -> Rule actually used.
    """

    def __init__(self, model, composite=None, *, rules=(), input_layer_rule=None, **kwargs):
        super().__init__(model, **kwargs)
        if composite is None:
            composite = composites.default_composite()
        elif isinstance(composite, str):
            composite = composites.get_composite(composite)
        elif not isinstance(composite, Composite):
            raise ParameterTypeError(
                f"composite must be a Composite, a composite name or None. Received: composite={composite!r}"
            )
        if input_layer_rule is not None:
            composite = composite.prepend([(FIRST, _as_input_rule(input_layer_rule))])
        self.composite = composite.prepend(rules)
        self.assignment = assignment.assign(self.view, self.composite)

    def relevance(self, xs, forward):
        start = {self.explained_key(): forward.start}
        return reverse.input_relevance(self.view, self.assignment, forward.states, start, xs)


def _as_input_rule(spec):
    if isinstance(spec, rules.Rule):
        return spec
    if isinstance(spec, str) and spec in ("Flat", "WSquare"):
        return getattr(rules, spec)()
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        return rules.ZBox(*spec)
    raise ParameterError(f"input_layer_rule must be a Rule, 'Flat', 'WSquare' or (low, high). Received: {spec!r}")
