import numpy as np
import pytest

from danet_tf.data.synthetic import (
    CLASS_NAMES,
    MARKER_KINDS,
    REGION_KINDS,
    context_objects,
    make_split,
    marker_objects,
)


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


def _same_look(a, b):
    return a[0] == b[0] and a[1] == b[1] and np.array_equal(a[2], b[2]) \
        and np.array_equal(a[3], b[3])


def test_context_objects_follow_the_principle():
    """Per scene: every twin has its same-look twin on the other side, at
    least half the width away; a lone object's texture kind appears nowhere
    else."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        objects = context_objects(rng, 64, 128)
        for obj in objects:
            others = [o for o in objects if o is not obj]
            if obj["class"] == 1:
                twins = [o for o in others if _same_look(o["look"], obj["look"])]
                assert len(twins) == 1 and twins[0]["class"] == 1
                assert twins[0]["side"] != obj["side"]
                assert abs(twins[0]["cx"] - obj["cx"]) >= 64
            else:
                assert all(o["look"][0] != obj["look"][0] for o in others)


def test_context_classes_are_alike_in_everything_local():
    """Over many scenes, twin and lone objects have the same distributions of
    texture kind, period, colour, shape, size, position and paint order (who
    occludes whom): nothing but the far half tells them apart."""
    rng = np.random.default_rng(1)
    stats = {1: [], 2: []}
    for _ in range(2000):
        for order, obj in enumerate(context_objects(rng, 64, 128)):
            kind, period, _, colours = obj["look"]
            edge_distance = obj["cx"] if obj["side"] == 0 else 128 - obj["cx"]
            stats[obj["class"]].append([kind == k for k in range(1, 6)] + [
                period, colours.mean(), obj["shape"] == 0, obj["shape"] == 1, obj["ry"],
                obj["rx"], obj["row"], edge_distance, order])
    twin, lone = np.asarray(stats[1], float), np.asarray(stats[2], float)
    assert 0.9 < len(twin) / len(lone) < 1.1
    spread = np.concatenate([twin, lone]).std(0)
    gap = np.abs(twin.mean(0) - lone.mean(0)) / spread
    assert gap.max() < 0.08, gap.round(3)  # a biased draw (e.g. lone painted last) is ~1


def test_context_task_is_seeded_and_refuses_an_unknown_task():
    a, b = _context(3, seed=5), _context(3, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="data.synthetic_task"):
        make_split(1, seed=0, task="relations")
    with pytest.raises(ValueError, match="width >= height"):
        make_split(1, seed=0, height=128, width=64, task="context")


def test_marker_task_labels_every_region_by_the_far_marker():
    """Pixel level: one marker per scene, its regions in the other half, all
    of one class, and that class is the marker's kind; nothing crosses the
    middle."""
    images, masks = make_split(200, seed=0, height=64, width=128, task="marker")
    assert set(np.unique(masks)) == {0, 1, 2, 3}
    half = masks.shape[2] // 2
    for mask in masks:
        assert not (mask[:, half - 1:half + 1] > 0).any()
        marker_left = (mask[:, :half] == 1).any()
        assert marker_left != (mask[:, half:] == 1).any()
        far = mask[:, half:] if marker_left else mask[:, :half]
        assert len(set(np.unique(far)) - {0}) == 1 and (far >= 2).any()
    regions = [(masks == c).sum() for c in (2, 3)]
    assert 0.8 < regions[0] / regions[1] < 1.25, regions


def test_marker_objects_follow_the_rule():
    """Per scene: one marker, of a locally readable kind; one or two striped
    regions in the other half, in distinct rows, at least half the width
    away, labelled by the marker's kind."""
    rng = np.random.default_rng(0)
    counts = set()
    for _ in range(300):
        objects = marker_objects(rng, 64, 128)
        markers = [o for o in objects if o["class"] == 1]
        regions = [o for o in objects if o["class"] != 1]
        assert len(markers) == 1
        marker = markers[0]
        assert marker["look"][0] in MARKER_KINDS
        counts.add(len(regions))
        assert len({r["row"] for r in regions}) == len(regions)
        for region in regions:
            assert region["look"][0] in REGION_KINDS
            assert region["side"] != marker["side"] and abs(region["cx"] - marker["cx"]) >= 64
            assert region["class"] == 2 + MARKER_KINDS.index(marker["look"][0])
    assert counts == {1, 2}


def test_marker_region_classes_are_alike_in_everything_local():
    """Over many scenes, regions of the two classes have the same
    distributions of texture kind, period, colour, shape, size, position,
    count and paint order: only the far marker tells them apart."""
    rng = np.random.default_rng(1)
    stats = {2: [], 3: []}
    for _ in range(3000):
        objects = marker_objects(rng, 64, 128)
        regions = sum(o["class"] != 1 for o in objects)
        for order, obj in enumerate(objects):
            if obj["class"] == 1:
                continue
            kind, period, _, colours = obj["look"]
            edge_distance = obj["cx"] if obj["side"] == 0 else 128 - obj["cx"]
            stats[obj["class"]].append([kind == k for k in REGION_KINDS] + [
                period, colours.mean(), obj["shape"] == 0, obj["shape"] == 1, obj["ry"],
                obj["rx"], obj["row"], obj["side"], obj["cy"], edge_distance, regions, order])
    a, b = np.asarray(stats[2], float), np.asarray(stats[3], float)
    assert 0.9 < len(a) / len(b) < 1.1
    spread = np.concatenate([a, b]).std(0)
    gap = np.abs(a.mean(0) - b.mean(0)) / spread
    assert gap.max() < 0.08, gap.round(3)  # a biased draw (e.g. one class always 2 regions) is ~1


def test_marker_task_is_seeded_and_needs_width_at_least_height():
    a = make_split(3, seed=5, height=64, width=128, task="marker")
    b = make_split(3, seed=5, height=64, width=128, task="marker")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="width >= height"):
        make_split(1, seed=0, height=128, width=64, task="marker")
