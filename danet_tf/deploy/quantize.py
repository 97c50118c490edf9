"""int8 OpenVINO IR by NNCF post-training quantization of the float32 IR.

The convolutions (all but a few per cent of DANet's time) run in int8; the
attention stays in float by default. Two schemes, to compare by mIoU:

- `ignore_matmul`: the attention ops are left out by type
  (`nncf.IgnoredScope(types=ATTENTION_OPS)`): the channel attention's two
  `MatMul`s, the position attention, which OpenVINO's converter fuses into
  one `ScaledDotProductAttention` (so `MatMul` alone would not reach it),
  and the `ReduceMax` / `Subtract` that read the channel attention's
  energies (else the energies are quantized on their way to the softmax).
  In the BN-folded DANet graph these types occur only in the attention (other
  `Subtract`s are shape arithmetic, which NNCF never quantizes). The
  attention's outputs are still quantized where they enter the residual
  `Add`, as any activation. Activations are asymmetric (`preset=MIXED`):
  on a random DANet-18 the symmetric default agreed with float32 on 88 % of
  pixels, the asymmetric one on 97.5 %.
- `transformer`: `nncf.ModelType.TRANSFORMER`, NNCF's rules for attention
  (no quantizer between softmax and its MatMul, quantized MatMul inputs,
  asymmetric activations).

Calibration images are normalised `(H, W, 3)` float32 of one size: augmented
train crops (`export_report.calibration_crops`) or a folder of images
(`folder_images`).
"""

import os

import numpy as np
from PIL import Image

from danet_tf.deploy import openvino_runtime

SCHEMES = ("ignore_matmul", "transformer")
# The scheme `openvino_int8` uses unless told (docs/deployment.md, "int8 on trained weights").
DEFAULT_SCHEME = "ignore_matmul"
ATTENTION_OPS = ("MatMul", "ScaledDotProductAttention", "ReduceMax", "Subtract")
DEFAULT_CALIBRATION_IMAGES = 300


def quantize_options(scheme):
    """The keyword arguments of `nncf.quantize` for a scheme of `SCHEMES`."""
    import nncf

    if scheme == "ignore_matmul":
        # validate=False: heads without attention (psp, aspp) have none of these ops.
        return {"ignored_scope": nncf.IgnoredScope(types=list(ATTENTION_OPS), validate=False),
                "preset": nncf.QuantizationPreset.MIXED}
    if scheme == "transformer":
        return {"model_type": nncf.ModelType.TRANSFORMER}
    raise ValueError(f"--int8-scheme must be one of {SCHEMES}. Received: {scheme!r}")


def cover_crop(image, size):
    """A uint8 `(h, w, 3)` image resized (bilinear, aspect kept) to cover
    `size = (H, W)` and centre-cropped to it."""
    height, width = size
    scale = max(height / image.shape[0], width / image.shape[1])
    resized_h = max(height, round(image.shape[0] * scale))
    resized_w = max(width, round(image.shape[1] * scale))
    resized = np.asarray(Image.fromarray(image).resize((resized_w, resized_h), Image.BILINEAR))
    top, left = (resized_h - height) // 2, (resized_w - width) // 2
    return resized[top: top + height, left: left + width]


def folder_images(directory, size, count):
    """Up to `count` images of `directory` (sorted by name), resized and
    centre-cropped to `size` and normalised, for calibration."""
    from danet_tf.data.folder import IMAGE_EXTENSIONS
    from danet_tf.data.images import read_rgb
    from danet_tf.models.preprocessing import normalize

    if not os.path.isdir(directory):
        raise FileNotFoundError(f"--calibration-data {directory!r} is not a directory.")
    names = sorted(n for n in os.listdir(directory) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise ValueError(f"--calibration-data {directory!r} holds no images "
                         f"({', '.join(IMAGE_EXTENSIONS)}).")
    return [np.asarray(normalize(cover_crop(read_rgb(os.path.join(directory, n)), size)),
                       np.float32) for n in names[:count]]


def miou(confusion):
    """mIoU of a confusion matrix (`segmentation_scores`)."""
    from danet_tf.models.metrics import segmentation_scores

    return segmentation_scores(confusion)["miou"]


def confusion(logits, labels, num_classes):
    """The confusion matrix (NumPy) of logits `(N, H, W, C)` against labels `(N, H, W)`."""
    from danet_tf.models.metrics import confusion_matrix

    return np.asarray(confusion_matrix(labels, np.argmax(logits, -1), num_classes))


def _validation_fn(num_classes):
    """NNCF's validation function: `(compiled model, [(image, label), ...])`
    -> `(mIoU, [mIoU of each item])`."""

    def validate(compiled, items):
        total, per_item = 0, []
        for image, label in items:
            logits = np.asarray(compiled(image[None])[compiled.output(0)])
            matrix = confusion(logits, label[None], num_classes)
            per_item.append(miou(matrix))
            total = total + matrix
        return miou(total), per_item

    return validate


def quantize_openvino(xml, target, calibration, scheme=DEFAULT_SCHEME, validation=None,
                      max_miou_drop=None, num_classes=None):
    """Writes the int8 IR of the float32 IR `xml` to `target` (`.xml` + `.bin`).

    Args:
        calibration: list of normalised `(H, W, 3)` float32 images of one size.
        scheme: one of `SCHEMES`.
        validation: `(images (N, H, W, 3), labels (N, H, W))`, for
            `max_miou_drop`.
        max_miou_drop: float or None. With a value, NNCF's
            `quantize_with_accuracy_control` returns quantized ops to float
            until the mIoU on `validation` is at most this much (absolute,
            mIoU in [0, 1]) below the float32 IR's.
        num_classes: int, for the mIoU.
    """
    import nncf
    import openvino as ov

    model = openvino_runtime.shared_core().read_model(xml)
    dataset = nncf.Dataset(calibration, lambda image: np.asarray(image, np.float32)[None])
    options = quantize_options(scheme)
    if max_miou_drop is None:
        quantized = nncf.quantize(model, dataset, subset_size=len(calibration), **options)
    else:
        quantized = _quantize_with_accuracy_control(model, dataset, len(calibration), options,
                                                    validation, max_miou_drop, num_classes)
    # Float parts stay float32, as in the float32 IR (OpenVINO would store them as fp16).
    ov.save_model(quantized, target, compress_to_fp16=False)
    return target


def _quantize_with_accuracy_control(model, dataset, subset_size, options, validation,
                                    max_miou_drop, num_classes):
    """NNCF's `quantize_with_accuracy_control` on `validation` `(images, labels)`."""
    import nncf

    if validation is None:
        raise ValueError("--max-miou-drop needs val images with labels: pass --preset or "
                         "--config with the run's data.")
    images, labels = validation
    # NNCF compiles the model it validates as it is given; an int8 model
    # compiled with dynamic height and width gives wrong class maps on the
    # CPU, so the search runs on the validation size and the result is made
    # dynamic again (deployment compiles it per input shape).
    model.reshape([-1, *np.shape(images)[1:3], 3])
    quantized = nncf.quantize_with_accuracy_control(
        model, dataset, nncf.Dataset(list(zip(images, labels))),
        validation_fn=_validation_fn(num_classes), max_drop=float(max_miou_drop),
        drop_type=nncf.DropType.ABSOLUTE, subset_size=subset_size, **options)
    quantized.reshape([-1, -1, -1, 3])
    return quantized
