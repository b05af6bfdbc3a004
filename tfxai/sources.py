"""Input files for ``tfxai explain``: image folders, ``.npy`` / ``.npz`` and TFRecord files.

A source knows how many samples it holds and reads any contiguous range of
them as one array per model input (model order), so that a run can be cut
into shards and a shard re-read on its own when a run resumes.
"""

from __future__ import annotations

import pathlib

import numpy as np

from tfxai.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Image files an image folder source reads (any case)."""

COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}
"""Channels of the model input -> ``keras.utils.load_img`` colour mode."""


class ImageFolder:
    """The PNG and JPEG files of a folder, sorted by name, resized to the model input.

    Parameters
    ----------
    folder : pathlib.Path
        The folder (not searched recursively).
    spec : tfxai.inputs.InputSpec
        The model's one input, ``(batch, height, width, channels)``.
    scale : float
        Pixel values (0 to 255) are multiplied by it, e.g. ``1/255``.
    """

    def __init__(self, folder, spec, scale: float = 1.0):
        self.files = sorted(p for p in pathlib.Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InputError(f"Folder {str(folder)!r} holds no {'/'.join(IMAGE_SUFFIXES)} files.")
        if len(spec.shape) != 4 or spec.shape[-1] not in COLOR_MODES or None in spec.shape[1:3]:
            raise InputError(
                "An image folder needs a model input of shape (batch, height, width, 1, 3 or 4 channels). "
                f"Received: input {spec.name!r} of shape {spec.shape}"
            )
        self.size, self.mode, self.scale = tuple(spec.shape[1:3]), COLOR_MODES[spec.shape[-1]], float(scale)

    def __len__(self):
        return len(self.files)

    def names(self, start: int, stop: int) -> list:
        """File names (without suffix) of samples ``start`` to ``stop``."""
        return [p.stem for p in self.files[start:stop]]

    def read(self, start: int, stop: int) -> list:
        """``[images]`` of samples ``start`` to ``stop``, float32 ``(n, H, W, C)``."""
        import keras  # noqa: PLC0415

        images = [
            keras.utils.img_to_array(keras.utils.load_img(p, color_mode=self.mode, target_size=self.size))
            for p in self.files[start:stop]
        ]
        return [np.stack(images).astype(np.float32) * np.float32(self.scale)]


class ArrayFile:
    """A ``.npy`` file (single-input models) or ``.npz`` file (one array per input name), memory-mapped."""

    def __init__(self, path, specs):
        path = pathlib.Path(path)
        if path.suffix == ".npy":
            self.arrays = [np.load(path, mmap_mode="r")]
        else:
            stored = np.load(path)
            names = [spec.name for spec in specs]
            if len(specs) == 1 and len(stored.files) == 1:
                names = stored.files
            missing = [name for name in names if name not in stored.files]
            if missing:
                raise InputError(
                    f"{str(path)!r} lacks arrays for model inputs {missing}. Expected one array per "
                    f"input name {[s.name for s in specs]}. Received: {stored.files}"
                )
            self.arrays = [stored[name] for name in names]
        if len(self.arrays) != len(specs):
            raise InputError(
                f"Model has {len(specs)} inputs {[s.name for s in specs]}: give an .npz file with one array "
                f"per input name. Received: {str(path)!r}"
            )
        if len({len(a) for a in self.arrays}) > 1:
            raise InputError(f"The arrays of {str(path)!r} differ in length: {[len(a) for a in self.arrays]}")

    def __len__(self):
        return len(self.arrays[0])

    def names(self, start: int, stop: int) -> list:
        """Zero-padded sample indices, as names of heatmap files."""
        return [f"{i:08d}" for i in range(start, stop)]

    def read(self, start: int, stop: int) -> list:
        """One array per model input, samples ``start`` to ``stop``."""
        return [np.asarray(a[start:stop]) for a in self.arrays]


class TFRecordFile:
    """``tf.train.Example`` records holding each model input as a flat float or int64 feature of its name."""

    def __init__(self, path, specs):
        import tensorflow as tf  # noqa: PLC0415

        self.path, self.specs = str(path), specs
        features = {}
        for spec in specs:
            if None in spec.shape[1:]:
                raise InputError(
                    f"TFRecord inputs need a fixed shape. Received: input {spec.name!r} {spec.shape}"
                )
            kind = tf.int64 if np.dtype(spec.dtype).kind in "iu" else tf.float32
            features[spec.name] = tf.io.FixedLenFeature((int(np.prod(spec.shape[1:])),), kind)
        self.features = features
        self.count = sum(1 for _ in tf.data.TFRecordDataset(self.path))

    def __len__(self):
        return self.count

    def names(self, start: int, stop: int) -> list:
        """Zero-padded record indices, as names of heatmap files."""
        return [f"{i:08d}" for i in range(start, stop)]

    def read(self, start: int, stop: int) -> list:
        """One array per model input, records ``start`` to ``stop`` reshaped to the input shape."""
        import tensorflow as tf  # noqa: PLC0415

        records = tf.data.TFRecordDataset(self.path).skip(start).take(stop - start).batch(stop - start)
        try:
            parsed = tf.io.parse_example(next(iter(records)), self.features)
        except tf.errors.InvalidArgumentError as error:
            raise InputError(
                f"Records of {self.path!r} must hold features {sorted(self.features)} as flat lists of "
                f"{[f.shape[0] for f in self.features.values()]} values. TensorFlow said: {error.message}"
            ) from None
        return [
            parsed[spec.name].numpy().reshape((-1,) + tuple(spec.shape[1:])).astype(spec.dtype)
            for spec in self.specs
        ]


def open_source(path, specs, scale: float = 1.0):
    """The source for ``path``: a folder of images, a ``.npy`` / ``.npz`` file or a ``.tfrecord`` file.

    Raises
    ------
    InputError
        For a missing path or another kind of file.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        if len(specs) != 1:
            raise InputError(
                f"An image folder fits single-input models. This model has inputs {[s.name for s in specs]}"
            )
        return ImageFolder(path, specs[0], scale)
    if not path.is_file():
        raise InputError(f"Inputs {str(path)!r} do not exist.")
    if path.suffix in (".npy", ".npz"):
        return ArrayFile(path, specs)
    if path.suffix in (".tfrecord", ".tfrecords"):
        return TFRecordFile(path, specs)
    raise InputError(
        f"Expected an image folder, a .npy/.npz file or a .tfrecord file. Received: {str(path)!r}"
    )
