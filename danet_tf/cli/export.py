"""Export a trained DANet for serving and devices.

    python training/export.py --model saved_models/danet_quickstart/danet_quickstart.keras \
        [--formats saved_model tflite openvino openvino_int8 onnx] [--version N] [--name NAME] \
        [--tflite-size 128 128] [--probabilities] [--overwrite] [--preset quickstart] \
        [--calibration-data DIR] [--calibration-images N] [--int8-scheme ignore_matmul] \
        [--max-miou-drop 0.01]

Each format goes to the model folder `<export-dir>/<name>/` as the next free
version (as training does; --version N chooses):

{layout}

Data (calibration for int8, the agreement report on val images) comes from the
run's config.json next to the model, or --preset / --config. A model without
one exports every format; int8 (TFLite int8, openvino_int8) then needs
--calibration-data DIR, and the report is skipped.

openvino_int8 writes <name>_int8.xml beside the float32 IR <name>.xml (its
source; both are written): NNCF post-training quantization, convolutions in
int8, the attention in float (--int8-scheme).
"""

import argparse
import json
import os

from danet_tf.cli import command
from danet_tf.deploy import layout
from danet_tf.deploy.quantize import DEFAULT_CALIBRATION_IMAGES, DEFAULT_SCHEME, SCHEMES
from danet_tf.files import write_text
from danet_tf.models.precision import PRECISIONS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.format(layout=layout.describe()),
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="a .keras DANet, or a preset (directory or catalogue name)")
    parser.add_argument("--name", help="the model folder's name (default: the .keras file's stem)")
    parser.add_argument("--version", type=int,
                        help="version to write (default: the next free one)")
    parser.add_argument("--export-dir", default="saved_models")
    parser.add_argument("--formats", nargs="+", default=["saved_model", "tflite"],
                        choices=layout.GRAPH_FORMATS)
    parser.add_argument("--tflite-modes", nargs="+",
                        default=["fp32", "fp16", "dynamic_int8", "int8"])
    parser.add_argument("--tflite-size", type=int, nargs=2, metavar=("H", "W"),
                        help="fixed TFLite input size (default: the run's crop size)")
    parser.add_argument("--preset",
                        help="data for calibration and the report (default: the run's own "
                             "config.json next to the model)")
    parser.add_argument("--config",
                        help="YAML/JSON config on top of the preset (e.g. a run's config.json)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    add_int8_args(parser)
    parser.add_argument("--probabilities", action="store_true", help="serve probabilities too")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of an existing --version")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="SavedModel compute precision (inputs and outputs unchanged)")
    parser.add_argument("--report", help="also write the report (JSON) to this file")
    return parser.parse_args(argv)


def add_int8_args(parser):
    """The int8 exports' calibration and scheme options."""
    parser.add_argument("--calibration-images", type=int,
                        help="int8 calibration images (default: 32 for TFLite, "
                             f"{DEFAULT_CALIBRATION_IMAGES} for openvino_int8)")
    parser.add_argument("--calibration-data", metavar="DIR",
                        help="calibrate int8 on this folder's images (resized and centre-cropped "
                             "to the export's size) instead of the run's train crops")
    parser.add_argument("--calibration-size", type=int, nargs=2, metavar=("H", "W"),
                        help="openvino_int8 calibration size without a run config "
                             "(default 512 512; with one: its crop size)")
    parser.add_argument("--int8-scheme", choices=SCHEMES, default=DEFAULT_SCHEME,
                        help="how openvino_int8 keeps the attention in float: ignore_matmul "
                             "(leave the attention ops out) or transformer (NNCF's "
                             "ModelType.TRANSFORMER)")
    parser.add_argument("--max-miou-drop", type=float, metavar="X",
                        help="openvino_int8 with NNCF's accuracy control: ops go back to float "
                             "until the val mIoU (0-1) is at most X below the float32 IR's")


def data_config(args):
    """`(config or None, where it came from)`: the run's config next to the
    model or the one asked for; `None` when there is neither."""
    from danet_tf.cli.schema import validate_config
    from danet_tf.config import load_config
    from danet_tf.run_config import find_run_config, load_config_for_model, preset_values

    if args.preset or args.config or find_run_config(args.model) or preset_values(args.model):
        config, source = load_config_for_model(args.model, args.preset, args.config,
                                               args.overrides)
        return validate_config(config), source
    if args.overrides:
        return load_config("quickstart", None, args.overrides), "quickstart + --set"
    return None, "no run config next to the model"


def model_run(model_path):
    """The `"run"` entry of the config.json next to `model_path`, or `None`."""
    from danet_tf.run_config import find_run_config

    path = find_run_config(model_path)
    if not path:
        return None
    with open(path) as f:
        return json.load(f).get("run")


@command
def main(argv=None):
    args = parse_args(argv)

    import danet_tf  # noqa: F401
    from danet_tf.deploy.export_report import NO_INT8_DATA, ExportRequest, export_all
    from danet_tf.deploy.loading import (
        check_class_count,
        class_count,
        load_keras_model,
        resolve_model,
    )

    args.model = resolve_model(args.model)
    name = args.name or os.path.splitext(os.path.basename(args.model))[0]
    run = model_run(args.model)
    layout.check_owner(args.export_dir, name, run and run.get("id"),
                       "Export under another --name or --export-dir.")
    config, source = data_config(args)
    if config is None and "openvino_int8" in args.formats and not args.calibration_data:
        raise ValueError(NO_INT8_DATA)  # before the model loads
    print(f"config: {source}")
    model = load_keras_model(args.model)
    if config is not None:
        check_class_count(args.model, class_count(model), config.data.num_classes, source)
    version = args.version or layout.next_version(args.export_dir, name)
    report = export_all(model, ExportRequest(
        args.export_dir, name, version, tuple(args.formats),
        data=config.data if config else None,
        class_names=config.data.class_names if config else None, overwrite=args.overwrite,
        include_probabilities=args.probabilities, precision=args.precision,
        tflite_modes=tuple(args.tflite_modes), tflite_size=args.tflite_size,
        calibration_images=args.calibration_images, calibration_data=args.calibration_data,
        calibration_size=args.calibration_size, int8_scheme=args.int8_scheme,
        max_miou_drop=args.max_miou_drop))
    print(json.dumps(report, indent=2))
    if args.report:
        write_text(args.report, json.dumps(report))
    return report


if __name__ == "__main__":
    main()
