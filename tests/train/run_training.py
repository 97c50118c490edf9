"""Test helper: trains a tiny configuration and saves the final weights.

    [KERAS_BACKEND=jax] python tests/run_training.py OUT_DIR STRATEGY [DEVICES] [key=value ...]

DEVICES > 1 makes that many CPU devices: logical devices on TensorFlow,
`--xla_force_host_platform_device_count` on JAX. Writes OUT_DIR/summary.json
and OUT_DIR/weights.npz (all model weights).
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

TINY = [
    "data.synthetic_train_size=16", "data.synthetic_val_size=4", "data.synthetic_image_size=40",
    "data.crop_size=[32, 32]", "data.batch_size=4", "data.eval_batch_size=4",
    "train.epochs=2", "train.steps_per_epoch=2", "train.warmup_steps=0",
    "train.export_formats=[keras]",
]


def _fingerprint(arrays):
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, np.float32).tobytes())
    return digest.hexdigest()[:16]


def record_starting_point(trainer):
    """Fingerprints of the initial weights and of the first training batch,
    taken inside `trainer.train` (filled into the returned dict): two runs
    that should agree after a step must first start from the same point."""
    import keras

    start = {}
    load_backbone, build_inputs = trainer.load_pretrained_backbone, trainer.build_inputs

    def load_and_record(config, model):
        start["weights"] = _fingerprint(keras.ops.convert_to_numpy(w) for w in model.weights)
        return load_backbone(config, model)

    def build_and_record(config, seed_offset=0, skips=None):
        # A dataset of its own: a second iterator over the trainer's would
        # reshuffle (`reshuffle_each_iteration`) and start elsewhere.
        images, _ = next(iter(build_inputs(config, seed_offset, skips)[0]))
        start["batch"] = _fingerprint([np.asarray(images)])
        return build_inputs(config, seed_offset, skips)

    trainer.load_pretrained_backbone, trainer.build_inputs = load_and_record, build_and_record
    return start


def main():
    out_dir, strategy = sys.argv[1], sys.argv[2]
    overrides = [a for a in sys.argv[3:] if "=" in a]
    logical_cpus = next((int(a) for a in sys.argv[3:] if a.isdigit()), 1)
    if os.environ.get("KERAS_BACKEND") == "jax":
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""),
                                            f"--xla_force_host_platform_device_count={logical_cpus}"])
    elif logical_cpus > 1:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus
        )
    import keras

    from danet_tf.config import load_config
    from danet_tf.train import trainer

    start = record_starting_point(trainer)
    keras.utils.set_random_seed(0)

    os.makedirs(out_dir, exist_ok=True)
    config = load_config("quickstart", overrides=TINY + [f"train.model_dir={out_dir}/model",
                                                         f"train.export_dir={out_dir}/export"]
                         + overrides)
    summary, model = trainer.train(config, strategy, verbose=0)
    summary["start"] = start
    np.savez(os.path.join(out_dir, "weights.npz"),
             *[keras.ops.convert_to_numpy(w) for w in model.weights])
    summary["num_replicas"] = summary.pop("replicas")
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f)


if __name__ == "__main__":
    main()
