"""Dataset evaluation with `Segmenter`: mIoU, pixel accuracy, per-class IoU."""

import numpy as np

from danet_tf.data.sources import load_examples
from danet_tf.models.metrics import confusion_matrix, segmentation_scores


def evaluate_segmenter(segmenter, data, num_classes, limit=None):
    """Accumulates the confusion matrix over the `val` split of `data`.

    Returns:
        `(scores dict, confusion (C, C) float64, number of images)`.
    """
    confusion = np.zeros((num_classes, num_classes))
    count = 0
    for image, mask in load_examples(data, "val").as_numpy_iterator():
        prediction = segmenter.predict(image)
        confusion += np.asarray(confusion_matrix(mask, prediction, num_classes), np.float64)
        count += 1
        if limit and count >= limit:
            break
    return segmentation_scores(confusion), confusion, count
