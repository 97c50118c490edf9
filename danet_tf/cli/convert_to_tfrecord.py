"""Convert a folder/Cityscapes/VOC split to TFRecord shards (TF Model Garden keys).

    python training/convert_to_tfrecord.py --source folder --root DATA --split train \
        --num-classes 21 --output /data/tfrecords/train --num-shards 8

Every pair is read and checked as in training (bad files are named in the error,
or skipped and listed with --skip-bad). Shards are written under temporary names
and renamed when complete.
"""

import argparse
import os

from danet_tf.cli import command
from danet_tf.data import folder
from danet_tf.data.tfrecord import write_shards


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--source", default="folder",
                        choices=("folder", "cityscapes", "pascal_voc"))
    parser.add_argument("--root", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--image-dir")
    parser.add_argument("--mask-dir")
    parser.add_argument("--num-classes", type=int, required=True)
    parser.add_argument("--output", required=True, help="output prefix, e.g. /data/train")
    parser.add_argument("--num-shards", type=int, default=4)
    parser.add_argument("--skip-bad", action="store_true", help="skip and list bad pairs")
    args = parser.parse_args(argv)

    pairs = folder.list_pairs(args.source, args.root, args.split, args.image_dir, args.mask_dir)
    label_map = folder.label_map_for(args.source)
    skipped = []

    def examples():
        for image_path, mask_path in pairs:
            try:
                image, mask = folder.read_pair(image_path, mask_path, args.num_classes, label_map)
            except folder.BadExampleError as err:
                if not args.skip_bad:
                    raise
                skipped.append(str(err))
                continue
            yield image, mask, os.path.splitext(os.path.basename(image_path))[0]

    paths = write_shards(examples(), args.output, args.num_shards)
    print(f"Wrote {len(pairs) - len(skipped)} examples to {len(paths)} shards: {args.output}-*")
    for reason in skipped:
        print(f"skipped: {reason}")
    if skipped:
        print(f"{len(skipped)} pairs skipped")


if __name__ == "__main__":
    main()
