import numpy as np
import pytest

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


def _context(n, seed, height=64, width=128):
    return make_split(n, seed=seed, height=height, width=width, task="context")


def test_context_task_labels_follow_the_far_half():
    images, masks = _context(200, seed=0)
    assert set(np.unique(masks)) == {0, 1, 2}
    half = masks.shape[2] // 2
    for mask in masks:
        # A twin always has its twin in the other half; no object crosses
        # the middle (centres sit in the outer quarters).
        assert (mask[:, :half] == 1).any() == (mask[:, half:] == 1).any()
        assert not (mask[:, half - 1:half + 1] > 0).any()
    twin, lone = (masks == 1).sum(), (masks == 2).sum()
    assert 0.7 < twin / lone < 1.4, (twin, lone)  # balanced: pairs uniform in 0, 1, 2


def test_context_twins_look_alike_and_lone_objects_look_like_twins():
    """Up close, twin and lone objects are drawn alike: their colour
    statistics agree, and the colours of each twin pair match each other
    (what only the far half reveals)."""
    images, masks = _context(300, seed=1)
    pixels = images.astype(np.float64)
    twin_mean = pixels[masks == 1].mean(0)
    lone_mean = pixels[masks == 2].mean(0)
    np.testing.assert_allclose(twin_mean, lone_mean, atol=6.0)
    half = masks.shape[2] // 2
    pair_gaps, lone_gaps = [], []
    for image, mask in zip(pixels, masks):
        for cls, gaps in ((1, pair_gaps), (2, lone_gaps)):
            left, right = mask[:, :half] == cls, mask[:, half:] == cls
            if left.any() and right.any():
                gaps.append(np.abs(image[:, :half][left].mean(0)
                                   - image[:, half:][right].mean(0)).mean())
    # Twins share their colours (only noise and shape differ); lone objects
    # on the two sides do not.
    assert np.median(pair_gaps) < 0.5 * np.median(lone_gaps), (np.median(pair_gaps),
                                                               np.median(lone_gaps))


def test_context_task_is_seeded_and_refuses_an_unknown_task():
    a, b = _context(3, seed=5), _context(3, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="data.synthetic_task"):
        make_split(1, seed=0, task="relations")
