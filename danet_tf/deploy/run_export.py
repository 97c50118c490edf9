"""Exporting a training run's best model into its model folder (`layout`).

The `.keras` file and the run's `config.json` (with a `"run"` entry naming
the run and epoch) go first, then every other format of
`train.export_formats` as the next version. SavedModel, TFLite, OpenVINO and
ONNX are TensorFlow-side: on another Keras backend they are written by
`danet-export` in a TensorFlow-backend process, which hands its report over
in a file.
"""

import json
import os
import subprocess
import sys
import tempfile

import keras

from danet_tf.deploy import export, layout
from danet_tf.deploy.export_report import export_all
from danet_tf.files import write_text
from danet_tf.models.from_config import build_model


def export_run(config, run, weights_path):
    """Exports the weights at `weights_path` of `run` (`{"id", "model_dir",
    "epoch", "val_miou"}`); returns `{format: {"path", ...}}`."""
    t = config.train
    model = build_model(config)
    model.load_weights(weights_path)
    written = {"keras_model": {"path": export.export_keras(
        model, layout.keras_path(t.export_dir, t.name))}}
    record = {**json.loads(config.to_json()), "run": run}
    write_text(layout.config_path(t.export_dir, t.name), json.dumps(record, indent=2))
    formats = [f for f in t.export_formats if f != "keras"]
    if not formats:
        return written
    version = layout.next_version(t.export_dir, t.name)
    if keras.backend.backend() == "tensorflow":
        report = export_all(model, config.data, t.export_dir, t.name, version, formats,
                            class_names=config.data.class_names)
    else:
        report = export_in_tensorflow(config, layout.keras_path(t.export_dir, t.name), version,
                                      formats)
    return {**written, **report}


def export_in_tensorflow(config, keras_path, version, formats):
    """Runs `danet-export` on `keras_path` under the TensorFlow backend; its
    report comes back through a JSON file."""
    t = config.train
    with tempfile.TemporaryDirectory() as scratch:
        report_path = os.path.join(scratch, "report.json")
        command = [sys.executable, "-m", "danet_tf.cli.export", "--model", keras_path,
                   "--name", t.name, "--version", str(version), "--export-dir", t.export_dir,
                   "--config", layout.config_path(t.export_dir, t.name),
                   "--report", report_path, "--formats", *formats]
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError("Export under the TensorFlow backend failed:\n"
                               + result.stderr[-3000:])
        with open(report_path) as f:
            return json.load(f)
