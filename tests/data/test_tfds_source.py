import io
import zipfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from danet_tf.config import DataConfig
from danet_tf.data.pipeline import build_eval_dataset
from danet_tf.data.tfds_source import load_tfds


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _zeros_like_spec(spec):
    if spec.dtype == tf.string:
        return b""
    return np.zeros([d if d is not None else 1 for d in spec.shape], spec.dtype.as_numpy_dtype)


def _fake_examples(image_key, mask_key, masks):
    """An `as_dataset_fn` yielding images with the given `(H, W)` masks."""

    def as_dataset(self, *args, **kwargs):
        signature = self.info.features.get_tensor_spec()

        def generate():
            for mask in masks:
                example = tf.nest.map_structure(_zeros_like_spec, signature)
                example[image_key] = np.full((*mask.shape, 3), 7, np.uint8)
                example[mask_key] = np.repeat(mask[..., None], signature[mask_key].shape[-1], -1)
                yield example

        return tf.data.Dataset.from_generator(generate, output_signature=signature)

    return as_dataset


def test_oxford_pet_trimap_maps_to_three_classes():
    trimap = np.array([[1, 2, 3], [3, 2, 1]], np.uint8)
    with tfds.testing.mock_data(
            as_dataset_fn=_fake_examples("image", "segmentation_mask", [trimap])):
        (image, mask), = list(load_tfds("oxford_iiit_pet", "train"))
    assert image.shape == (2, 3, 3) and image.dtype == tf.uint8
    np.testing.assert_array_equal(mask, trimap - 1)


def test_scene_parse150_reduces_zero_label():
    annotation = np.array([[0, 1, 150], [2, 0, 7]], np.uint8)
    with tfds.testing.mock_data(as_dataset_fn=_fake_examples("image", "annotation", [annotation])):
        (_, mask), = list(load_tfds("scene_parse150", "val"))
    np.testing.assert_array_equal(mask, [[255, 0, 149], [1, 255, 6]])


def test_cityscapes_prepared_from_manual_dir_zips(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    label_ids = np.zeros((1024, 2048), np.uint8)
    label_ids[:512] = 7  # road
    label_ids[512:, :1024] = 26  # car
    label_ids[512:, 1024:] = 4  # static -> ignore
    image = np.zeros((1024, 2048, 3), np.uint8)
    with zipfile.ZipFile(manual / "leftImg8bit_trainvaltest.zip", "w") as z_img, \
            zipfile.ZipFile(manual / "gtFine_trainvaltest.zip", "w") as z_gt:
        for split in ("train", "val", "test"):
            name = "aachen_000000_000019"
            z_img.writestr(f"leftImg8bit/{split}/aachen/{name}_leftImg8bit.png", _png(image))
            z_gt.writestr(f"gtFine/{split}/aachen/{name}_gtFine_labelIds.png", _png(label_ids))
    data = DataConfig(source="tfds", tfds_name="cityscapes", num_classes=19,
                      data_dir=str(tmp_path / "tfds"), manual_dir=str(manual), eval_batch_size=1)
    (images, masks), = list(build_eval_dataset(data))
    assert images.shape == (1, 1024, 2048, 3)
    mask = masks.numpy()[0]
    assert np.all(mask[:512] == 0) and np.all(mask[512:, :1024] == 13)
    assert np.all(mask[512:, 1024:] == 255)


def test_unknown_tfds_name():
    with pytest.raises(ValueError, match="Unknown tfds dataset"):
        load_tfds("imagenet2012", "train")
