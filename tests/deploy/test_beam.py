"""Batch prediction with Apache Beam (`danet-batch-predict`) on a DANet-18 and
six tiny images of two sizes, two of them unusable."""

import json
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.inference.base import RunInference
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from helpers import write_png
from PIL import Image

from danet_tf import DANet
from danet_tf.cli import batch_predict, evaluate
from danet_tf.data.images import read_rgb
from danet_tf.deploy import export
from danet_tf.deploy.beam import DANetModelHandler, keyed_handler
from danet_tf.deploy.inference import Segmenter
from danet_tf.deploy.loading import load_logits_fn

NUM_CLASSES = 4
GOOD = {"a0": (64, 64), "a1": (64, 64), "b0": (48, 80), "b1": (48, 80)}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    net = DANet(NUM_CLASSES, backbone="resnet18")
    net.set_gammas(pam=0.5, cam=-0.5)
    path = str(tmp_path_factory.mktemp("keras") / "danet.keras")
    net.save(path)
    return net, path


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """`root/val/{images,masks}` (the folder layout evaluate reads): four good
    pairs, a truncated JPEG and an image whose mask has another size."""
    root = tmp_path_factory.mktemp("collection")
    images, masks = root / "val" / "images", root / "val" / "masks"
    rng = np.random.default_rng(0)
    for stem, size in GOOD.items():
        write_png(str(images / f"{stem}.png"), rng.integers(0, 256, (*size, 3)))
        mask = rng.integers(0, NUM_CLASSES, size)
        mask[0, :5] = 255
        write_png(str(masks / f"{stem}.png"), mask)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(images / "cut.jpg")
    data = (images / "cut.jpg").read_bytes()
    (images / "cut.jpg").write_bytes(data[: len(data) // 2])
    write_png(str(masks / "cut.png"), np.zeros((64, 64)))
    write_png(str(images / "wrong.png"), rng.integers(0, 256, (64, 64, 3)))
    write_png(str(masks / "wrong.png"), np.zeros((48, 48)))
    return root


def batch_predict_args(collection, out, model_path, *extra):
    return ["--input", str(collection / "val" / "images" / "*"), "--output", str(out),
            "--model", model_path, "--masks", str(collection / "val" / "masks" / "*.png"),
            "--workers", "1", *extra]


@pytest.fixture(scope="module")
def first_run(model, collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("predictions")
    counters, metrics = batch_predict.run(batch_predict_args(collection, out, model[1]))
    return out, counters, metrics


def class_map(path):
    return np.asarray(Image.open(path))


def test_class_maps_equal_the_segmenters_and_records_keep_the_keys(model, collection,
                                                                  first_run):
    out, counters, _ = first_run
    assert counters == {"matched": 6, "segmented": 4, "skipped": 0, "failed": 2}
    segmenter = Segmenter(load_logits_fn(model[1])[0])
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    paths = {str(collection / "val" / "images" / f"{stem}.png") for stem in GOOD}
    assert {r["path"] for r in records} == paths
    for record in records:
        stem = os.path.splitext(os.path.basename(record["path"]))[0]
        expected = segmenter.predict(read_rgb(record["path"]))
        got = class_map(out / f"{stem}.png")
        np.testing.assert_array_equal(got, expected)
        assert Image.open(out / f"{stem}.png").mode == "P"
        assert (record["height"], record["width"]) == GOOD[stem]
        assert record["format"] == "keras"
        shares = np.bincount(expected.ravel(), minlength=NUM_CLASSES) / expected.size
        assert sum(record["class_shares"].values()) == pytest.approx(1.0, abs=1e-5)
        assert max(record["class_shares"].values()) == pytest.approx(shares.max(), abs=1e-6)


def test_metrics_equal_evaluate_exactly(model, collection, first_run, tmp_path):
    out, _, metrics = first_run
    result = tmp_path / "eval.json"
    evaluate.main(["--model", model[1], "--json", str(result), "--set", "data.source=folder",
                   "--set", f"data.root={collection}", "--set", f"data.num_classes={NUM_CLASSES}",
                   "--set", "data.on_bad_example=skip"])
    expected = json.loads(result.read_text())
    assert expected["images"] == metrics["images"] == 4
    np.testing.assert_array_equal(np.asarray(metrics["confusion"]),
                                  np.asarray(expected["confusion"]))
    assert np.sum(metrics["confusion"]) == 2 * 64 * 64 + 2 * 48 * 80 - 4 * 5  # 255 ignored
    assert metrics["miou"] == expected["miou"]
    assert metrics["pixel_accuracy"] == expected["pixel_accuracy"]
    assert metrics["per_class_iou"] == expected["per_class_iou"]


def test_bad_inputs_land_in_failed_jsonl(collection, first_run):
    out = first_run[0]
    failed = [json.loads(line) for line in (out / "failed.jsonl").read_text().splitlines()]
    by_name = {os.path.basename(f["path"]): f["error"] for f in failed}
    assert set(by_name) == {"cut.jpg", "wrong.png"}
    assert "not a readable image" in by_name["cut.jpg"]
    assert "must be the same size" in by_name["wrong.png"]
    assert all("\n" not in error for error in by_name.values())
    assert not (out / "cut.png").exists() and not (out / "wrong.json").exists()


def test_rerun_skips_finished_images_and_overwrite_redoes_them(model, collection, first_run,
                                                              tmp_path):
    out, _, metrics = first_run
    copy = tmp_path / "out"
    copy.mkdir()
    for name in os.listdir(out):
        if name.endswith((".png", ".json")) and not name.startswith("a0."):
            (copy / name).write_bytes((out / name).read_bytes())  # as if killed before a0
    counters, resumed = batch_predict.run(batch_predict_args(collection, copy, model[1]))
    assert counters == {"matched": 6, "segmented": 1, "skipped": 3, "failed": 2}
    assert resumed["confusion"] == metrics["confusion"]
    assert len((copy / "predictions.jsonl").read_text().splitlines()) == 4
    np.testing.assert_array_equal(class_map(copy / "a0.png"), class_map(out / "a0.png"))
    counters, _ = batch_predict.run(batch_predict_args(collection, copy, model[1], "--overwrite"))
    assert counters["segmented"] == 4 and counters["skipped"] == 0


@pytest.fixture(scope="module")
def mixed_batch():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, size + (3,), dtype=np.uint8)
            for size in ((64, 64), (48, 80), (64, 64))]


def assert_handler_equals_segmenter(path, images, **kwargs):
    handler = DANetModelHandler(path, max_batch_images=3, **kwargs)
    loaded = handler.load_model()
    results = list(handler.run_inference(images, loaded))
    reference = Segmenter(load_logits_fn(path)[0], **{
        k: v for k, v in kwargs.items() if k in ("crop_size", "flip")})
    assert loaded.num_classes == NUM_CLASSES
    for image, result in zip(images, results):
        assert result.example is image
        np.testing.assert_array_equal(result.inference.classes, reference.predict(image))


def test_keras_handler_keeps_keys_in_a_pipeline(model, mixed_batch):
    keyed = [(f"img{i}", image) for i, image in enumerate(mixed_batch)]
    segmenter = Segmenter(load_logits_fn(model[1])[0], flip=True)
    expected = [(key, segmenter.predict(image).tolist()) for key, image in keyed]
    with test_pipeline.TestPipeline() as pipeline:
        got = (pipeline | beam.Create(keyed)
               | RunInference(keyed_handler(model[1], flip=True, max_batch_images=3))
               | beam.MapTuple(lambda key, r: (key, r.inference.classes.tolist())))
        assert_that(got, equal_to(expected))


def test_keras_handler_with_sliding_windows(model, mixed_batch):
    assert_handler_equals_segmenter(model[1], mixed_batch, crop_size=48)


def test_saved_model_handler(model, mixed_batch, tmp_path):
    path = export.export_saved_model(model[0], str(tmp_path), "danet")
    assert_handler_equals_segmenter(path, mixed_batch)


def test_openvino_handler(model, mixed_batch, tmp_path):
    path = export.export_openvino(model[0], str(tmp_path / "ov"), "danet")
    assert_handler_equals_segmenter(path, mixed_batch)


@pytest.mark.slow
def test_two_worker_processes_write_what_one_process_writes(model, collection, first_run,
                                                            tmp_path):
    out = first_run[0]
    args = batch_predict_args(collection, tmp_path, model[1])
    args[args.index("--workers") + 1] = "2"
    counters, metrics = batch_predict.run(args)
    assert counters == {"matched": 6, "segmented": 4, "skipped": 0, "failed": 2}
    assert metrics["confusion"] == first_run[2]["confusion"]
    for stem in GOOD:
        np.testing.assert_array_equal(class_map(tmp_path / f"{stem}.png"),
                                      class_map(out / f"{stem}.png"))
        assert (json.loads((tmp_path / f"{stem}.json").read_text())["class_shares"]
                == json.loads((out / f"{stem}.json").read_text())["class_shares"])
