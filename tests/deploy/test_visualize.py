"""Pictures: overlays that leave background and ignored pixels untinted and
outline objects, legends, and attention pictures whose titles and colour-bar
labels neither overlap nor leave the picture at the smallest input, 96x96."""

import argparse

import numpy as np
import pytest

from danet_tf.cli import visualize_attention
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
    from danet_tf import DANet

    model = DANet(num_classes=3, backbone="resnet18", head="pam")
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="head=danet model"):
        visualize.attention_maps(model, image)
    with pytest.raises(ValueError, match="head=danet model"):
        visualize.channel_responses(model, image, np.zeros((32, 32), int), 1)


def test_position_attention_of_a_pam_only_head_is_softmax_of_its_queries_and_keys():
    from danet_tf import DANet

    model = DANet(num_classes=3, backbone="resnet18", head="pam")
    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), np.uint8)
    pam, grid = visualize.position_attention(model, image)
    assert grid == (4, 6)
    head = model.get_layer("head")
    features = model.get_layer("backbone")(
        visualize.normalize(image)[None], training=False)["layer4"]
    x = np.asarray(head.get_layer("conv5a")(features, training=False), np.float64)[0]
    sa = head.get_layer("sa")

    def project(conv):
        kernel, bias = (np.asarray(w, np.float64) for w in conv.get_weights())
        return x.reshape(-1, x.shape[-1]) @ kernel[0, 0] + bias

    energy = project(sa.query_conv) @ project(sa.key_conv).T
    expected = np.exp(energy - energy.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pam, expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="head=danet or pam"):
        visualize.position_attention(DANet(num_classes=3, backbone="resnet18", head="cam"), image)


def scene_with_ignore():
    """A 6x8 grey image: class 0 left, an object of class 1, a class-2 strip
    on the right and an ignore (255) band over the two top rows."""
    image = np.full((6, 8, 3), 100, np.uint8)
    classes = np.zeros((6, 8), np.int64)
    classes[3:5, 1:3] = 1
    classes[:, 6:] = 2
    classes[:2] = 255
    return image, classes


def interior(classes, cls):
    """Pixels of `cls` that are not on a drawn boundary of any kind."""
    return (classes == cls) & ~visualize.class_boundaries(classes)


def test_overlay_tints_class_0_unless_it_is_named_background():
    image, classes = scene_with_ignore()
    for names in (("Background", "cat", "dog"), ("BACKGROUND", "cat", "dog")):
        out = visualize.overlay(image, classes, PALETTE, names)
        np.testing.assert_array_equal(out[interior(classes, 0)], image[interior(classes, 0)])
    out = visualize.overlay(image, classes, PALETTE, ("road", "cat", "dog"))
    zero = interior(classes, 0)
    assert zero.any() and (out[zero] == (50, 50, 50)).all()  # 0.5 * 100 + 0.5 * black
    assert (out[interior(classes, 1)] == (150, 50, 50)).all()


def test_overlay_never_tints_the_ignore_label_and_untinted_overrides_the_names():
    image, classes = scene_with_ignore()
    image[:2] = (10, 20, 30)  # the ignore band: PALETTE has no row 255
    out = visualize.overlay(image, classes, PALETTE, ("road", "cat", "dog"), untinted={2})
    np.testing.assert_array_equal(out[0], image[0])  # untinted
    assert (out[1, :6] == 255).all()  # its boundary with the tinted class 0 is outlined
    np.testing.assert_array_equal(out[interior(classes, 2)], image[interior(classes, 2)])
    assert (out[interior(classes, 0)] == (50, 50, 50)).all()  # tinted: not in `untinted`
    out = visualize.overlay(image, classes, PALETTE, NAMES, untinted=())
    assert (out[interior(classes, 0)] == (50, 50, 50)).all()  # () tints even "background"
    np.testing.assert_array_equal(out[0], image[0])


def test_overlay_outlines_only_boundaries_that_touch_a_tinted_class():
    image, classes = scene_with_ignore()
    out = visualize.overlay(image, classes, PALETTE, NAMES)
    # Row 1 (ignore) above row 2 (background): both untinted, no line between them.
    np.testing.assert_array_equal(out[1, :5], image[1, :5])
    # Background next to the cat and next to the dog strip: outlined in white.
    assert (out[2, 1:3] == 255).all() and (out[2:, 5] == 255).all()


def test_legend_names_the_ignore_label():
    classes = np.zeros((10, 20), np.int64)
    classes[:2] = 255
    picture = np.zeros((10, 20, 3), np.uint8)
    sheet = visualize.with_legend(picture, PALETTE, NAMES, classes)
    second_swatch = sheet[10 + 4 + 16 + 2:10 + 4 + 16 + 11, 6:15]
    assert (second_swatch == 255).all()  # white: 255 has no palette colour


def test_wrap_keeps_every_line_within_the_width():
    draw = visualize.scratch_draw()
    text = "channel 101 before CAM on 'background' (gamma 0.4, change +0.12) " + "x" * 60
    lines = visualize.wrap(draw, text, 96)
    assert len(lines) >= 4 and "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert all(visualize.text_width(draw, line) <= 96 for line in lines)


def test_colour_bar_labels_its_ends_inside_the_picture():
    panel = np.full((96, 96, 3), 77, np.uint8)
    out = visualize.with_colour_bar(panel, -4.96e-05, 2.99)
    np.testing.assert_array_equal(out[:, :96], panel)
    bar = out[:, 98:110]
    np.testing.assert_array_equal(bar[0, 0], visualize.colormap(np.array(1.0)))
    np.testing.assert_array_equal(bar[-1, 0], visualize.colormap(np.array(0.0)))
    labels = out[:, 110:].min(axis=-1) < 128
    assert labels[:16].any() and labels[-16:].any()  # high at the top, low at the bottom
    assert not labels[:, -1].any() and not labels[:, 0].any()  # neither label clipped
    assert not labels[16:-16].any()


def attention_pictures_at_96():
    """What visualize_attention draws for a 96x96 image (layer4 grid 12x12,
    128 CAM channels), from random attention instead of a model."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    grid = (12, 12)
    pam = rng.random((144, 144)).astype(np.float32)
    pam /= pam.sum(1, keepdims=True)
    responses = [(c, rng.random(grid) * 3, rng.random(grid) - 4e-5, 0.123) for c in (101, 7, 64)]
    classes = rng.integers(0, 3, (96, 96))
    prediction = visualize.with_legend(PALETTE[classes], PALETTE, NAMES, classes)
    pictures = (
        visualize_attention.pam_pictures(image, pam, grid, [(5, 5), (95, 95), (48, 10)], 0.4)
        + [visualize_attention.cam_matrix_picture(rng.random((128, 128)), 96, 0.4)]
        + visualize_attention.channel_pictures(image, responses, 0.4, "background"))
    return image, prediction, pictures


def overlap(a, b):
    """Whether two `(x0, y0, x1, y1)` boxes (x1, y1 exclusive) share a pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_attention_sheet_titles_neither_overlap_nor_leave_the_sheet_at_96():
    image, prediction, pictures = attention_pictures_at_96()
    sheet, titles, panels = visualize_attention.attention_sheet(image, prediction, pictures)
    assert len(panels) == 2 + 3 + 1 + 6 and len(titles) > len(panels)  # long titles wrap
    height, width = sheet.shape[:2]
    for i, box in enumerate(titles):
        assert 0 <= box[0] < box[2] <= width and 0 <= box[1] < box[3] <= height, box
        assert not any(overlap(box, other) for other in titles[i + 1:] + panels), box
    # The boxes are where the text is: no dark pixel outside the panels and the boxes.
    ink = sheet.min(axis=-1) < 128
    for x0, y0, x1, y1 in titles + panels:
        ink[y0:y1, x0:x1] = False
    assert not ink.any()


@pytest.mark.parametrize("index", range(10))
def test_each_attention_picture_has_a_title_and_a_colour_bar(index):
    _, _, pictures = attention_pictures_at_96()
    name, panel, title = pictures[index]
    assert name.endswith(".png") and panel.shape[0] == 96 and panel.shape[1] > 96 + 2 + 12
    assert (panel[:, 98:110] == visualize.colormap(np.linspace(1.0, 0.0, 96))[:, None]).all()
    out = visualize.titled(panel, title)
    np.testing.assert_array_equal(out[-4 - 96:-4, 4:4 + panel.shape[1]], panel)
    band = out[4:-4 - 96, 4:-4]
    assert band.shape[0] >= visualize.title_height(title, panel.shape[1])
    assert (band.min(axis=-1) < 128).any()  # the title is drawn above the panel


def test_points_are_y_x_pixel_coordinates_in_help_and_errors(capsys):
    with pytest.raises(SystemExit):
        visualize_attention.main(["--help"])
    assert "Y,X pixel coordinates (row, then column" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(argparse.ArgumentTypeError, match=r"Y,X pixel coordinates.*'40'"):
        visualize_attention.parse_point("40")
    assert visualize_attention.parse_point("40,30") == (40, 30)
    visualize_attention.check_points([(0, 0), (95, 51)], 96, 52)
    with pytest.raises(ValueError) as info:
        visualize_attention.check_points([(3, 3), (10, 52)], 96, 52)
    message = str(info.value)
    assert "\n" not in message and "10,52" in message and "96x52" in message
