"""The credit-scoring dataset is deterministic, in natural units, and its unused features carry no signal."""

import numpy as np
import pytest

from tfxai import datasets


def test_make_credit_is_deterministic_with_named_columns():
    features, labels = datasets.make_credit(500, seed=2)
    again, labels_again = datasets.make_credit(500, seed=2)
    assert features.shape == (500, len(datasets.CREDIT_FEATURES)) and features.dtype == np.float32
    assert labels.dtype == np.int64 and set(labels.tolist()) <= {0, 1}
    np.testing.assert_array_equal(features, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert not np.array_equal(features, datasets.make_credit(500, seed=3)[0])


def test_make_credit_labels_follow_the_documented_risk_factors():
    features, labels = datasets.make_credit(20000, seed=0)
    column = {name: features[:, i] for i, name in enumerate(datasets.CREDIT_FEATURES)}
    correlation = {name: np.corrcoef(values, labels)[0, 1] for name, values in column.items()}
    assert correlation["debt_to_income"] > 0.2 and correlation["late_payments"] > 0.2
    assert correlation["income"] < -0.1
    for unused in ("age", "open_accounts", "applicant_id_digit"):
        assert abs(correlation[unused]) < 0.05, unused


def test_make_credit_rejects_a_negative_count():
    with pytest.raises(ValueError, match="Received"):
        datasets.make_credit(-1)


def test_make_shapes_masks_mark_the_shape_and_leave_the_images_unchanged():
    images, labels = datasets.make_shapes(12, size=20, seed=5)
    same, same_labels, masks = datasets.make_shapes(12, size=20, seed=5, return_masks=True)
    np.testing.assert_array_equal(images, same)
    np.testing.assert_array_equal(labels, same_labels)
    assert masks.shape == (12, 20, 20) and masks.dtype == bool
    for image, mask in zip(images, masks):
        assert 0 < mask.sum() < mask.size
        inside, outside = image[mask].mean(), image[~mask].mean()
        assert inside > outside  # shapes are drawn brighter than the dark background


def test_make_planted_features_labels_depend_on_the_planted_columns_only():
    x, y, masks = datasets.make_planted_features(5000, features=8, planted=(2, 5), seed=1)
    assert x.shape == (5000, 8) and x.dtype == np.float32 and masks.shape == x.shape
    np.testing.assert_array_equal(y, (x[:, 2] + x[:, 5] > 0).astype(np.int64))
    assert masks[:, [2, 5]].all() and not masks[:, [0, 1, 3, 4, 6, 7]].any()
    correlation = [abs(np.corrcoef(x[:, j], y)[0, 1]) for j in range(8)]
    assert min(correlation[2], correlation[5]) > 0.4 and max(np.delete(correlation, [2, 5])) < 0.05
    with pytest.raises(ValueError, match="Received"):
        datasets.make_planted_features(10, features=4, planted=(4,))
