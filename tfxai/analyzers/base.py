"""The Analyzer base class: the analysis template, compilation and batching.

:meth:`Analyzer.explain_tensors` is a template: it runs the forward pass of
the canonized model once (:meth:`Analyzer.forward_pass`), selects the
explained neurons, and returns the relevance, the explained quantity and the
predictions. A subclass supplies only :meth:`Analyzer.relevance`, how
relevance is computed from that pass (and, rarely, :meth:`Analyzer.explained`
or :meth:`Analyzer.watched`). The base class compiles the template with
``tf.function`` once per neuron selection mode, with a ``None`` batch
dimension (no retracing per batch size), and runs it over NumPy arrays,
tensors, dicts, lists or ``tf.data`` datasets.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfxai import checks, export, inputs, registry, reverse, validation
from tfxai.analyzers import distributed
from tfxai.canonizers import CANONIZERS, canonize
from tfxai.errors import InputError, ParameterError
from tfxai.graph import build_view

MODES = ("max_activation", "index", "all")


@dataclasses.dataclass(frozen=True)
class ForwardPass:
    """One forward pass of the canonized model, with the neurons it explains.

    Attributes
    ----------
    values : dict
        Tensor key -> concrete tensor, for every tensor of the view.
    states : dict
        Node name -> :class:`~tfxai.rules.NodeState`.
    output : tf.Tensor
        The explained output ``y`` (the logits where a softmax was stripped).
    mask : tf.Tensor
        0/1 mask of the explained neurons, same shape as ``output``.
    predictions : list of tf.Tensor
        The model outputs, as ``model(x)`` returns them.
    tape : tf.GradientTape or None
        The tape that recorded the pass, for analyzers whose
        :meth:`Analyzer.watched` names tensors to differentiate by.
    """

    values: dict
    states: dict
    output: Any
    mask: Any
    predictions: list
    tape: Any = None

    @property
    def start(self):
        """``output * mask``: the explained values, zero elsewhere."""
        return self.output * self.mask


def explained_value(y, mask):
    """Per sample, ``sum(y * mask)`` over every non-batch axis."""
    return tf.reduce_sum(tf.reshape(y * mask, (tf.shape(y)[0], -1)), axis=1)


class Analyzer:
    """Explains a Keras model's outputs in terms of its inputs.

    Parameters
    ----------
    model : keras.Model
        A Functional or built Sequential model (nested models allowed). It is
        never modified.
    output_index : int
        For multi-output models, which output to explain (default the first).
    jit_compile : bool
        Compile the analysis with XLA.
    sequence_length : int, optional
        Length at which to capture layers whose ``call`` computes with their
        input's shape (causal masks, positions) where the model's inputs have
        a dynamic length; see :mod:`tfxai.capture`.

    Attributes
    ----------
    model : keras.Model
        The model, as given.
    view : tfxai.nodes.GraphView
        Its canonized graph (BatchNorm folded, activations split, softmax
        stripped).
    """

    canonizers = CANONIZERS
    """The canonizers the analyzer applies (see :func:`tfxai.canonizers.canonize`)."""

    def __init__(
        self, model, *, output_index: int = 0, jit_compile: bool = False, sequence_length: int | None = None
    ):
        checks.check_model(model)
        if sequence_length is not None:
            sequence_length = validation.count("sequence_length", sequence_length)
        self.model = model
        self.view = canonize(build_view(model, registry.needs_capture, sequence_length), self.canonizers)
        checks.check_stateless(self.view)
        self.output_index = validation.count("output_index", output_index, minimum=0)
        if self.output_index >= len(self.view.outputs):
            raise ParameterError(
                f"output_index must be in [0, {len(self.view.outputs)}) for model "
                f"{model.name!r}. Received: output_index={output_index}"
            )
        self.jit_compile = validation.flag("jit_compile", jit_compile)
        self.input_specs = inputs.specs_of(self.view)
        self._compiled = {}

    def explain_tensors(self, xs: list, select):
        """Explain one batch, in TensorFlow: the template every analyzer runs.

        Parameters
        ----------
        xs : list of tf.Tensor
            One tensor per model input.
        select : callable
            ``select(y) -> mask``: the 0/1 mask of the explained neurons of the
            explained output ``y`` (same shape as ``y``).

        Returns
        -------
        relevance : list of tf.Tensor
            One per input, each of the input's shape.
        explained : tf.Tensor
            Per sample, the explained quantity (``sum(y * mask)``).
        predictions : list of tf.Tensor
            The model outputs, as ``model(x)`` returns them.
        """
        forward = self.forward_pass(xs, select)
        return self.relevance(xs, forward), self.explained(xs, forward), forward.predictions

    def forward_pass(self, xs: list, select) -> ForwardPass:
        """Run the canonized model on ``xs`` once and select the explained neurons.

        The pass is recorded on a ``tf.GradientTape`` when :meth:`watched`
        names tensors to differentiate by.
        """
        watched = self.watched(xs)
        if watched is None:
            values, states = reverse.forward(self.view, xs)
            tape = None
        else:
            with tf.GradientTape() as tape:
                tape.watch(watched)
                values, states = reverse.forward(self.view, xs)
        y = values[self.explained_key()]
        predictions = [values[key] for key in self.view.outputs]
        return ForwardPass(values, states, y, select(y), predictions, tape)

    def watched(self, xs: list):
        """Tensors the forward pass is differentiated by, or ``None`` for no tape (default)."""
        return None

    def relevance(self, xs: list, forward: ForwardPass) -> list:
        """Relevance of each input for one batch (override in subclasses).

        Parameters
        ----------
        xs : list of tf.Tensor
            One tensor per model input.
        forward : ForwardPass
            The forward pass of ``xs``, with the explained neurons.

        Returns
        -------
        list of tf.Tensor
            One per input, each of the input's shape.
        """
        raise NotImplementedError

    def explained(self, xs: list, forward: ForwardPass):
        """Per sample, the quantity the relevance explains: ``sum(y * mask)`` by default."""
        return explained_value(forward.output, forward.mask)

    def review(self, relevance: list) -> None:
        """Inspect the relevance ``analyze`` returns (one array per input) and warn; default: nothing."""

    def explained_key(self):
        """Tensor key of the output being explained (the logits after a softmax)."""
        return self.view.explained[self.output_index]

    def analyze(
        self,
        x,
        neuron_selection="max_activation",
        *,
        batch_size: int | None = None,
        return_delta: bool = False,
        verbose: int = 0,
        strategy=None,
    ):
        """Explain ``x``: relevance of every input feature.

        Parameters
        ----------
        x : array-like, tf.Tensor, list, dict, tf.data.Dataset or tf.distribute.DistributedDataset
            The model input(s): one array for single-input models, a list (model
            input order) or dict (by input name) for multi-input models, or a
            dataset of those (labels are ignored), possibly distributed by a
            strategy.
        neuron_selection : "max_activation", "all", int or array-like of int
            Which output neuron to explain: the largest of each sample
            (default), one index for all samples, one index per sample, or the
            whole output at once. Indices count over the flattened non-batch
            axes of the explained output.
        batch_size : int, optional
            Analyse at most this many samples at a time (an integer >= 1).
        return_delta : bool
            Also return, per sample, the explained output minus the summed
            input relevance (the conservation delta, computed in float64).
        verbose : int
            1 shows a Keras progress bar that counts samples (not batches).
        strategy : tf.distribute.Strategy, optional
            Split every batch across the strategy's replicas and gather the
            results in input order (see :mod:`tfxai.analyzers.distributed`);
            ``batch_size`` is then the global batch. Needed for a
            ``tf.distribute.DistributedDataset`` ``x`` unless ``analyze`` runs
            inside ``strategy.scope()``.

        Returns
        -------
        relevance : numpy.ndarray, list or dict of numpy.ndarray
            Same structure and shapes as ``x``; float32 for models that run in
            float16 or bfloat16 (mixed precision).
        delta : numpy.ndarray, only with ``return_delta=True``
            Shape ``(n_samples,)``.
        """
        mode, target = _selection_mode(neuron_selection)
        if batch_size is not None:
            batch_size = validation.count("batch_size", batch_size)
        return_delta = validation.flag("return_delta", return_delta)
        verbose = validation.count("verbose", verbose, minimum=0)
        kind, total, steps = self._steps(x, mode, target, batch_size, strategy)
        progress = keras.utils.Progbar(total, verbose=1) if verbose else None
        relevance, deltas, done = [], [], 0
        for batch_relevance, explained in steps:
            n = len(explained)
            batch_relevance = [reverse.promote(r).numpy() for r in batch_relevance]
            summed = sum(r.reshape(n, -1).sum(axis=1, dtype=np.float64) for r in batch_relevance)
            relevance.append(batch_relevance)
            deltas.append(reverse.promote(explained).numpy().astype(np.float64) - summed)
            done += n
            if progress is not None:
                progress.update(done)
        if progress is not None and total is None:
            progress.update(done, finalize=True)  # a dataset's size is known only at its end
        if not relevance:
            raise InputError("analyze received no samples.")
        if mode == "index" and target.ndim == 1 and len(target) != done:
            raise InputError(
                f"neuron_selection has {len(target)} indices for {done} samples; give one per sample or one int."
            )
        merged = [np.concatenate([part[i] for part in relevance]) for i in range(len(self.input_specs))]
        self.review(merged)
        result = _restructure(merged, kind, self.input_specs)
        return (result, np.concatenate(deltas)) if return_delta else result

    def _steps(self, x, mode, target, batch_size, strategy):
        """``(structure kind, sample count or None, iterator of (relevance, explained) per batch)``."""
        if strategy is None and not distributed.is_distributed_dataset(x):
            kind, chunks, total = self._chunks(x, batch_size)
            return kind, total, self._run(chunks, mode, target, self.compiled(mode))
        runner = distributed.runner(self, mode, strategy, x)
        if distributed.is_distributed_dataset(x):
            kind = distributed.structure_kind(x, self.input_specs)
            return kind, None, distributed.dataset_batches(runner, x, mode, target, self.input_specs)
        kind, chunks, total = self._chunks(x, batch_size)
        return kind, total, self._run(chunks, mode, target, runner)

    def _run(self, chunks, mode, target, explain):
        """Yield ``(relevance, explained)`` per batch, ``explain`` being the compiled function or a replica runner."""
        done = 0
        for batch in chunks:
            n = len(batch[0])
            args = [tf.convert_to_tensor(a) for a in batch]
            if mode == "index":
                args.append(tf.convert_to_tensor(self._targets(target, done, n)))
            relevance, explained = explain(*args)[:2]
            done += n
            yield relevance, explained

    def _chunks(self, x, batch_size):
        """``(structure kind, iterator of validated batches, sample count or None)``."""
        if isinstance(x, tf.data.Dataset):
            first = next(iter(x.take(1)), None)
            if first is None:
                raise InputError("analyze received an empty dataset.")
            kind = inputs.split_structure(inputs.dataset_features(first), self.input_specs)[1]
            chunks = (
                batch
                for element in x
                for batch in inputs.batches(
                    inputs.validate(
                        inputs.split_structure(inputs.dataset_features(element), self.input_specs)[0],
                        self.input_specs,
                    ),
                    batch_size,
                )
            )
            return kind, chunks, None
        arrays, kind = inputs.split_structure(x, self.input_specs)
        arrays = inputs.validate(arrays, self.input_specs)
        return kind, inputs.batches(arrays, batch_size), len(arrays[0])

    def _targets(self, target, offset, n):
        """Per-sample int32 targets of the batch starting at sample ``offset``."""
        size = self.output_size()
        if size is not None and (target.min() < 0 or target.max() >= size):
            raise InputError(
                f"neuron_selection indices must be in [0, {size}) for the explained output. "
                f"Received: min {target.min()}, max {target.max()}"
            )
        if target.ndim == 0:
            return np.full(n, target, np.int32)
        if len(target) < offset + n:
            raise InputError(
                f"neuron_selection has {len(target)} indices; the input has at least {offset + n} samples."
            )
        return target[offset : offset + n]

    def output_size(self):
        """Number of neurons of the explained output per sample (None if unknown)."""
        shape = self.view.shapes[self.explained_key()][1:]
        return int(np.prod(shape)) if all(d is not None for d in shape) else None

    def export(self, path, **kwargs):
        """Write a SavedModel TF Serving runs; see :func:`tfxai.export.export_analyzer`."""
        return export.export_analyzer(self, path, **kwargs)

    def compiled(self, mode: str = "max_activation"):
        """The ``tf.function`` for a selection mode, traced once per input signature.

        Its arguments are one tensor per model input (and, for ``"index"``, an
        int32 tensor of per-sample targets); it returns ``(relevance list,
        explained, predictions list)``.
        """
        if mode not in MODES:
            raise ParameterError(f"mode must be one of {MODES}. Received: {mode!r}")
        if mode not in self._compiled:
            signature = [spec.tensor_spec() for spec in self.input_specs]
            if mode == "index":
                signature.append(tf.TensorSpec((None,), tf.int32, name="target"))
            self._compiled[mode] = tf.function(
                _Explain(self, mode),
                input_signature=signature,
                jit_compile=self.jit_compile or None,
                autograph=False,  # the analysis is plain TF and Keras 3 ops: no source conversion needed
            )
        return self._compiled[mode]


class _Explain:
    """The function an analyzer compiles for one selection mode.

    A callable object rather than a closure: TensorFlow counts the traces of
    a Python function by its code object, so closures of every analyzer would
    be counted together and reported as retracing that does not happen.
    """

    def __init__(self, analyzer: Analyzer, mode: str):
        self.analyzer = analyzer
        self.mode = mode

    def __call__(self, *args):
        n_inputs = len(self.analyzer.input_specs)
        xs, target = list(args[:n_inputs]), args[n_inputs] if self.mode == "index" else None
        select = lambda y: selection_mask(y, self.mode, target)  # noqa: E731
        relevance, explained, predictions = self.analyzer.explain_tensors(xs, select)
        return tuple(relevance), explained, tuple(predictions)


def selection_mask(y, mode: str, target=None):
    """0/1 mask of the explained neurons of ``y`` (batch first)."""
    flat = tf.reshape(y, (tf.shape(y)[0], -1))
    if mode == "all":
        return tf.ones_like(y)
    index = tf.argmax(flat, axis=1, output_type=tf.int32) if mode == "max_activation" else target
    mask = tf.one_hot(index, tf.shape(flat)[1], dtype=y.dtype)
    return tf.reshape(mask, tf.shape(y))


def _selection_mode(neuron_selection):
    if isinstance(neuron_selection, str):
        if neuron_selection in ("max_activation", "all"):
            return neuron_selection, None
        raise ParameterError(
            "neuron_selection must be 'max_activation', 'all', an int or an array of ints. "
            f"Received: {neuron_selection!r}"
        )
    target = np.asarray(neuron_selection)
    if target.dtype.kind not in "iu" or target.ndim > 1:
        raise ParameterError(f"neuron_selection indices must be integers (one or one per sample). Received: {neuron_selection!r}")
    return "index", target.astype(np.int32)


def _restructure(relevance, kind, specs):
    if kind == "single":
        return relevance[0]
    if kind == "dict":
        return {spec.name: r for spec, r in zip(specs, relevance)}
    return relevance
