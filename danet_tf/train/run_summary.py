"""What a run says before its first step: one block of what runs where, on
what data, for how long, and where it writes; plus warnings a user can act on."""

import os

import keras
import numpy as np

from danet_tf.data import folder
from danet_tf.data.sources import split_size
from danet_tf.models.head import HEADS


def describe_run(config, dist, model, weights_report):
    """The block a run opens with: what runs where, on what, and what it writes."""
    d, m, t = config.data, config.model, config.train
    head = model.head.count_params()
    sizes = {split: split_size(d, split) for split in ("train", "val")}
    sizes = {k: "?" if v is None else v for k, v in sizes.items()}
    lines = [
        f"backend       {keras.backend.backend()}",
        f"distribution  {dist.description}",
        f"model         {HEADS[m.head].title}, {m.backbone} ({m.backbone_layout}) at output stride "
        f"{m.output_stride}{', multi-grid' if m.multi_grid else ''}, "
        f"{d.num_classes} classes, {model.count_params():,} parameters (head {head:,}); "
        f"{weights_report}",
        f"data          {d.source} ({d.name}): {sizes['train']} train / {sizes['val']} val "
        f"images, crop {tuple(d.crop_size)}, global batch {d.batch_size}",
        f"steps         {t.epochs} epochs x {t.steps_per_epoch} = {t.epochs * t.steps_per_epoch}, "
        f"lr {t.learning_rate} ({t.optimizer}, poly {t.poly_power}, warm-up {t.warmup_steps})",
        f"checkpoints   {os.path.join(t.model_dir, 'checkpoint')}",
        f"logs          {os.path.join(t.model_dir, 'logs')} (tensorboard --logdir ...)",
        f"exports       {os.path.join(t.export_dir, t.name)} ({', '.join(t.export_formats)})",
    ]
    warnings = run_warnings(config)
    return "\n".join(lines + [f"warning       {w}" for w in warnings])


def run_warnings(config):
    """Settings that probably are mistakes, in words a user can act on."""
    d, t = config.data, config.train
    warnings = []
    total = t.epochs * t.steps_per_epoch
    if t.warmup_steps > total / 10:
        warnings.append(
            f"train.warmup_steps={t.warmup_steps} covers more than a tenth of the "
            f"{total} steps: the learning rate stays low for most of the run.")
    if d.source == "folder":
        largest = largest_mask_value(d)
        if largest is not None and largest + 1 < d.num_classes:
            warnings.append(
                f"data.num_classes={d.num_classes}, but the largest class id in the training "
                f"masks checked is {largest}: set data.num_classes={largest + 1} unless the "
                "other classes are simply rare.")
    return warnings


def largest_mask_value(data, limit=200):
    """The largest class id (255 aside) in up to `limit` training masks, or `None`."""
    try:
        pairs = folder.list_pairs(data.source, data.root, data.train_split, data.image_dir,
                                  data.mask_dir)
    except (OSError, ValueError):
        return None
    largest = -1
    for _, mask_path in pairs[:limit]:
        try:
            mask = np.asarray(folder.open_image(mask_path, "Mask"))
        except ValueError:
            continue
        values = mask[mask != 255]
        largest = max(largest, int(values.max()) if values.size else -1)
    return largest if largest >= 0 else None
