"""Where exports go: the one description of `saved_models/<name>/`, and who owns it.

A model folder holds the exports of one training run. Its `config.json` is
that run's config plus a `"run"` entry (`id`, `model_dir`, `epoch`,
`val_miou`) naming the run and the epoch the exports came from; a new
version of the same run adds versioned folders beside the old ones, and
another run is refused (`check_owner`), so a TF Serving model folder never
mixes versions of different models.
"""

import json
import os

# The layout, as the README, saved_models/README.md and `--help` show it.
LAYOUT = (
    ("{name}.keras", "Keras 3 model: keras.models.load_model(path) after `import danet_tf`"),
    ("config.json", "the run's config, and which run and epoch the exports came from"),
    ("labels.txt", "class names, one per line (class id = line number - 1)"),
    ("<version>/", "SavedModel for TF Serving (integer versions, as the server expects)"),
    ("tflite/<version>/{name}_<mode>.tflite", "LiteRT models (fp32, fp16, dynamic_int8, int8)"),
    ("openvino/<version>/{name}.xml", "OpenVINO IR (+ .bin), dynamic height and width"),
    ("openvino/<version>/{name}_int8.xml", "the same IR in int8 (NNCF; attention in float)"),
    ("{name}.onnx", "ONNX (fused logits)"),
)

# `train.export_formats`: the `.keras` file and the inference-graph formats
# (`export.py --formats`, `export_report.export_all`).
GRAPH_FORMATS = ("saved_model", "tflite", "openvino", "openvino_int8", "onnx")
EXPORT_FORMATS = ("keras", *GRAPH_FORMATS)


def describe(export_dir="saved_models", name="<name>"):
    """The layout as lines `path  meaning`, for help texts and docs."""
    folder = os.path.join(export_dir, name)
    return "\n".join(f"{os.path.join(folder, path.format(name=name)):<58} {meaning}"
                     for path, meaning in LAYOUT)


def model_folder(export_dir, name):
    return os.path.join(export_dir, name)


def keras_path(export_dir, name):
    return os.path.join(export_dir, name, f"{name}.keras")


def config_path(export_dir, name):
    return os.path.join(export_dir, name, "config.json")


def labels_path(export_dir, name):
    return os.path.join(export_dir, name, "labels.txt")


def saved_model_dir(export_dir, name, version):
    return os.path.join(export_dir, name, str(int(version)))


def tflite_dir(export_dir, name, version):
    return os.path.join(export_dir, name, "tflite", str(int(version)))


def openvino_dir(export_dir, name, version):
    return os.path.join(export_dir, name, "openvino", str(int(version)))


def onnx_path(export_dir, name):
    return os.path.join(export_dir, name, f"{name}.onnx")


def _versions(directory):
    if not os.path.isdir(directory):
        return []
    return [int(d) for d in os.listdir(directory) if d.isdigit()]


def next_version(export_dir, name):
    """1 + the highest version of any format in the model folder."""
    folder = model_folder(export_dir, name)
    versions = (_versions(folder) + _versions(os.path.join(folder, "tflite"))
                + _versions(os.path.join(folder, "openvino")))
    return max(versions, default=0) + 1


def owner(export_dir, name):
    """The `"run"` entry of the model folder's `config.json` (`{}` when the
    folder holds exports of no recorded run), or `None` when it has no exports."""
    folder = model_folder(export_dir, name)
    if not os.path.isdir(folder) or not os.listdir(folder):
        return None
    path = config_path(export_dir, name)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f).get("run") or {}


def describe_run(run):
    if not run:
        return "a model of no recorded run"
    return f"run {run['id']} ({run['model_dir']}, epoch {run['epoch']})"


def check_owner(export_dir, name, run_id, advice):
    """Refuses to export run `run_id` (`None`: a model of no recorded run)
    into a model folder that holds another run's exports; `advice` ends the
    one-line message."""
    found = owner(export_dir, name)
    if found is None or found.get("id") == run_id:
        return  # no exports yet, the same run, or neither side names its run
    raise FileExistsError(
        f"{model_folder(export_dir, name)} holds the exports of {describe_run(found)}; "
        f"exporting {'run ' + run_id if run_id else 'this model'} there would mix two models. "
        + advice)
