"""The ablation's pretrained miniature backbone: dilated ResNet-18 (output
stride 8) trained once with the FCN head on the local-texture scenes until
val mIoU stops improving, the stand-in for the paper's ImageNet weights.

`pretrain_backbone(workdir)` writes `DIR/backbone/backbone.weights.h5` (the
backbone of the best epoch, loadable by `model.backbone_weights`) and
`DIR/backbone/pretrain.json` (the val mIoU curve, best epoch, steps, time).
The scenes use `data.seed=PRETRAIN_SEED`, so none of them is in the control
runs' train or val splits.
"""

import os
import time

import keras

from benchmarks.ablation_config import QUICK, TASKS, backbone_path
from danet_tf.files import atomic_path

PRETRAIN_SEED = 100
EPOCH_STEPS = 200
MAX_EPOCHS = 12
PATIENCE = 2  # epochs without a better val mIoU before stopping


def pretrain_config(workdir, quick):
    """FCN on the textures task at the ablation's scene size, batch 4, the
    official recipe over at most `MAX_EPOCHS` epochs of `EPOCH_STEPS`."""
    from danet_tf.config import load_config

    preset, changes = TASKS["textures"]
    steps = ([f"train.steps_per_epoch={EPOCH_STEPS}", f"train.epochs={MAX_EPOCHS}"]
             if not quick else ["train.epochs=2"])
    return load_config(preset, overrides=changes + (QUICK if quick else []) + steps + [
        "model.head=fcn", f"data.seed={PRETRAIN_SEED}", "train.name=pretrain_fcn",
        f"train.model_dir={workdir}/backbone/run", "train.eval_every_epochs=1"])


class StopWhenFlat(keras.callbacks.Callback):
    """Records each epoch's val mIoU, saves the backbone at every new best,
    stops after `patience` epochs without one."""

    def __init__(self, path, patience):
        super().__init__()
        self.path, self.patience = path, patience
        self.curve, self.best_epoch = [], None

    def on_epoch_end(self, epoch, logs=None):
        score = next(float(v) for k, v in (logs or {}).items()
                     if k.startswith("val_") and k.endswith("miou"))
        self.curve.append(score)
        if self.best_epoch is None or score > self.curve[self.best_epoch - 1]:
            self.best_epoch = epoch + 1
            with atomic_path(self.path) as tmp:
                self.model.get_layer("backbone").save_weights(tmp)
        elif epoch + 1 - self.best_epoch >= self.patience:
            self.model.stop_training = True
        print(f"backbone: epoch {epoch + 1}, val mIoU {100 * score:.1f} % (best "
              f"{100 * self.curve[self.best_epoch - 1]:.1f} at epoch {self.best_epoch})",
              flush=True)


def pretrain_backbone(workdir, quick=False):
    """Trains the FCN, saves its best backbone; returns the record."""
    from danet_tf.data.folder import SkipCounter
    from danet_tf.train.task import build_inputs
    from danet_tf.train.trainer import start_training

    config = pretrain_config(workdir, quick)
    os.makedirs(config.train.model_dir, exist_ok=True)
    path = backbone_path(workdir)
    session = start_training(config)
    train_ds, val_ds = build_inputs(config, 0, SkipCounter())
    stop = StopWhenFlat(path, PATIENCE)
    start = time.time()
    session.model.fit(train_ds, epochs=config.train.epochs,
                      steps_per_epoch=config.train.steps_per_epoch, validation_data=val_ds,
                      callbacks=[stop], verbose=0, shuffle=False)
    return {"val_miou_per_epoch": stop.curve, "best_epoch": stop.best_epoch,
            "best_miou": stop.curve[stop.best_epoch - 1],
            "steps_per_epoch": config.train.steps_per_epoch, "max_epochs": config.train.epochs,
            "patience": PATIENCE, "train_seconds": round(time.time() - start, 1),
            "weights": path}
