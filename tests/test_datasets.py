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
