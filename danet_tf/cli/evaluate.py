"""Evaluate a model on a dataset split: mIoU, pixel accuracy, per-class IoU.

    python training/evaluate.py --model saved_models/danet_quickstart/danet_quickstart.keras \
        [--preset quickstart] [--set data.root=...] [--crop 768] \
        [--scales 0.5 0.75 1 1.25 1.5 1.75] [--flip] [--json results.json]
    python training/evaluate.py --model danet_r50-d8_4xb2-40k_cityscapes-512x1024 \
        --set data.root=data/cityscapes     (a preset: mmseg's protocol, as converted)

The table is printed; --json also writes the numbers (per-class IoU by name).
"""

import argparse
import json

from danet_tf.cli import command
from danet_tf.cli.options import add_inference_args, describe_protocol, make_segmenter
from danet_tf.cli.schema import validate_config
from danet_tf.data.catalog import class_names_of
from danet_tf.deploy.evaluation import evaluate_segmenter
from danet_tf.deploy.loading import check_class_count, resolve_model
from danet_tf.files import write_text
from danet_tf.models.metrics import format_scores_table, score_record
from danet_tf.run_config import load_config_for_model


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--preset", help="default: the run's config.json next to the model, "
                                          "else quickstart")
    parser.add_argument("--config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images")
    parser.add_argument("--json", help="write the results here")
    add_inference_args(parser)
    args = parser.parse_args(argv)

    args.model = resolve_model(args.model)
    config, source = load_config_for_model(args.model, args.preset, args.config, args.overrides)
    validate_config(config)
    segmenter, num_classes = make_segmenter(args, config)
    check_class_count(args.model, num_classes, config.data.num_classes, source)
    scores, confusion, count = evaluate_segmenter(segmenter, config.data, num_classes, args.limit)
    names = class_names_of(config.data)  # num_classes was checked equal above
    print(f"{count} images, {describe_protocol(args, config)}")
    print(format_scores_table(scores, names))
    if args.json:
        result = {
            "model": args.model, "images": count, "scales": args.scales, "flip": args.flip,
            "crop": args.crop, "protocol": describe_protocol(args, config),
            **score_record(scores, names),
            "confusion": confusion.tolist(),
        }
        write_text(args.json, json.dumps(result, indent=2))
    return scores


if __name__ == "__main__":
    main()
