"""Running an analyzer's compiled function on every replica of a ``tf.distribute`` strategy.

:meth:`Analyzer.analyze` comes here when it is given ``strategy=`` or a
``tf.distribute.DistributedDataset``. Every replica runs the analyzer's own
``tf.function`` (:meth:`Analyzer.compiled`) on its share of a global batch
through ``strategy.run``; the results are gathered with ``strategy.gather``,
which concatenates them in replica order, so the relevance comes back in the
order of the input, equal to a single-device ``analyze``.

Undistributed inputs (arrays, lists, dicts, ``tf.data`` datasets) are split
here: each global batch (``batch_size`` samples, default all) is padded to a
multiple of the replica count by repeating its last sample, cut into equal
contiguous shares, one per replica, and the padding is dropped after the
gather. Explanations are per sample, so padding changes no other sample's
result. Every worker of a multi-worker strategy runs the same program on the
same input and receives the whole result.

A ``DistributedDataset`` is used as the strategy split it: its per-replica
batches are explained where they are, and each step's results are gathered in
replica order (for ``MirroredStrategy``, the order of the dataset).
"""

from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from tfxai.errors import InputError, ParameterTypeError

_RUNNERS = weakref.WeakKeyDictionary()
"""Analyzer -> {(mode, strategy): ReplicaRunner}: each traced once, reused by later ``analyze`` calls."""


def runner(analyzer, mode: str, strategy, x=None):
    """The cached :class:`ReplicaRunner` of ``analyzer`` for ``mode`` on ``strategy`` (see :func:`resolve_strategy`)."""
    strategy = resolve_strategy(strategy, x)
    runners = _RUNNERS.setdefault(analyzer, {})
    if (mode, strategy) not in runners:
        runners[mode, strategy] = ReplicaRunner(analyzer, mode, strategy)
    return runners[mode, strategy]


def is_distributed_dataset(x) -> bool:
    """Whether ``x`` comes from ``strategy.experimental_distribute_dataset`` (or ``..._from_function``)."""
    return isinstance(x, tf.distribute.DistributedDataset)


def resolve_strategy(strategy, x):
    """The strategy to run on: ``strategy``, or the one whose ``scope()`` is active for a distributed dataset."""
    if strategy is not None:
        if not isinstance(strategy, tf.distribute.Strategy):
            raise ParameterTypeError(f"strategy must be a tf.distribute.Strategy. Received: {type(strategy).__name__}")
        return strategy
    if tf.distribute.has_strategy():
        return tf.distribute.get_strategy()
    raise InputError(
        "analyze received a tf.distribute.DistributedDataset but no strategy: pass strategy=<the strategy "
        "that distributed it>, or call analyze inside `with strategy.scope():`."
    )


class ReplicaRunner:
    """Explains one global batch on every replica of ``strategy`` and gathers the results.

    Parameters
    ----------
    analyzer : Analyzer
        The analyzer whose compiled function each replica runs.
    mode : str
        Neuron selection mode, one of :data:`tfxai.analyzers.base.MODES`.
    strategy : tf.distribute.Strategy
        Mirrored, multi-worker, TPU or one-device strategy.
    """

    def __init__(self, analyzer, mode: str, strategy):
        self.explain = analyzer.compiled(mode)
        self.specs = analyzer.input_specs
        self.mode = mode
        self.strategy = strategy
        self.replicas = strategy.num_replicas_in_sync
        self._step = tf.function(_Step(self), reduce_retracing=True, autograph=False)

    def __call__(self, *args):
        """``(relevance tuple, explained)`` of one global batch: model inputs, then targets for ``"index"``."""
        n = len(args[0])
        share = -(-n // self.replicas)  # ceil
        padded = [_pad(np.asarray(a), share * self.replicas) for a in args]
        values = self.strategy.experimental_distribute_values_from_function(
            lambda context: tuple(
                a[context.replica_id_in_sync_group * share : (context.replica_id_in_sync_group + 1) * share]
                for a in padded
            )
        )
        relevance, explained = self._step(values)
        return tuple(r[:n] for r in relevance), explained[:n]

    def run_distributed(self, features, target=None):
        """``(relevance tuple, explained)`` of one step of a ``DistributedDataset``.

        ``features`` holds one per-replica value per model input; ``target``
        is the one neuron index every sample explains (mode ``"index"``).
        """
        args = tuple(features) if target is None else tuple(features) + (tf.constant(target, tf.int32),)
        return self._step(args)

    def on_replica(self, *args):
        """The replica function: explain this replica's share; one value per model input (and target)."""
        xs = [tf.cast(x, spec.dtype) for x, spec in zip(args, self.specs)]
        batch = tf.shape(xs[0])[:1]
        if self.mode == "index":
            xs.append(tf.broadcast_to(args[len(self.specs)], batch))
        # A replica can get no samples (the last batch of a distributed dataset), and the analysis
        # needs at least one: an empty share answers with empty results.
        return tf.cond(batch[0] > 0, lambda: self._explain(xs), lambda: _empty_like(self.explain, xs))

    def _explain(self, args):
        relevance, explained, _ = self.explain(*args)
        return relevance, explained


class _Step:
    """One distributed step: ``strategy.run`` of the replica function, then the gather.

    A callable object rather than a bound method, so that TensorFlow counts
    the traces of each runner apart (see ``tfxai.analyzers.base._Explain``).
    """

    def __init__(self, runner: ReplicaRunner):
        self.runner = runner

    def __call__(self, args):
        strategy = self.runner.strategy
        outputs = strategy.run(self.runner.on_replica, args=args)
        # One gather per tensor: gathering the nested structure at once returns only the first
        # replica's part of some of its tensors (TF 2.21, MirroredStrategy).
        return tf.nest.map_structure(lambda value: strategy.gather(value, axis=0), outputs)


def _empty_like(explain, xs):
    relevance_specs, explained_spec, _ = explain.get_concrete_function().structured_outputs
    relevance = tuple(tf.zeros(tf.shape(x), spec.dtype) for x, spec in zip(xs, relevance_specs))
    return relevance, tf.zeros((0,), explained_spec.dtype)


def _pad(array, size):
    """``array`` grown to ``size`` rows by repeating its last row."""
    missing = size - len(array)
    return array if not missing else np.concatenate([array, np.repeat(array[-1:], missing, axis=0)])


def dataset_batches(runner, dataset, mode, target, specs):
    """Yield ``(relevance, explained)`` per step of a ``DistributedDataset``."""
    if mode == "index" and np.ndim(target) != 0:
        raise InputError(
            "With a DistributedDataset, neuron_selection takes 'max_activation', 'all' or one int: per-sample "
            "indices cannot follow the strategy's split. Pass the undistributed data with strategy= instead."
        )
    for step, batch in enumerate(dataset):
        if not step:
            check_features(_features(batch), specs, runner.strategy)
        yield runner.run_distributed(_ordered(_features(batch), specs), target)


def structure_kind(dataset, specs) -> str:
    """``"single"``, ``"list"`` or ``"dict"``: how ``analyze`` shapes a distributed dataset's results."""
    if isinstance(_features(dataset.element_spec), dict):
        return "dict"
    return "single" if len(specs) == 1 else "list"


def _features(element):
    """The model inputs of a dataset element (drops labels and weights)."""
    if isinstance(element, tuple) and 1 < len(element) <= 3:
        return element[0]
    return element


def _ordered(features, specs) -> list:
    """One entry per model input, in model order."""
    if isinstance(features, dict):
        return [features[spec.name] for spec in specs]
    return list(features) if isinstance(features, (list, tuple)) else [features]


def check_features(features, specs, strategy):
    """Raise :class:`InputError` unless a distributed batch holds one batch per model input."""
    if isinstance(features, dict):
        missing = [spec.name for spec in specs if spec.name not in features]
        if missing:
            raise InputError(
                f"The distributed dataset lacks model inputs {missing}. Received keys: {sorted(features)}"
            )
    features = _ordered(features, specs)
    if len(features) != len(specs):
        raise InputError(
            f"Model has {len(specs)} input(s) {[s.name for s in specs]}; the distributed dataset yields "
            f"{len(features)} tensor(s) per element."
        )
    for spec, feature in zip(specs, features):
        _check_feature(spec, strategy.experimental_local_results(feature)[0])


def _check_feature(spec, feature):
    """``feature``: the first local replica's part of one model input."""
    shape, dtype = getattr(feature, "shape", None), getattr(feature, "dtype", None)
    shown = "(batch, " + ", ".join(str(d) for d in spec.shape[1:]) + ")"
    if shape is None or not tf.TensorShape(spec.shape).is_compatible_with(shape):
        raise InputError(
            f"Input {spec.name!r} expects batches of shape {shown}. The distributed dataset yields "
            f"shape {None if shape is None else tuple(shape)}: batch the dataset before distributing it."
        )
    expected = tf.as_dtype(spec.dtype)
    if not (dtype.is_floating or dtype.is_integer or dtype.is_bool) or (
        expected.is_integer and dtype.is_floating
    ):
        raise InputError(
            f"Input {spec.name!r} expects dtype {spec.dtype}. The distributed dataset yields {dtype.name}."
        )
