"""The model's input contract: ImageNet-normalised RGB, as torchvision's ResNets.

`normalize` is `keras.ops` code, so it runs on every Keras backend (the
tf.data pipeline has its own `tf` twin in `danet_tf.data.augment`, built on
the same constants).
"""

from keras import ops

# Mean and standard deviation of ImageNet RGB in [0, 1] (torchvision's weights).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Black after normalisation, `-mean / std` per channel: what the official code
# pads images and sliding windows with (PIL `fill=0` before normalising).
BLACK = tuple(-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD))


def normalize(images):
    """uint8 or float `[0, 255]` RGB `(..., 3)` -> ImageNet-normalised float32."""
    images = ops.cast(images, "float32") / 255.0
    mean = ops.convert_to_tensor(IMAGENET_MEAN, "float32")
    std = ops.convert_to_tensor(IMAGENET_STD, "float32")
    return (images - mean) / std
