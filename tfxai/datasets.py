"""Synthetic datasets for demos and tests; generated locally, never downloaded."""

from __future__ import annotations

import numpy as np

from tfxai.errors import ParameterError

SHAPE_CLASSES = ("horizontal bar", "vertical bar", "square outline", "disk")
"""Class names of :func:`make_shapes`, indexed by label."""


def make_shapes(n: int, size: int = 32, seed: int = 0, return_masks: bool = False):
    """Images of one coloured shape on a noisy background, labelled by shape.

    Each image holds one shape of :data:`SHAPE_CLASSES` (horizontal bar,
    vertical bar, square outline, disk) with random size, position and
    colour, drawn over a random dark background with pixel noise. The shape is
    the only evidence of the class, so a good explanation highlights it.

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Height and width of the images in pixels (at least 16).
    seed : int
        Seed of the random generator; equal seeds give equal datasets.
    return_masks : bool
        Also return where each shape is: the ground truth that the
        localisation metrics of :mod:`tfxai.metrics` compare explanations
        with. The images do not depend on this flag.

    Returns
    -------
    images : numpy.ndarray
        float32 array of shape ``(n, size, size, 3)`` with values in [0, 1].
    labels : numpy.ndarray
        int64 array of shape ``(n,)`` with values in ``range(4)``; classes are
        balanced up to one image.
    masks : numpy.ndarray, only with ``return_masks=True``
        bool array of shape ``(n, size, size)``, True on the shape's pixels.

    Examples
    --------
    >>> images, labels = make_shapes(8, size=32, seed=1)
    >>> images.shape, images.dtype.name, labels.tolist()[:4]  # doctest: +ELLIPSIS
    ((8, 32, 32, 3), 'float32', [...])
    """
    if int(n) < 0:
        raise ParameterError(f"make_shapes needs a sample count n >= 0. Received: n={n}")
    if int(size) < 16:
        raise ParameterError(f"make_shapes needs size >= 16 pixels to draw shapes. Received: size={size}")
    n, size = int(n), int(size)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))
    background = rng.uniform(0.0, 0.35, (n, 1, 1, 3)) + rng.normal(0.0, 0.06, (n, size, size, 3))
    colours = rng.uniform(0.55, 1.0, (n, 1, 1, 3))
    masks = np.stack([_shape_mask(label, size, rng) for label in labels])[..., None]
    images = np.clip(np.where(masks, colours, background), 0.0, 1.0).astype(np.float32)
    if return_masks:
        return images, labels.astype(np.int64), masks[..., 0]
    return images, labels.astype(np.int64)


def shapes_cnn(size: int = 32):
    """The small CNN that ``tfxai demo`` and the tutorials train on :func:`make_shapes`.

    Four ReLU convolutions, two max poolings, global average pooling and a
    softmax classifier over :data:`SHAPE_CLASSES`.

    Parameters
    ----------
    size : int
        Image height and width.

    Returns
    -------
    keras.Sequential
        Untrained and uncompiled.
    """
    import keras  # noqa: PLC0415

    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((size, size, 3), name="image"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3"),
            layers.MaxPooling2D(name="pool2"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv4"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(len(SHAPE_CLASSES), activation="softmax", name="predictions"),
        ],
        name="shapes_cnn",
    )


def train_shapes_cnn(samples: int = 1500, epochs: int = 4, seed: int = 0, test_samples: int = 200):
    """Train :func:`shapes_cnn` on generated shapes (a few seconds on 2 CPU cores).

    Parameters
    ----------
    samples, test_samples : int
        Training and test images, from ``make_shapes(samples, seed=seed)`` and
        ``make_shapes(test_samples, seed=seed + 1)``.
    epochs : int
        Training epochs (Adam, learning rate 3e-3, batch 64).
    seed : int
        Seeds the data and Keras.

    Returns
    -------
    model : keras.Sequential
    test : tuple of numpy.ndarray
        ``(x_test, y_test)``.
    accuracy : float
        Test accuracy.
    """
    import keras  # noqa: PLC0415

    keras.utils.set_random_seed(seed)
    x_train, y_train = make_shapes(samples, seed=seed)
    x_test, y_test = make_shapes(test_samples, seed=seed + 1)
    model = shapes_cnn(x_train.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0)
    return model, (x_test, y_test), float(model.evaluate(x_test, y_test, verbose=0)[1])


def _shape_mask(label: int, size: int, rng) -> np.ndarray:
    """Boolean ``(size, size)`` mask of one random shape of class ``label``."""
    rows, cols = np.mgrid[:size, :size]
    extent = int(rng.integers(size // 4, size // 2 + 1))
    thickness = int(rng.integers(2, max(3, size // 10) + 1))
    top, left = (int(rng.integers(1, size - extent)) for _ in range(2))
    if label == 0:
        return _box(rows, cols, top, left, thickness, extent)
    if label == 1:
        return _box(rows, cols, top, left, extent, thickness)
    if label == 2:
        outer = _box(rows, cols, top, left, extent, extent)
        inner = _box(rows, cols, top + thickness, left + thickness, extent - 2 * thickness, extent - 2 * thickness)
        return outer & ~inner
    radius = extent / 2
    return (rows - top - radius + 0.5) ** 2 + (cols - left - radius + 0.5) ** 2 <= radius**2


def _box(rows, cols, top, left, height, width) -> np.ndarray:
    return (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)


CREDIT_FEATURES = (
    "age",
    "income",
    "debt_to_income",
    "credit_history_years",
    "late_payments",
    "loan_amount",
    "open_accounts",
    "employment_years",
    "applicant_id_digit",
)
"""Column names of :func:`make_credit`, in order."""

CREDIT_CLASSES = ("repaid", "default")
"""Class names of :func:`make_credit`, indexed by label."""


def make_credit(n: int, seed: int = 0):
    """Synthetic loan applications labelled by whether the loan defaulted.

    The default risk is a known function of six features: it rises with the
    debt-to-income ratio, the number of late payments and the loan amount, and
    falls with income, length of credit history and years in employment.
    ``age``, ``open_accounts`` and ``applicant_id_digit`` carry no evidence, so
    a good explanation gives them little relevance. Values are in their
    natural units (years, thousands, ratios, counts).

    Parameters
    ----------
    n : int
        Number of applications.
    seed : int
        Seed of the random generator; equal seeds give equal datasets.

    Returns
    -------
    features : numpy.ndarray
        float32 array of shape ``(n, 9)``; columns as :data:`CREDIT_FEATURES`.
    labels : numpy.ndarray
        int64 array of shape ``(n,)``: 1 for default, 0 for repaid.

    Examples
    --------
    >>> features, labels = make_credit(5, seed=1)
    >>> features.shape, labels.shape
    ((5, 9), (5,))
    """
    if int(n) < 0:
        raise ParameterError(f"make_credit needs a sample count n >= 0. Received: n={n}")
    rng = np.random.default_rng(seed)
    n = int(n)
    age = rng.uniform(21, 70, n)
    income = rng.lognormal(np.log(45), 0.4, n)
    debt_to_income = rng.beta(2, 5, n)
    history = np.minimum(rng.gamma(2.0, 4.0, n), age - 18)
    late = rng.poisson(0.8, n).astype(float)
    loan = rng.uniform(2, 40, n)
    accounts = rng.poisson(3, n).astype(float)
    employment = np.minimum(rng.exponential(6.0, n), age - 18)
    digit = rng.integers(0, 10, n).astype(float)
    risk = (
        2.0 * (debt_to_income - 0.3) / 0.15
        + 0.9 * (late - 0.8)
        - 0.8 * (income - 45) / 20
        - 0.5 * (history - 8) / 5
        + 0.4 * (loan - 20) / 10
        - 0.3 * (employment - 6) / 5
        - 0.5
    )
    labels = rng.uniform(size=n) < 1 / (1 + np.exp(-risk))
    features = np.stack([age, income, debt_to_income, history, late, loan, accounts, employment, digit], axis=1)
    return features.astype(np.float32), labels.astype(np.int64)


def make_planted_features(n: int, features: int = 10, planted=(1, 4), seed: int = 0):
    """Tabular rows whose label depends on a few planted features only, with the ground-truth mask.

    Every feature is standard normal. The label is 1 when the sum of the
    planted features is positive: ``y = [sum_j x_j > 0]`` over ``j`` in
    ``planted``; the other features carry no evidence, so a good explanation
    puts its relevance on the planted ones.

    Parameters
    ----------
    n : int
        Number of rows.
    features : int
        Number of columns.
    planted : tuple of int
        Indices of the columns that decide the label.
    seed : int
        Seed of the random generator.

    Returns
    -------
    features : numpy.ndarray
        float32 ``(n, features)``.
    labels : numpy.ndarray
        int64 ``(n,)`` in {0, 1}.
    masks : numpy.ndarray
        bool ``(n, features)``, True on the planted columns.

    Examples
    --------
    >>> x, y, masks = make_planted_features(4, features=6, planted=(0, 2), seed=1)
    >>> x.shape, masks[0].tolist()
    ((4, 6), [True, False, True, False, False, False])
    """
    if int(n) < 0:
        raise ParameterError(f"make_planted_features needs a sample count n >= 0. Received: n={n}")
    planted = tuple(int(j) for j in planted)
    if not planted or min(planted) < 0 or max(planted) >= int(features):
        raise ParameterError(
            f"planted must list column indices in [0, {features}). Received: planted={planted}"
        )
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (int(n), int(features))).astype(np.float32)
    labels = (x[:, list(planted)].sum(axis=1) > 0).astype(np.int64)
    masks = np.zeros(x.shape, bool)
    masks[:, list(planted)] = True
    return x, labels, masks


POSITIVE_WORDS = ("great", "superb", "wonderful", "excellent", "lovely", "brilliant")
"""Planted positive words of :func:`make_sentiment`."""

NEGATIVE_WORDS = ("awful", "boring", "terrible", "dreadful", "poor", "dull")
"""Planted negative words of :func:`make_sentiment`."""

NEUTRAL_WORDS = (
    "the", "a", "movie", "film", "plot", "actor", "scene", "was", "is", "and", "with", "story", "it",
    "this", "that", "of", "in", "cast", "music", "ending", "director", "script", "we", "saw", "on",
    "friday", "long", "some", "moments", "very", "quite", "its", "second", "half", "first", "act",
)
"""Filler words of :func:`make_sentiment` (no sentiment)."""

SENTIMENT_VOCABULARY = ("<pad>",) + NEUTRAL_WORDS + POSITIVE_WORDS + NEGATIVE_WORDS
"""Token id -> word for :func:`make_sentiment`; id 0 is padding."""


def make_sentiment(n: int, max_length: int = 16, seed: int = 0):
    """Token-id sentences with one planted sentiment word each, labelled by its polarity.

    Every sentence has 6 to ``max_length`` tokens of neutral filler words and
    exactly one word from :data:`POSITIVE_WORDS` (label 1) or
    :data:`NEGATIVE_WORDS` (label 0) at a random position; the rest is padded
    with id 0. The planted word is the only evidence of the label.

    Returns
    -------
    tokens : numpy.ndarray
        int32 ``(n, max_length)`` ids into :data:`SENTIMENT_VOCABULARY`.
    labels : numpy.ndarray
        int64 ``(n,)``, 1 positive, 0 negative; balanced up to one.
    planted : numpy.ndarray
        int64 ``(n,)``, position of the planted word.
    """
    rng = np.random.default_rng(seed)
    ids = {word: i for i, word in enumerate(SENTIMENT_VOCABULARY)}
    neutral = np.array([ids[w] for w in NEUTRAL_WORDS])
    polar = [np.array([ids[w] for w in NEGATIVE_WORDS]), np.array([ids[w] for w in POSITIVE_WORDS])]
    labels = rng.permutation(np.arange(n) % 2)
    tokens = np.zeros((n, max_length), np.int32)
    planted = np.zeros(n, np.int64)
    for i, label in enumerate(labels):
        length = rng.integers(6, max_length + 1)
        tokens[i, :length] = rng.choice(neutral, length)
        planted[i] = rng.integers(length)
        tokens[i, planted[i]] = rng.choice(polar[label])
    return tokens, labels.astype(np.int64), planted


PLANTED_LAGS = (3, 7)
"""Lags (steps back from the forecast) that drive :func:`make_lag_series`."""


def make_lag_series(n: int, window: int = 16, seed: int = 0):
    """Forecasting windows of an AR series that depends on two known lags only.

    ``s_t = 0.6 s_{t-3} - 0.35 s_{t-7} + e_t`` with Gaussian ``e_t``: the best
    forecast of ``s_t`` from its past uses lags 3 and 7 (:data:`PLANTED_LAGS`)
    and nothing else.

    Returns
    -------
    windows : numpy.ndarray
        float32 ``(n, window, 1)``; ``windows[:, -k]`` is lag ``k``.
    targets : numpy.ndarray
        float32 ``(n, 1)``, the next value.
    """
    rng = np.random.default_rng(seed)
    total = n + window + 100
    s = np.zeros(total)
    noise = rng.normal(0.0, 1.0, total)
    for t in range(7, total):
        s[t] = 0.6 * s[t - 3] - 0.35 * s[t - 7] + noise[t]
    s = s[100:]
    windows = np.stack([s[i : i + window] for i in range(n)])[..., None]
    targets = s[window : window + n, None]
    return windows.astype(np.float32), targets.astype(np.float32)
