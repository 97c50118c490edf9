import numpy as np

from danet_tf.data.synthetic import CLASS_NAMES, make_split


def test_deterministic_and_seed_dependent():
    a_images, a_masks = make_split(4, seed=3, height=48, width=64)
    b_images, b_masks = make_split(4, seed=3, height=48, width=64)
    c_images, _ = make_split(4, seed=4, height=48, width=64)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_masks, b_masks)
    assert not np.array_equal(a_images, c_images)
    assert a_images.shape == (4, 48, 64, 3) and a_images.dtype == np.uint8
    assert a_masks.shape == (4, 48, 64) and a_masks.dtype == np.uint8


def _colour_cells(images):
    """Each pixel's colour quantised to 8 levels per channel: 512 cells."""
    q = images.astype(np.int64) // 32
    return q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]


def test_every_class_appears_and_colour_does_not_decide_the_class():
    images, masks = make_split(64, seed=0, height=64, width=64)
    assert set(np.unique(masks)) == set(range(len(CLASS_NAMES)))
    # The best per-pixel colour classifier fitted on one split (majority
    # object class of each colour cell) is barely better than always
    # answering the most frequent class on another split.
    objects = masks > 0
    cells, labels = _colour_cells(images)[objects], masks[objects]
    table = np.zeros((512, len(CLASS_NAMES)), np.int64)
    np.add.at(table, (cells, labels), 1)
    colour_rule = table.argmax(1)
    test_images, test_masks = make_split(64, seed=1, height=64, width=64)
    test_objects = test_masks > 0
    predicted = colour_rule[_colour_cells(test_images)[test_objects]]
    accuracy = np.mean(predicted == test_masks[test_objects])
    majority = np.bincount(test_masks[test_objects]).max() / test_objects.sum()
    assert accuracy < majority + 0.1, (accuracy, majority)
