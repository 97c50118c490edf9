"""int8 accuracy on a trained model: each int8 path against Keras float32 on
the whole val split of the model's run (mIoU, argmax agreement).

    python -m benchmarks.int8_accuracy --model saved_models/danet_quickstart/danet_quickstart.keras

Rows: Keras float32; the OpenVINO float32 IR; NNCF int8 with each scheme
(`ignore_matmul`, `transformer`) and with accuracy control
(`--max-miou-drop`); LiteRT full-integer int8. Calibration: the export's
default (augmented train crops of the run's crop size).
"""

import argparse
import os
import tempfile

import numpy as np


def evaluate(logits, labels, reference, num_classes):
    """mIoU of `logits` and their argmax agreement with `reference`'s."""
    from danet_tf.deploy import quantize

    return {"miou": quantize.miou(quantize.confusion(logits, labels, num_classes)),
            "agreement": float(np.mean(logits.argmax(-1) == reference.argmax(-1)))}


def openvino_rows(net, images, labels, calibration, max_miou_drop, num_classes, workdir):
    """`(name, logits)` of the float32 IR and each int8 IR quantized from it."""
    from danet_tf.deploy import export, quantize
    from danet_tf.deploy.openvino_runtime import OpenVinoLogits

    xml = export.export_openvino(net, os.path.join(workdir, "ir"), "model")
    yield "OpenVINO float32 IR", OpenVinoLogits(xml)(images)
    variants = [(scheme, None) for scheme in quantize.SCHEMES]
    variants.append(("ignore_matmul", max_miou_drop))
    for scheme, drop in variants:
        target = os.path.join(workdir, f"int8_{scheme}_{drop}.xml")
        quantize.quantize_openvino(xml, target, calibration, scheme, (images, labels), drop,
                                   num_classes)
        title = f"OpenVINO int8, {scheme}" + (f", max mIoU drop {drop}" if drop else "")
        yield title, OpenVinoLogits(target)(images)


def tflite_int8_logits(net, images, calibration, workdir):
    """Logits of the LiteRT full-integer int8 model (float32 input and output)."""
    from danet_tf.deploy import export

    size = images.shape[1:3]
    paths = export.export_tflite(net, workdir, "model", size, modes=("int8",),
                                 representative_images=calibration[:32])
    return export.run_tflite(paths["int8"], images)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained .keras with its run's config")
    parser.add_argument("--max-miou-drop", type=float, default=0.005)
    parser.add_argument("--calibration-images", type=int, default=300)
    args = parser.parse_args(argv)

    import danet_tf  # noqa: F401  (registers the layers)
    from danet_tf.deploy import export
    from danet_tf.deploy.export_report import calibration_crops, val_pairs
    from danet_tf.deploy.loading import load_keras_model
    from danet_tf.run_config import load_config_for_model

    config, _ = load_config_for_model(args.model)
    data = config.data
    model = load_keras_model(args.model)
    net = export.inference_graph(model)
    images, labels = val_pairs(data, data.crop_size, data.synthetic_val_size or 10 ** 6)
    calibration = calibration_crops(data, data.crop_size, args.calibration_images)
    reference = np.asarray(model.inference_model()(images, training=False))
    num_classes = data.num_classes
    rows = [("Keras float32", reference)]
    with tempfile.TemporaryDirectory() as workdir:
        rows += list(openvino_rows(net, images, labels, calibration, args.max_miou_drop,
                                   num_classes, workdir))
        rows.append(("LiteRT int8 (full integer)",
                     tflite_int8_logits(net, images, calibration, workdir)))
    print(f"{args.model}: {len(images)} val images of {tuple(data.crop_size)}, "
          f"{len(calibration)} calibration crops\n")
    print("| path | mIoU | Δ mIoU (points) | argmax agreement |\n|---|---|---|---|")
    base = evaluate(reference, labels, reference, num_classes)["miou"]
    for title, logits in rows:
        scores = evaluate(logits, labels, reference, num_classes)
        print(f"| {title} | {scores['miou']:.4f} | {100 * (scores['miou'] - base):+.2f} | "
              f"{100 * scores['agreement']:.2f} % |")


if __name__ == "__main__":
    main()
