"""Deep Taylor decomposition (Montavon et al. 2017) as LRP composites.

For ReLU networks, deep Taylor decomposition with root points on the positive
orthant gives every hidden weighted layer the z+ rule; the input layer needs a
rule for its domain: z+ again for non-negative inputs, z^B for inputs bounded
by ``[low, high]`` (pixels). Relevance starts from the explained logit, as in
every LRP analyzer.

iNNvestigate gives pooling, BatchNormalization, ``Add`` and ``Concatenate``
the plain gradient in its deep Taylor analyzers; tfxai uses the same
conservative defaults as its other LRP analyzers (average pooling and ``Add``
split in proportion to contributions, BatchNorm folded), so results differ on
such models and agree on plain Dense/Conv/ReLU/max-pooling networks.
"""

from __future__ import annotations

from tfxai import registry, rules
from tfxai.analyzers.lrp import LRP
from tfxai.composites import FIRST, Composite


class DeepTaylor(LRP):
    """Deep Taylor decomposition: z+ on every weighted layer (bias ignored).

    Suited to ReLU networks whose inputs are non-negative; for bounded inputs
    use :class:`BoundedDeepTaylor`.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    rules, input_layer_rule, output_index, jit_compile
        See :class:`~tfxai.analyzers.lrp.LRP`.

    References
    ----------
    Montavon, Lapuschkin, Binder, Samek, Mueller (2017). Explaining nonlinear
    classification decisions with deep Taylor decomposition. Pattern
    Recognition 65.
    """

    def __init__(self, model, **kwargs):
        super().__init__(model, Composite([(registry.LINEAR, rules.ZPlus())], "deep_taylor"), **kwargs)


class BoundedDeepTaylor(LRP):
    """Deep Taylor decomposition with z^B at the input and z+ everywhere else.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    low, high : float or array-like
        Bounds of the input (per channel allowed), as for
        :class:`~tfxai.rules.ZBox`. Default ``-1`` and ``1``.
    rules, output_index, jit_compile
        See :class:`~tfxai.analyzers.lrp.LRP`.

    References
    ----------
    Montavon, Lapuschkin, Binder, Samek, Mueller (2017). Explaining nonlinear
    classification decisions with deep Taylor decomposition. Pattern
    Recognition 65.
    """

    def __init__(self, model, *, low=-1.0, high=1.0, **kwargs):
        composite = Composite(
            [(FIRST, rules.ZBox(low, high)), (registry.LINEAR, rules.ZPlus())], "deep_taylor_bounded"
        )
        super().__init__(model, composite, **kwargs)
