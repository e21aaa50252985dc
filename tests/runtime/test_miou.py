import numpy as np
import pytest

from runtime.miou import class_iou, confusion_matrix, mean_iou


def test_confusion_matrix_counts_and_ignores_255():
    label = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    conf = confusion_matrix(pred, label, 3)
    np.testing.assert_array_equal(conf, [[1, 1, 0], [0, 2, 0], [0, 0, 1]])
    np.testing.assert_allclose(class_iou(conf), [0.5, 2 / 3, 1.0])
    assert mean_iou(conf) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)


def test_absent_classes_are_skipped_and_identity_scores_one():
    label = np.random.default_rng(0).integers(0, 3, (20, 20))
    conf = confusion_matrix(label, label, 5)
    assert mean_iou(conf) == 1.0
    assert np.isnan(class_iou(conf)[3:]).all()


def test_bad_values_raise():
    with pytest.raises(ValueError, match="prediction values outside"):
        confusion_matrix(np.array([5]), np.array([0]), 5)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 5)
