"""Convert pretrained PyTorch weights to Keras (needs PyTorch: pip install torch).

Official DANet checkpoint (junfu1115/DANet) -> a .keras model:

    python training/convert_weights.py danet CHECKPOINT.pth.tar --backbone resnet101 \
        --num-classes 19 --multi-grid \
        --out saved_models/danet101_cityscapes/danet101_cityscapes.keras

torchvision ResNet ImageNet weights -> backbone weights for training
(model.backbone_weights also takes the .pth directly):

    python training/convert_weights.py torchvision resnet101-63fe2227.pth --backbone resnet101 \
        --out resnet101_torchvision.weights.h5

Every missing, unexpected or mis-shaped tensor is listed and nothing is written.
"""

import argparse

from danet_tf.cli import command


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("kind", choices=("danet", "torchvision"))
    parser.add_argument("checkpoint")
    parser.add_argument("--backbone", default="resnet101",
                        choices=("resnet50", "resnet101", "resnet152"))
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--multi-grid", action="store_true",
                        help="layer4 dilations 4, 8, 16 (released DANet-101)")
    parser.add_argument("--output-stride", type=int, default=8)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from danet_tf import DANet
    from danet_tf.deploy.export import export_keras
    from danet_tf.files import atomic_path
    from danet_tf.models.dilated_resnet import BACKBONES, DilatedResNet
    from danet_tf.models.weights import (
        load_official_danet,
        load_torch_state_dict,
        load_torchvision_backbone,
    )

    state = load_torch_state_dict(args.checkpoint)
    if args.kind == "danet":
        if not args.out.endswith(".keras"):
            raise SystemExit("--out must end with .keras")
        model = DANet(args.num_classes, backbone=args.backbone, output_stride=args.output_stride,
                      multi_grid=args.multi_grid)
        names = load_official_danet(model, state)
        export_keras(model, args.out)
    else:
        if not args.out.endswith(".weights.h5"):
            raise SystemExit("--out must end with .weights.h5")
        model = DilatedResNet(BACKBONES[args.backbone], args.output_stride)
        names = load_torchvision_backbone(model, state)
        with atomic_path(args.out) as tmp:
            model.save_weights(tmp)
    print(f"converted {len(names)} tensors from {args.checkpoint} -> {args.out}")


if __name__ == "__main__":
    main()
