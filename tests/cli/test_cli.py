"""The command-line tools on a small model: predict, evaluate, attention
pictures, export and the serving client."""

import base64
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from danet_tf import DANet
from danet_tf.cli import evaluate, predict, serving_client, visualize_attention
from danet_tf.cli import export as export_cli
from danet_tf.config import load_config
from danet_tf.data.catalog import palette_for
from danet_tf.data.pipeline import build_eval_dataset
from danet_tf.models.metrics import SegmentationMetric

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.slow
SMALL = ["data.synthetic_val_size=6", "data.synthetic_image_size=48", "data.eval_batch_size=3"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = DANet(6, backbone="resnet18")
    model.set_gammas(pam=0.4, cam=0.4)
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    model.save(path)
    return path


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("images") / "scene.png")
    Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(path)
    return path


def test_predict_writes_class_colour_and_overlay(model_path, image_path, tmp_path):
    predict.main([image_path, "--model", model_path, "--out", str(tmp_path), "--flip"])
    classes = np.asarray(Image.open(tmp_path / "scene_classes.png"))
    colour = np.asarray(Image.open(tmp_path / "scene_color.png"))
    overlay = np.asarray(Image.open(tmp_path / "scene_overlay.png"))
    assert classes.shape == (40, 52) and classes.max() < 6
    # The picture on top, a legend of the classes present below it.
    palette = palette_for("synthetic", 6)
    np.testing.assert_array_equal(colour[:40, :52], palette[classes])
    assert colour.shape[0] > 40 and overlay.shape == colour.shape


def test_predict_writes_a_sample_scene(tmp_path):
    path = str(tmp_path / "sample.png")
    predict.main(["--sample", path])
    image = np.asarray(Image.open(path))
    assert image.shape == (256, 256, 3) and image.std() > 10


def test_predict_in_bfloat16_agrees_with_float32(model_path, image_path, tmp_path):
    predict.main([image_path, "--model", model_path, "--out", str(tmp_path / "f32"),
                  "--precision", "float32"])
    predict.main([image_path, "--model", model_path, "--out", str(tmp_path / "bf16"),
                  "--precision", "bfloat16"])
    f32 = np.asarray(Image.open(tmp_path / "f32" / "scene_classes.png"))
    bf16 = np.asarray(Image.open(tmp_path / "bf16" / "scene_classes.png"))
    assert np.mean(f32 == bf16) >= 0.95


def test_evaluate_equals_the_training_metric(model_path, tmp_path):
    out = tmp_path / "eval.json"
    scores = evaluate.main(["--model", model_path, "--json", str(out), "--precision", "float32"] +
                           sum((["--set", s] for s in SMALL), []))
    config = load_config(overrides=SMALL)
    model = keras.models.load_model(model_path)
    metric = SegmentationMetric(6)
    for images, masks in build_eval_dataset(config.data):
        metric.update_state(masks, model(images, training=False)["logits"])
    assert scores["miou"] == pytest.approx(metric.scores()["miou"], abs=1e-9)
    result = json.loads(out.read_text())
    assert result["images"] == 6 and set(result["per_class_iou"]) >= {"background", "dots"}


def test_attention_pictures(model_path, image_path, tmp_path, capsys):
    visualize_attention.main([image_path, "--model", model_path, "--out", str(tmp_path),
                              "--points", "5,5", "30,40", "--cam-class", "dots"])
    for name in ("pam_5_5.png", "pam_30_40.png", "cam.png", "sheet.png"):
        assert (tmp_path / name).exists(), name
    # Every picture: a title above the image (or the 40x40 CAM matrix) and a colour bar.
    heat = np.asarray(Image.open(tmp_path / "pam_30_40.png"))
    assert heat.shape[0] > 40 + 2 * 4 + 10 and heat.shape[1] > 52 + 2 * 4 + 12
    assert (heat[4:-44].min(axis=-1) < 128).any()  # title text above the heatmap
    cam = np.asarray(Image.open(tmp_path / "cam.png"))
    assert cam.shape[0] > 40 + 2 * 4 + 10 and cam.shape[1] > 40 + 2 * 4 + 12
    # The Figure-5 view: three channels, each before and after the channel attention.
    channels = sorted(p.name for p in tmp_path.glob("cam_channel*_*.png"))
    assert len(channels) == 6 and sum(name.endswith("_after.png") for name in channels) == 3
    assert "'dots'" in capsys.readouterr().out
    # A point outside the image: one line naming the point and the image size, exit status 2.
    with pytest.raises(SystemExit) as info:
        visualize_attention.main([image_path, "--model", model_path, "--out", str(tmp_path),
                                  "--points", "100,5"])
    assert info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "--points 100,5 is outside the image of 40x52" in error


def test_export_cli_and_serving_client(model_path, image_path, tmp_path, capsys):
    report = export_cli.main(["--model", model_path, "--name", "tiny", "--formats", "saved_model",
                              "--export-dir", str(tmp_path)])
    path = report["saved_model"]["path"]
    assert path.endswith(os.path.join("tiny", "1"))
    with pytest.raises(SystemExit) as info:
        export_cli.main(["--model", model_path, "--name", "tiny", "--formats", "saved_model",
                         "--export-dir", str(tmp_path), "--version", "1"])
    assert info.value.code == 2
    assert "overwrite" in capsys.readouterr().err
    with pytest.raises(FileExistsError, match="overwrite"):  # --debug: the exception itself
        export_cli.main(["--model", model_path, "--name", "tiny", "--formats", "saved_model",
                         "--export-dir", str(tmp_path), "--version", "1", "--debug"])
    request = serving_client.build_request([image_path])
    assert request["signature_name"] == "serving_bytes"
    payload = base64.b64decode(request["instances"][0]["image_bytes"]["b64"])
    served = tf.saved_model.load(path).signatures["serving_bytes"](
        image_bytes=tf.constant([payload]))
    assert served["classes"].shape == (1, 40, 52)


SCRIPTS = ["train", "evaluate", "predict", "export", "convert_weights", "convert_to_tfrecord",
           "visualize_attention", "serving_client"]
# One interpreter runs every `training/<script>.py --help` as `python script`
# would (its folder first on sys.path, run as __main__): one TensorFlow start
# instead of sixteen.
HELP_RUNNER = """
import contextlib, io, json, os, runpy, sys
results = {}
for path in sys.argv[1:]:
    sys.path.insert(0, os.path.dirname(path))
    sys.argv = [path, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
        code = 0
    except SystemExit as exit:
        code = exit.code or 0
    results[os.path.basename(path)] = [code, out.getvalue()]
print(json.dumps(results))
"""


def test_every_script_and_console_entry_point_answers_help():
    """`training/<script>.py` (no sys.path edits) and its `danet-*` command."""
    paths = [os.path.join(ROOT, "training", f"{script}.py") for script in SCRIPTS]
    result = subprocess.run([sys.executable, "-c", HELP_RUNNER, *paths], capture_output=True,
                            text=True, cwd="/", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    for script in SCRIPTS:
        code, text = answers[f"{script}.py"]
        assert code == 0 and "usage:" in text, (script, code, text[-500:])
    # Each console command is pip's wrapper around its module's `main`; one
    # of them runs for real.
    bin_dir = os.path.dirname(sys.executable)
    for script in SCRIPTS:
        with open(os.path.join(bin_dir, "danet-" + script.replace("_", "-"))) as f:
            assert f"from danet_tf.cli.{script} import main" in f.read(), script
    command = subprocess.run([os.path.join(bin_dir, "danet-train"), "--help"],
                             capture_output=True, text=True, cwd="/", timeout=120)
    assert command.returncode == 0 and "usage:" in command.stdout, command.stderr[-2000:]
