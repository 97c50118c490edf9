import os

import numpy as np
import pytest
from helpers import make_folder_dataset, write_png

from danet_tf.data import folder
from danet_tf.data.catalog import cityscapes_label_map, voc_palette


def test_folder_pairs_by_stem_and_reads(tmp_path):
    arrays = make_folder_dataset(str(tmp_path), count=3)
    pairs = folder.list_pairs("folder", str(tmp_path), "train")
    assert [os.path.basename(p[0]) for p in pairs] == ["img0.png", "img1.png", "img2.png"]
    image, mask = folder.read_pair(*pairs[1], num_classes=4)
    np.testing.assert_array_equal(image, arrays[1][0])
    np.testing.assert_array_equal(mask, arrays[1][1])


def test_missing_mask_names_the_file(tmp_path):
    make_folder_dataset(str(tmp_path), count=2)
    os.remove(tmp_path / "train" / "masks" / "img1.png")
    with pytest.raises(folder.BadExampleError, match="img1.png"):
        folder.list_pairs("folder", str(tmp_path), "train")


@pytest.mark.parametrize(
    "corrupt, message",
    [
        ("size", "must be the same size"),
        ("value", r"values \[9\] >= num_classes=4"),
        ("mask_channels", "expected a single-channel index PNG"),
        ("unreadable", "not a readable image"),
        ("missing", "does not exist"),
    ],
)
def test_bad_examples_raise_with_file_name(tmp_path, corrupt, message):
    make_folder_dataset(str(tmp_path), count=1)
    image_path = str(tmp_path / "train" / "images" / "img0.png")
    mask_path = str(tmp_path / "train" / "masks" / "img0.png")
    if corrupt == "size":
        write_png(mask_path, np.zeros((5, 5), np.uint8))
    elif corrupt == "value":
        mask = np.zeros((20, 24), np.uint8)
        mask[3, 3] = 9
        write_png(mask_path, mask)
    elif corrupt == "mask_channels":
        write_png(mask_path, np.zeros((20, 24, 3), np.uint8))
    elif corrupt == "unreadable":
        with open(image_path, "wb") as f:
            f.write(b"not a png")
    else:
        os.remove(image_path)
    with pytest.raises(folder.BadExampleError, match=message) as info:
        folder.read_pair(image_path, mask_path, num_classes=4)
    assert "img0.png" in str(info.value)


def test_images_follow_the_official_rgb_rule(tmp_path):
    """Grayscale and RGBA images are read as RGB (`.convert("RGB")`), as the official code."""
    gray = np.arange(20 * 24, dtype=np.uint8).reshape(20, 24)
    write_png(str(tmp_path / "gray.png"), gray)
    rgba = np.dstack([gray, gray // 2, gray // 3, np.full_like(gray, 7)])
    write_png(str(tmp_path / "rgba.png"), rgba)
    np.testing.assert_array_equal(folder.read_rgb(str(tmp_path / "gray.png")),
                                  np.dstack([gray] * 3))
    np.testing.assert_array_equal(folder.read_rgb(str(tmp_path / "rgba.png")), rgba[..., :3])


def test_cityscapes_layout_and_label_ids(tmp_path):
    root = tmp_path / "cityscapes"
    label_ids = np.array([[7, 8, 26, 0], [33, 1, 255, 24]], np.uint8)
    write_png(str(root / "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png"),
              np.zeros((2, 4, 3), np.uint8))
    write_png(str(root / "gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png"), label_ids)
    pairs = folder.list_pairs("cityscapes", str(root), "val")
    assert len(pairs) == 1
    _, mask = folder.read_pair(*pairs[0], num_classes=19, label_map=cityscapes_label_map())
    # road 7->0, sidewalk 8->1, car 26->13, unlabeled 0->255, bicycle 33->18,
    # ego vehicle 1->255, 255->255, person 24->11.
    np.testing.assert_array_equal(mask, [[0, 1, 13, 255], [18, 255, 255, 11]])


def test_voc_palette_png_gives_indices(tmp_path):
    root = tmp_path / "voc"
    os.makedirs(root / "ImageSets" / "Segmentation")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000001\n")
    from PIL import Image

    Image.fromarray(np.full((3, 4, 3), 100, np.uint8)).save(root / "JPEGImages.jpg")
    os.makedirs(root / "JPEGImages")
    Image.fromarray(np.full((3, 4, 3), 100, np.uint8)).save(root / "JPEGImages" / "2007_000001.jpg")
    indices = np.array([[0, 15, 15, 255], [1, 1, 20, 0], [0, 0, 0, 0]], np.uint8)
    write_png(str(root / "SegmentationClass" / "2007_000001.png"), indices,
              palette=voc_palette().ravel().tolist())
    with Image.open(root / "SegmentationClass" / "2007_000001.png") as check:
        assert check.mode == "P"
    pairs = folder.list_pairs("pascal_voc", str(root), "val")
    image, mask = folder.read_pair(*pairs[0], num_classes=21)
    np.testing.assert_array_equal(mask, indices)
    assert image.shape == (3, 4, 3)
