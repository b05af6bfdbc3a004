"""DeepLIFT (Shrikumar et al. 2017) and DeepSHAP (Lundberg and Lee 2017).

Both run two forward passes of the canonized model, one on the input and one
on a reference, and walk the graph backwards once with the multiplier rules
of :mod:`tfxai.deeplift_rules`. The attribution ``(x - x_ref) * m`` sums to
``f(x) - f(x_ref)`` of the explained neurons (summation-to-delta); the
analyzers report that difference as the explained value, so
``analyze(..., return_delta=True)`` returns the summation error.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfxai import deeplift_rules, reverse, validation
from tfxai.analyzers import batched
from tfxai.analyzers.base import Analyzer, explained_value
from tfxai.analyzers.integrated import baseline_tensors, check_baseline, per_input
from tfxai.errors import ModelError, ParameterError


class DeepLIFT(Analyzer):
    """DeepLIFT with the rescale rule, or reveal-cancel (Shrikumar et al. 2017).

    Linear layers pass multipliers back through their transposed weights,
    element-wise nonlinearities with ``(y - y_ref) / (x - x_ref)`` (the
    gradient where ``x ~ x_ref``) and max pooling with
    :class:`~tfxai.deeplift_rules.SecantMax`; see :mod:`tfxai.deeplift_rules`.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified. Products, normalisations over
        features, attention, recurrent and embedding layers have no DeepLIFT
        rule: the constructor lists such nodes in an
        :class:`~tfxai.errors.UnsupportedLayerError`.
    baseline : "zero", "blur", float, array-like, or list of those
        The reference input, as for
        :class:`~tfxai.analyzers.integrated.IntegratedGradients` (default zeros).
    reveal_cancel : bool
        Use the reveal-cancel rule for nonlinearities that follow a weighted
        layer (default False: rescale everywhere). Nonlinearities after a
        sum (residual ``Add``) keep the rescale rule.
    blur_sigma : float
        Standard deviation of the ``"blur"`` baseline, in samples (default 5).
    tolerance : float
        ``|x - x_ref|`` below which a multiplier falls back to the gradient
        (default 1e-6).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    References
    ----------
    Shrikumar, Greenside, Kundaje (2017). Learning important features through
    propagating activation differences. ICML.
    """

    def __init__(
        self,
        model,
        *,
        baseline="zero",
        reveal_cancel: bool = False,
        blur_sigma: float = 5.0,
        tolerance: float = deeplift_rules.TOLERANCE,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        require_float_inputs(self, "DeepLIFT")
        self.reveal_cancel = bool(reveal_cancel)
        self.assignment = deeplift_rules.assign(
            self.view, self.explained_key(), self.reveal_cancel, tolerance
        )
        self.baselines = per_input(baseline, len(self.input_specs))
        for spec, base in zip(self.input_specs, self.baselines):
            check_baseline(spec, base)
        self.blur_sigma = validation.number("blur_sigma", blur_sigma, minimum=0, exclusive=True)

    def references(self, xs):
        """The reference of each input for a batch."""
        return baseline_tensors(xs, self.baselines, self.blur_sigma)

    def relevance(self, xs, forward):
        return self.attribute(xs, self.references(xs), forward.states, forward.mask)

    def attribute(self, xs, refs, states, mask):
        """``(x - x_ref) * m`` for inputs ``xs`` with forward ``states``, references ``refs``."""
        _, reference_states = reverse.forward(self.view, refs)
        paired = deeplift_rules.pair_states(states, reference_states)
        start = {self.explained_key(): mask}
        multipliers = reverse.input_relevance(self.view, self.assignment, paired, start, xs)
        return [(x - r) * m for x, r, m in zip(xs, refs, multipliers)]

    def explained(self, xs, forward):
        """``f(x) - f(x_ref)`` of the explained neurons."""
        y_ref = reverse.forward(self.view, self.references(xs))[0][self.explained_key()]
        return explained_value(forward.output, forward.mask) - explained_value(y_ref, forward.mask)


class DeepSHAP(DeepLIFT):
    """DeepSHAP (Lundberg and Lee 2017): DeepLIFT averaged over a background set.

    ``R = mean_k DeepLIFT(x; reference b_k)`` over the ``K`` background samples
    (Captum's ``DeepLiftShap``; shap's ``DeepExplainer`` for these layers). It
    sums to ``f(x) - mean_k f(b_k)``, the explained value reported. The
    background is a constant of the analyzer's graph; all ``K`` references are
    evaluated inside the one ``tf.function``, ``chunk_size`` at a time.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    background : array-like, or list of those
        ``(K, *sample)`` reference samples (one array per model input for
        multi-input models), e.g. 50-100 training samples.
    reveal_cancel, tolerance
        See :class:`DeepLIFT`.
    chunk_size : int
        Background samples per pass (default 8).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    References
    ----------
    Lundberg, Lee (2017). A unified approach to interpreting model
    predictions. NeurIPS.
    """

    def __init__(self, model, *, background, reveal_cancel: bool = False, chunk_size: int = 8, **kwargs):
        super().__init__(model, reveal_cancel=reveal_cancel, **kwargs)
        self.background = background_arrays(self.input_specs, background)
        self.chunk_size = validation.count("chunk_size", chunk_size)

    def relevance(self, xs, forward):
        count = len(self.background[0])
        chunk = min(self.chunk_size, count)
        background = [tf.constant(b, x.dtype) for b, x in zip(self.background, xs)]
        mask = batched.repeat_variants(forward.mask, chunk)
        repeated = [batched.repeat_variants(x, chunk) for x in xs]
        _, states = reverse.forward(self.view, repeated)

        def step(indices, valid):
            refs = []
            for x, b in zip(xs, background):
                picked = tf.gather(b, indices)[:, None]
                refs.append(batched.stack_variants(picked + tf.zeros_like(x)[None]))
            parts = self.attribute(repeated, refs, states, mask)
            weight = tf.cast(valid, tf.float64) / count
            return [batched.weighted_sum(weight, part, chunk) for part in parts]

        return batched.fold(step, count, chunk, batched.add)

    def explained(self, xs, forward):
        """``f(x) - mean_k f(b_k)`` of the explained neurons."""
        return explained_value(forward.output, forward.mask) - expected_output(self, xs, forward.mask)


def expected_output(analyzer, xs, mask):
    """Per sample, ``mean_k f(b_k)`` of the neurons ``mask`` over ``analyzer.background``."""
    background = [tf.constant(b, x.dtype) for b, x in zip(analyzer.background, xs)]
    y = reverse.forward(analyzer.view, background)[0][analyzer.explained_key()]
    mean = tf.reduce_mean(y, axis=0, keepdims=True)
    return explained_value(mean + tf.zeros_like(mask), mask)


def background_arrays(specs, background) -> list:
    """One ``(K, *sample)`` float array per input, validated against ``specs``."""
    arrays = list(background) if isinstance(background, (list, tuple)) else [background]
    if len(arrays) != len(specs):
        raise ParameterError(
            f"The model has {len(specs)} input(s); give one background array per input. "
            f"Received {len(arrays)}."
        )
    result = []
    for spec, array in zip(specs, arrays):
        array = np.asarray(array, dtype=np.dtype(spec.dtype))
        sample = tuple(spec.shape[1:])
        fits = array.ndim == len(sample) + 1 and all(
            d is None or d == a for d, a in zip(sample, array.shape[1:])
        )
        if not fits or len(array) == 0:
            raise ParameterError(
                f"The background of input {spec.name!r} must have shape (K, {', '.join(map(str, sample))}) "
                f"with K >= 1. Received shape {array.shape}."
            )
        if not np.all(np.isfinite(array)):
            raise ParameterError(f"The background of input {spec.name!r} contains NaN or Inf.")
        result.append(array)
    if len({len(a) for a in result}) > 1:
        raise ParameterError(
            f"Every input's background needs the same K. Received {[len(a) for a in result]}."
        )
    return result


def require_float_inputs(analyzer, method: str):
    """Raise a ModelError naming the integer (token id) inputs, which ``method`` cannot vary."""
    integers = [spec.name for spec in analyzer.input_specs if np.dtype(spec.dtype).kind != "f"]
    if integers:
        raise ModelError(
            f"{method} explains float inputs; model inputs {integers} are integers (token ids). "
            "Explain such models with integrated_gradients (which leaves token ids fixed), or with "
            "kernel_shap / lime over tokens."
        )
