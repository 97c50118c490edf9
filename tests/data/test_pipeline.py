import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import make_folder_dataset, write_png

from danet_tf.config import DataConfig
from danet_tf.data import folder
from danet_tf.data.pipeline import build_eval_dataset, build_train_dataset
from danet_tf.data.sources import load_examples


def _synthetic(**kwargs):
    defaults = dict(synthetic_train_size=16, synthetic_val_size=4, synthetic_image_size=48,
                    crop_size=(32, 40), batch_size=4, eval_batch_size=2)
    return DataConfig(**{**defaults, **kwargs})


def test_train_batches_static_shapes_and_values():
    ds = build_train_dataset(_synthetic())
    assert ds.element_spec[0].shape == (4, 32, 40, 3)
    assert ds.element_spec[1].shape == (4, 32, 40)
    for images, masks in ds.take(3):
        assert images.dtype == tf.float32 and masks.dtype == tf.int32
        assert set(np.unique(masks)) <= set(range(6)) | {255}


def test_train_pipeline_is_deterministic_under_a_seed():
    a = [m.numpy() for _, m in build_train_dataset(_synthetic()).take(3)]
    b = [m.numpy() for _, m in build_train_dataset(_synthetic()).take(3)]
    c = [m.numpy() for _, m in build_train_dataset(_synthetic(), seed_offset=1).take(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c))


def test_every_iterator_of_the_train_dataset_yields_the_same_stream():
    """Keras `fit` on JAX takes a batch from an iterator of its own before
    training: the iterator that trains must start where a fresh one does,
    however far the first one had read (or prefetched) ahead."""
    ds = build_train_dataset(_synthetic())
    fresh = [m.numpy() for _, m in ds.take(6)]
    early = iter(ds)
    for _ in range(9):  # more than two passes over the 16 examples
        next(early)
    later = [m.numpy() for _, m in ds.take(6)]
    for x, y in zip(fresh, later):
        np.testing.assert_array_equal(x, y)
    # Passes differ from each other: the first pass's masks are not repeated.
    assert not all(np.array_equal(x, y) for x, y in zip(fresh[:4], fresh[4:] + fresh[:2]))


def test_eval_dataset_is_full_resolution_and_distinct_from_train():
    data = _synthetic()
    batches = list(build_eval_dataset(data))
    assert sum(int(b[0].shape[0]) for b in batches) == 4
    assert batches[0][0].shape[1:] == (48, 48, 3)
    train_images = next(iter(load_examples(data, "train").batch(16)))[0].numpy()
    val_images = next(iter(load_examples(data, "val").batch(4)))[0].numpy()
    assert not any(np.array_equal(v, t) for v in val_images for t in train_images)


def test_folder_source_raise_names_file(tmp_path):
    make_folder_dataset(str(tmp_path), count=3)
    bad = np.zeros((20, 24), np.uint8)
    bad[0, 0] = 50
    write_png(str(tmp_path / "train" / "masks" / "img1.png"), bad)
    data = DataConfig(source="folder", root=str(tmp_path), num_classes=4, crop_size=(16, 16),
                      batch_size=1, shuffle_buffer=1)
    with pytest.raises(tf.errors.OpError, match="img1.png"):
        for _ in build_train_dataset(data).take(3):
            pass


def test_folder_source_skip_counts_bad_files(tmp_path):
    make_folder_dataset(str(tmp_path), split="val", count=3)
    with open(tmp_path / "val" / "images" / "img2.png", "wb") as f:
        f.write(b"broken")
    data = DataConfig(source="folder", root=str(tmp_path), num_classes=4, on_bad_example="skip",
                      eval_batch_size=1)
    skips = folder.SkipCounter()
    batches = list(build_eval_dataset(data, skips))
    assert len(batches) == 2
    assert len(skips) == 1 and "img2.png" in next(iter(skips.skipped))


def test_unknown_source_is_an_error():
    with pytest.raises(ValueError, match="data.source"):
        load_examples(DataConfig(source="nope"), "train")


def test_tfrecord_source_through_pipeline(tmp_path):
    from danet_tf.data.tfrecord import write_shards

    rng = np.random.default_rng(0)
    examples = [(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8),
                 rng.integers(0, 4, (12, 10), dtype=np.uint8), f"id{i}") for i in range(4)]
    write_shards(examples, str(tmp_path / "val"), num_shards=2)
    data = DataConfig(source="tfrecord", val_pattern=str(tmp_path / "val-*"), num_classes=4,
                      eval_batch_size=1)
    assert len(list(build_eval_dataset(data))) == 4
    data.num_classes = 2
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes=2"):
        list(build_eval_dataset(data))
    assert os.path.exists(tmp_path / "val-00000-of-00002.tfrecord")


@pytest.mark.parametrize("on_bad_example", ["raise", "skip"])
def test_folder_validation_has_a_known_size(tmp_path, on_bad_example):
    """Known cardinality: Keras evaluates exactly the good images, with no
    "ran out of data" warning and a correct val_loss."""
    make_folder_dataset(str(tmp_path), "val", count=3, size=(20, 24), num_classes=4)
    if on_bad_example == "skip":
        (tmp_path / "val" / "images" / "img1.png").write_bytes(b"broken")
    data = DataConfig(source="folder", root=str(tmp_path), num_classes=4, eval_batch_size=2,
                      on_bad_example=on_bad_example)
    skips = folder.SkipCounter()
    ds = build_eval_dataset(data, skips)
    good = 3 if on_bad_example == "raise" else 2
    assert int(ds.cardinality()) == (good + 1) // 2
    assert sum(int(images.shape[0]) for images, _ in ds) == good
    assert len(skips) == 3 - good


def test_validation_loss_is_the_weighted_sum_of_its_parts(tmp_path):
    """With a folder validation set, Keras' val_loss equals
    logits + pam + cam losses (weights 1, 1, 1), as the training loss does."""
    import keras

    from danet_tf.config import load_config
    from danet_tf.train.trainer import build_inputs, build_metrics, build_model, compile_model

    make_folder_dataset(str(tmp_path), "train", count=2, size=(32, 32), num_classes=3)
    # Full batches: Keras averages the total and the parts of a partial last
    # batch slightly differently (3e-4 relative with 3 images in batches of 2).
    make_folder_dataset(str(tmp_path), "val", count=4, size=(32, 32), num_classes=3, seed=1)
    config = load_config(overrides=[
        "data.source=folder", f"data.root={tmp_path}", "data.num_classes=3",
        "data.crop_size=[32, 32]", "data.batch_size=2", "data.eval_batch_size=2",
        "model.backbone=resnet18"])
    model = build_model(config)
    compile_model(config, model, build_metrics(config))
    train, val = build_inputs(config)
    history = model.fit(train, validation_data=val, steps_per_epoch=1, epochs=1, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    parts = logs["val_logits_loss"] + logs["val_pam_logits_loss"] + logs["val_cam_logits_loss"]
    np.testing.assert_allclose(logs["val_loss"], parts, rtol=1e-5)
    keras.backend.clear_session()


def test_context_task_batches_and_refuses_another_class_count():
    data = _synthetic(synthetic_task="context", num_classes=3, synthetic_image_size=[32, 64],
                      crop_size=(32, 64), scale_range=(1.0, 1.0))
    images, masks = next(iter(build_train_dataset(data)))
    assert images.shape == (4, 32, 64, 3)
    assert set(np.unique(masks.numpy())) <= {0, 1, 2}
    with pytest.raises(ValueError, match="data.num_classes: the context task has 3 classes"):
        load_examples(_synthetic(synthetic_task="context", num_classes=6), "train")
    with pytest.raises(ValueError, match="the marker task has 4 classes .background, marker"):
        load_examples(_synthetic(synthetic_task="marker", num_classes=3), "train")
    with pytest.raises(ValueError, match="data.synthetic_task must be one of"):
        load_examples(_synthetic(synthetic_task="relations"), "train")
    with pytest.raises(ValueError, match="data.synthetic_image_size"):
        load_examples(_synthetic(synthetic_image_size=[32]), "train")
