"""Export a trained DANet for serving and devices.

    python training/export.py --model saved_models/danet_quickstart/danet_quickstart.keras \
        --name danet_quickstart --version 1 --formats saved_model tflite onnx \
        [--tflite-size 128 128] [--probabilities] [--overwrite] [--preset quickstart]

saved_model -> saved_models/<name>/<version>/   (TF Serving; refuses an existing version
                                                 unless --overwrite)
tflite      -> saved_models/<name>/tflite/<name>_{fp32,fp16,dynamic_int8,int8}.tflite
               (int8 is calibrated on --calibration-images images of the preset's train split;
               the report compares each with Keras on the val split)
openvino    -> saved_models/<name>/openvino/<version>/<name>.{xml,bin}  (dynamic H, W;
               the report compares f32 and bf16 inference precision with Keras)
onnx        -> saved_models/<name>/<name>.onnx      (needs tf2onnx; see README)
"""

import argparse
import json
import os
import sys

from danet_tf.cli import command

FORMATS = ("saved_model", "tflite", "openvino", "onnx")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", required=True, help="a .keras DANet")
    parser.add_argument("--name", help="defaults to the .keras file's stem")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--export-dir", default="saved_models")
    parser.add_argument("--formats", nargs="+", default=["saved_model", "tflite"], choices=FORMATS)
    parser.add_argument("--tflite-modes", nargs="+",
                        default=["fp32", "fp16", "dynamic_int8", "int8"])
    parser.add_argument("--tflite-size", type=int, nargs=2, metavar=("H", "W"),
                        help="fixed TFLite input size (default: the run's crop size)")
    parser.add_argument("--preset",
                        help="data for calibration and the report (default: the run's own "
                             "config.json next to the model, else quickstart)")
    parser.add_argument("--config",
                        help="YAML/JSON config on top of the preset (e.g. a run's config.json)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--calibration-images", type=int, default=32)
    parser.add_argument("--probabilities", action="store_true", help="serve probabilities too")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="SavedModel compute precision (inputs and outputs unchanged)")
    return parser.parse_args(argv)


@command
def main(argv=None):
    args = parse_args(argv)
    import keras

    import danet_tf  # noqa: F401
    from danet_tf.config import load_config_for_model
    from danet_tf.deploy.export_report import export_all

    model = keras.models.load_model(args.model)
    name = args.name or os.path.splitext(os.path.basename(args.model))[0]
    config, source = load_config_for_model(args.model, args.preset, args.config, args.overrides)
    print(f"config: {source}", file=sys.stderr)
    num_classes = int(model.output["logits"].shape[-1]) if isinstance(model.output, dict) else \
        int(model.output.shape[-1])
    if num_classes != config.data.num_classes:
        raise ValueError(
            f"{args.model} predicts {num_classes} classes but data.num_classes is "
            f"{config.data.num_classes} in {source}: pass the "
            "run's config (--config runs/<name>/config.json) or --set data.num_classes=...")
    report = export_all(
        model, config.data, args.export_dir, name, args.version, args.formats,
        tflite_modes=args.tflite_modes, tflite_size=args.tflite_size,
        calibration_images=args.calibration_images, include_probabilities=args.probabilities,
        overwrite=args.overwrite, class_names=config.data.class_names, precision=args.precision,
    )
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
