"""Pictures: overlays that leave background untinted and outline objects, legends."""

import numpy as np

from danet_tf.deploy import visualize

NAMES = ("background", "cat", "dog")
PALETTE = np.array([[0, 0, 0], [200, 0, 0], [0, 200, 0]], np.uint8)


def test_overlay_tints_objects_outlines_them_and_leaves_background():
    image = np.full((6, 8, 3), 100, np.uint8)
    image[2:4, 2:5] = (200, 0, 0)  # an object the colour of its class
    classes = np.zeros((6, 8), np.int64)
    classes[2:4, 2:5] = 1
    out = visualize.overlay(image, classes, PALETTE, NAMES, alpha=0.5)
    edges = visualize.class_boundaries(classes)
    assert np.all(out[edges] == 255)
    inside = ~edges & (classes == 1)
    np.testing.assert_array_equal(out[inside], np.full((inside.sum(), 3), (200, 0, 0)))
    background = ~edges & (classes == 0)
    np.testing.assert_array_equal(out[background], image[background])


def test_class_boundaries():
    classes = np.array([[0, 0, 1], [0, 0, 1], [2, 2, 2]])
    np.testing.assert_array_equal(visualize.class_boundaries(classes),
                                  [[0, 1, 0], [1, 1, 1], [0, 0, 0]])


def test_legend_lists_the_classes_present_below_the_picture():
    classes = np.zeros((10, 20), np.int64)
    classes[:, 15:] = 2
    picture = PALETTE[classes]
    sheet = visualize.with_legend(picture, PALETTE, NAMES, classes)
    np.testing.assert_array_equal(sheet[:10, :20], picture)
    rows = sheet.shape[0] - 10
    assert 2 * 12 <= rows <= 2 * 16 + 8  # two classes present: two swatches
    swatches = sheet[10:, 4:17]
    assert (swatches == PALETTE[2]).all(axis=-1).any()  # the dog swatch
    assert not (swatches == PALETTE[1]).all(axis=-1).any()  # no cat in the picture


def test_attention_pictures_refuse_a_head_without_both_modules():
    import pytest

    from danet_tf import DANet

    model = DANet(num_classes=3, backbone="resnet18", head="pam")
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="head=danet model"):
        visualize.attention_maps(model, image)
    with pytest.raises(ValueError, match="head=danet model"):
        visualize.channel_responses(model, image, np.zeros((32, 32), int), 1)
