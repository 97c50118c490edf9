import numpy as np

from danet_tf.models.metrics import (
    SegmentationMetric,
    confusion_matrix,
    format_scores_table,
    score_record,
    scores_of_record,
    segmentation_scores,
)


def _reference_confusion(labels, predictions, n):
    matrix = np.zeros((n, n))
    for t, p in zip(labels.ravel(), predictions.ravel()):
        if t != 255:
            matrix[t, p] += 1
    return matrix


def test_confusion_matrix_ignores_255():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (2, 7, 9))
    labels[0, 0] = 255
    predictions = rng.integers(0, 4, (2, 7, 9))
    np.testing.assert_array_equal(
        confusion_matrix(labels, predictions, 4), _reference_confusion(labels, predictions, 4)
    )


def test_scores_by_hand():
    # truth 0: 3 px (2 right, 1 -> class 1); truth 1: 1 px right; class 2 absent.
    matrix = np.array([[2, 1, 0], [0, 1, 0], [0, 0, 0]])
    scores = segmentation_scores(matrix)
    np.testing.assert_allclose(scores["per_class_iou"][:2], [2 / 3, 1 / 2])
    assert np.isnan(scores["per_class_iou"][2])
    np.testing.assert_allclose(scores["miou"], (2 / 3 + 1 / 2) / 2)
    np.testing.assert_allclose(scores["pixel_accuracy"], 3 / 4)
    table = format_scores_table(scores, ["a", "b", "c"])
    assert "| a | 0.6667 |" in table and "| c | n/a |" in table


def test_one_score_record_for_json_and_back():
    import json

    scores = segmentation_scores(np.array([[2, 1, 0], [0, 1, 0], [0, 0, 0]]))
    record = json.loads(json.dumps(score_record(scores)))  # NaN is not JSON
    assert record["per_class_iou"][2] is None and record["miou"] == scores["miou"]
    np.testing.assert_allclose(record["per_class_iou"][:2], [2 / 3, 1 / 2])
    by_name = score_record(scores, ["a", "b", "c"])["per_class_iou"]
    assert by_name == {"a": record["per_class_iou"][0], "b": 0.5, "c": None}
    back = scores_of_record(record)
    np.testing.assert_array_equal(back["per_class_iou"], scores["per_class_iou"])


def test_metric_accumulates_over_batches_and_matches_numpy():
    rng = np.random.default_rng(1)
    metric = SegmentationMetric(5)
    total = np.zeros((5, 5))
    for _ in range(3):
        labels = rng.integers(0, 5, (2, 6, 6))
        labels[:, 0] = 255
        logits = rng.normal(size=(2, 6, 6, 5)).astype("float32")
        metric.update_state(labels, logits)
        total += _reference_confusion(labels, logits.argmax(-1), 5)
    np.testing.assert_array_equal(metric.confusion.numpy(), total)
    np.testing.assert_allclose(float(metric.result()), segmentation_scores(total)["miou"],
                               rtol=1e-6)
    metric.reset_state()
    assert float(np.sum(metric.confusion.numpy())) == 0.0
