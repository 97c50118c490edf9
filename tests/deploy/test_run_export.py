"""A run's export: the `.keras` file and the run's config first, then the
TensorFlow-side formats; on another backend those come from a TensorFlow
process whose report returns in a file."""

import json
import os

import pytest

from danet_tf.config import load_config
from danet_tf.deploy import layout
from danet_tf.deploy.export_report import ExportRequest
from danet_tf.deploy.run_export import export_in_tensorflow, export_run
from danet_tf.models.from_config import build_model

pytestmark = pytest.mark.slow
TINY = ["model.backbone=resnet18", "data.synthetic_image_size=40", "data.synthetic_val_size=2",
        "data.crop_size=[32, 32]", "train.export_formats=[keras, saved_model]"]


def test_export_run_names_its_run_and_the_tensorflow_process_reports_in_a_file(tmp_path):
    config = load_config(overrides=[*TINY, f"train.export_dir={tmp_path}"])
    weights = str(tmp_path / "best.weights.h5")
    build_model(config).save_weights(weights)
    run = {"id": "r-1", "model_dir": "runs/r", "epoch": 3, "val_miou": 0.5}
    report = export_run(config, run, weights)
    name = config.train.name
    assert report["keras_model"]["path"] == layout.keras_path(str(tmp_path), name)
    assert report["saved_model"]["path"] == layout.saved_model_dir(str(tmp_path), name, 1)
    saved = json.loads(open(layout.config_path(str(tmp_path), name)).read())
    assert saved["run"] == run and saved["model"]["backbone"] == "resnet18"
    # What a JAX or PyTorch run does for these formats: the export under
    # TensorFlow in a child process, its report handed back through a file.
    request = ExportRequest(str(tmp_path), name, 2, ("saved_model",), data=config.data)
    child = export_in_tensorflow(layout.config_path(str(tmp_path), name),
                                 report["keras_model"]["path"], request)
    assert child["saved_model"]["path"] == layout.saved_model_dir(str(tmp_path), name, 2)
    assert os.path.isfile(os.path.join(child["saved_model"]["path"], "saved_model.pb"))
