"""Test helper: trains a tiny configuration and saves the final weights.

    [KERAS_BACKEND=jax] python tests/run_training.py OUT_DIR STRATEGY [DEVICES] [key=value ...]

DEVICES > 1 makes that many CPU devices: logical devices on TensorFlow,
`--xla_force_host_platform_device_count` on JAX. Writes OUT_DIR/summary.json
OUT_DIR/weights.npz (all model weights) and OUT_DIR/optimizer.npz (the
optimizer's variables: after one SGD step its momentum buffers hold the gradients).
"""

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

    from danet_tf.cli.train import run
    from danet_tf.config import load_config

    keras.utils.set_random_seed(0)

    os.makedirs(out_dir, exist_ok=True)
    config = load_config("quickstart", overrides=TINY + [f"train.model_dir={out_dir}/model",
                                                         f"train.export_dir={out_dir}/export"]
                         + overrides)
    summary, model = run(config, strategy, verbose=0)
    np.savez(os.path.join(out_dir, "weights.npz"),
             *[keras.ops.convert_to_numpy(w) for w in model.weights])
    np.savez(os.path.join(out_dir, "optimizer.npz"),
             *[keras.ops.convert_to_numpy(v) for v in model.optimizer.variables])
    summary["num_replicas"] = summary.pop("replicas")
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, default=str)


if __name__ == "__main__":
    main()
