"""Exporting a training run's best model into its model folder (`layout`).

The `.keras` file and the run's `config.json` (with a `"run"` entry naming
the run and epoch) go first, then every other format of
`train.export_formats` as the next version. SavedModel, TFLite, OpenVINO and
ONNX are TensorFlow-side: on another Keras backend they are written by this
module run as `python -m danet_tf.deploy.run_export JOB.json` in a
TensorFlow-backend process, which hands its report over in a file.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile

import keras

from danet_tf.deploy import export, layout
from danet_tf.deploy.export_report import ExportRequest, export_all
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
    request = ExportRequest(t.export_dir, t.name, layout.next_version(t.export_dir, t.name),
                            tuple(formats), data=config.data,
                            class_names=config.data.class_names)
    if keras.backend.backend() == "tensorflow":
        report = export_all(model, request)
    else:
        report = export_in_tensorflow(layout.config_path(t.export_dir, t.name),
                                      layout.keras_path(t.export_dir, t.name), request)
    return {**written, **report}


def export_in_tensorflow(config_path, keras_path, request):
    """Runs `export_all` on `keras_path` (its data from the config at
    `config_path`) in a TensorFlow-backend process; its report comes back
    through a JSON file."""
    fields = {k: v for k, v in dataclasses.asdict(request).items() if k != "data"}
    with tempfile.TemporaryDirectory() as scratch:
        job = {"config": config_path, "model": keras_path, "request": fields,
               "report": os.path.join(scratch, "report.json")}
        job_path = write_text(os.path.join(scratch, "job.json"), json.dumps(job))
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        result = subprocess.run([sys.executable, "-m", "danet_tf.deploy.run_export", job_path],
                                env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError("Export under the TensorFlow backend failed:\n"
                               + result.stderr[-3000:])
        with open(job["report"]) as f:
            return json.load(f)


def run_job(job_path):
    """The TensorFlow side of `export_in_tensorflow`: the job's export, its
    report written where the job says."""
    from danet_tf.deploy.loading import load_keras_model
    from danet_tf.run_config import load_config_for_model

    with open(job_path) as f:
        job = json.load(f)
    config, _ = load_config_for_model(job["model"], None, job["config"])
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in job["request"].items()}
    request = ExportRequest(**fields, data=config.data)
    report = export_all(load_keras_model(job["model"]), request)
    write_text(job["report"], json.dumps(report))


if __name__ == "__main__":
    import danet_tf  # noqa: F401  (registers the layers)

    run_job(sys.argv[1])
