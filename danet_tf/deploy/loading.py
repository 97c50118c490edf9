"""Loading a trained model from a `.keras` file or a SavedModel directory."""

import os

import numpy as np


def load_logits_fn(path):
    """A callable normalised `(1, H, W, 3)` float32 -> logits, and the class count.

    Accepts a `.keras` file (the fused-logits branch of `DANet`) or a
    SavedModel directory written by `danet_tf.deploy.export` (its `predict_logits`
    signature).
    """
    if os.path.isdir(path):
        import tensorflow as tf

        signature = tf.saved_model.load(path).signatures["predict_logits"]

        def logits_fn(x):
            return signature(images=tf.constant(x, tf.float32))["logits"].numpy()

        num_classes = int(signature.structured_outputs["logits"].shape[-1])
        return logits_fn, num_classes
    if not path.endswith(".keras"):
        raise ValueError(
            f"--model must be a .keras file or a SavedModel directory. Received: {path!r}"
        )
    import keras

    from danet_tf.deploy.export import inference_graph  # also registers the custom layers

    net = inference_graph(keras.models.load_model(path))

    def logits_fn(x):
        return np.asarray(net(x, training=False))

    return logits_fn, int(net.output.shape[-1])
