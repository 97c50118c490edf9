"""Convert pretrained PyTorch weights to Keras (needs PyTorch: pip install torch).

Official DANet checkpoint (junfu1115/DANet) -> a .keras model:

    python training/convert_weights.py danet CHECKPOINT.pth.tar --backbone resnet101 \
        --num-classes 19 --multi-grid \
        --out saved_models/danet101_cityscapes/danet101_cityscapes.keras

(an --out without .keras writes a preset directory, for DANet.from_preset and --model).

mmsegmentation DANet checkpoint -> a .keras model (with a config.json beside it
that records the dataset, class names and mmseg's test protocol, for evaluate.py)
or, for an --out without .keras, a preset directory (DANet.from_preset):

    python training/convert_weights.py mmseg danet_r101-d8_769x769_80k_cityscapes_*.pth \
        --config danet_r101-d8_4xb2-80k_cityscapes-769x769 \
        --out saved_models/danet101_mmseg/danet101_mmseg.keras

--config is the mmseg config's file stem (dataset, crop and test protocol);
depth, class count, deep stem and auxiliary head are read from the tensors.

torchvision ResNet ImageNet weights -> backbone weights for training
(model.backbone_weights also takes the .pth directly):

    python training/convert_weights.py torchvision resnet101-63fe2227.pth --backbone resnet101 \
        --out resnet101_torchvision.weights.h5

Every missing, unexpected or mis-shaped tensor is listed and nothing is written.
"""

import argparse
import json
import os

from danet_tf.cli import command


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("kind", choices=("danet", "mmseg", "torchvision"))
    parser.add_argument("checkpoint")
    parser.add_argument("--backbone", default="resnet101",
                        choices=("resnet50", "resnet101", "resnet152"))
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--multi-grid", action="store_true",
                        help="layer4 dilations 4, 8, 16 (released DANet-101)")
    parser.add_argument("--output-stride", type=int, default=8)
    parser.add_argument("--config", help="mmseg: the config name, e.g. "
                        "danet_r50-d8_4xb2-40k_cityscapes-512x1024")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


@command
def main(argv=None):
    args = parse_args(argv)
    convert = {"mmseg": convert_mmseg, "danet": convert_danet,
               "torchvision": convert_torchvision}[args.kind]
    return convert(args)


def convert_danet(args):
    """An official DANet checkpoint to a `.keras` file or a preset directory
    (evaluated with the official protocol)."""
    from danet_tf import DANet
    from danet_tf.deploy.export import export_keras
    from danet_tf.models.presets import check_new_preset_dir, save_to_preset
    from danet_tf.models.weights import load_official_danet, load_torch_state_dict

    if not args.out.endswith(".keras"):
        check_new_preset_dir(args.out)
    state = load_torch_state_dict(args.checkpoint)
    model = DANet(args.num_classes, backbone=args.backbone, output_stride=args.output_stride,
                  multi_grid=args.multi_grid)
    names = load_official_danet(model, state)
    if args.out.endswith(".keras"):
        export_keras(model, args.out)
    else:
        save_to_preset(model, args.out, {"source": {
            "format": "official DANet", "checkpoint": os.path.basename(args.checkpoint)}})
    print(f"converted {len(names)} tensors from {args.checkpoint} -> {args.out}")


def convert_torchvision(args):
    """A torchvision ResNet's ImageNet weights to a backbone `.weights.h5`."""
    from danet_tf.files import atomic_path
    from danet_tf.models.backbone_weights import load_torchvision_backbone
    from danet_tf.models.dilated_resnet import BACKBONES, DilatedResNet
    from danet_tf.models.weights import load_torch_state_dict

    if not args.out.endswith(".weights.h5"):
        raise SystemExit("--out must end with .weights.h5")
    state = load_torch_state_dict(args.checkpoint)
    model = DilatedResNet(BACKBONES[args.backbone], args.output_stride)
    names = load_torchvision_backbone(model, state)
    with atomic_path(args.out) as tmp:
        model.save_weights(tmp)
    print(f"converted {len(names)} tensors from {args.checkpoint} -> {args.out}")


def convert_mmseg(args):
    """An mmseg checkpoint to `--out`: a `.keras` file and its config.json, or
    a preset directory. Everything is checked before anything is written."""
    import dataclasses

    from danet_tf.config import load_config, update
    from danet_tf.deploy.export import export_keras
    from danet_tf.files import write_text
    from danet_tf.models.preset_catalog import mmseg_protocol
    from danet_tf.models.presets import (
        check_new_preset_dir,
        convert_mmseg_checkpoint,
        save_to_preset,
    )
    from danet_tf.run_config import stated_values

    if args.config:
        mmseg_protocol(args.config)  # a bad name fails before the checkpoint is read
    keras_file = args.out.endswith(".keras")
    config_path = os.path.join(os.path.dirname(os.path.abspath(args.out)), "config.json")
    if keras_file and os.path.exists(config_path):
        raise FileExistsError(f"{config_path} exists (another model's config): choose an --out "
                              "in a new directory.")
    if not keras_file:
        check_new_preset_dir(args.out)
    model, metadata = convert_mmseg_checkpoint(args.checkpoint, args.config)
    if keras_file:
        dataset, values = stated_values(model.get_config(), metadata)
        config = update(load_config(dataset), values, args.checkpoint)
        export_keras(model, args.out)
        write_text(config_path, json.dumps(dataclasses.asdict(config), indent=2, default=list))
    else:
        save_to_preset(model, args.out, metadata)
    protocol = metadata.get("evaluation", {"protocol": "mmseg defaults: whole image"})
    print(f"converted {args.checkpoint} ({model.backbone_name}, {model.num_classes} classes, "
          f"align_corners={model.align_corners}) -> {args.out}; evaluation: {protocol}")


if __name__ == "__main__":
    main()
