"""tf.data input pipelines: datasets, decoding, joint image/mask augmentation (TensorFlow)."""
