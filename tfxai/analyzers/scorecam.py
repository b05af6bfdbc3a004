"""Score-CAM (Wang et al. 2020): class activation maps weighted by masked scores."""

from __future__ import annotations

import tensorflow as tf

from tfxai import reverse, validation
from tfxai.analyzers import batched
from tfxai.analyzers.base import explained_value
from tfxai.analyzers.cam import GradCAM
from tfxai.analyzers.features import baseline_arrays, scores


class ScoreCAM(GradCAM):
    """Score-CAM (Wang et al. 2020): ``L = ReLU(sum_k alpha_k A_k)``, no gradients.

    The feature map ``A`` is chosen as for :class:`~tfxai.analyzers.cam.GradCAM`
    (``layer=``, default the last convolution). Each channel ``A_k`` is
    upsampled to the input like the Grad-CAM map and scaled to ``[0, 1]``
    per sample (min-max; a constant channel becomes 0), giving a mask
    ``H_k``; its weight is the increase of the explained logit over the
    baseline input, ``alpha_k = f(x H_k + (1 - H_k) b) - f(b)``. All channels
    are evaluated inside the analyzer's ``tf.function``, ``chunk_size`` per
    forward pass: the cost is one forward pass per channel.

    The paper scores with the softmax probability; tfxai explains the logit
    (a final softmax is stripped), as for every method.

    Parameters
    ----------
    model : keras.Model
        The model to explain; never modified.
    layer : str, optional
        See :class:`~tfxai.analyzers.cam.GradCAM`.
    baseline : float, array-like, or list of those
        The input ``b`` the masks blend towards (default 0, the paper's black
        image); one per model input for multi-input models.
    chunk_size : int
        Channels per forward pass (default 16).
    output_index, jit_compile
        See :class:`~tfxai.analyzers.base.Analyzer`.

    References
    ----------
    Wang, Wang, Du, Yang, Zhang, Ding, Mardziel, Hu (2020). Score-CAM:
    score-weighted visual explanations for convolutional neural networks.
    CVPR workshops.
    """

    def __init__(self, model, *, layer: str | None = None, baseline=0.0, chunk_size: int = 16, **kwargs):
        super().__init__(model, layer=layer, **kwargs)
        self.baselines = baseline_arrays(self.input_specs, baseline)
        self.chunk_size = validation.count("chunk_size", chunk_size)
        self.channels = int(self.view.shapes[self.key][self.channel_axis])

    def watched(self, xs):
        return None

    def masked(self, xs, maps):
        """Rows ``(c * B, ...)``: target inputs blended towards the baseline by the scaled ``maps``."""
        rows = []
        for x, target, base in zip(xs, self.targets, self.baselines):
            chunk = tf.shape(maps)[0] // tf.shape(x)[0]
            repeated = batched.stack_variants(tf.broadcast_to(x[None], tf.concat([[chunk], tf.shape(x)], 0)))
            if not target:
                rows.append(repeated)
                continue
            upsampled = self._to_input(maps, repeated)
            axes = list(range(1, upsampled.shape.rank))
            low = tf.reduce_min(upsampled, axis=axes, keepdims=True)
            high = tf.reduce_max(upsampled, axis=axes, keepdims=True)
            keep = tf.math.divide_no_nan(upsampled - low, high - low)
            rows.append(keep * repeated + (1 - keep) * tf.cast(tf.constant(base), x.dtype))
        return rows

    def relevance(self, xs, forward):
        feature_map = forward.values[self.key]
        channels_first = tf.experimental.numpy.moveaxis(feature_map, self.channel_axis, 0)
        chunk = min(self.chunk_size, self.channels)
        base_rows = [tf.cast(tf.constant(b), x.dtype) + tf.zeros_like(x) for x, b in zip(xs, self.baselines)]
        y_base = reverse.forward(self.view, base_rows)[0][self.explained_key()]
        base_score = explained_value(y_base, forward.mask)

        def step(indices, valid):
            maps = tf.gather(channels_first, indices)
            rows = self.masked(xs, batched.stack_variants(maps))
            alpha = tf.cast(scores(self, rows, forward.mask, chunk) - base_score[None], maps.dtype)
            alpha = alpha * tf.cast(valid, maps.dtype)[:, None]  # maps may be float16, the scores float32
            alpha = tf.reshape(alpha, tf.concat([tf.shape(alpha), [1] * (maps.shape.rank - 2)], axis=0))
            return [tf.reduce_sum(alpha * maps, axis=0)]

        cam = tf.nn.relu(batched.fold(step, self.channels, chunk, batched.add)[0])
        return [
            self._to_input(cam, x) if target else tf.zeros(tf.shape(x), cam.dtype)
            for x, target in zip(xs, self.targets)
        ]
