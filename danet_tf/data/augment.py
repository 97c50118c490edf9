"""Joint image/mask augmentation (the official DANet / mmseg recipe) in tf.image.

Inputs are `(image (H, W, 3) uint8, mask (H, W) uint8)` of any size; outputs
are `(image (h, w, 3) float32 ImageNet-normalised, mask (h, w) int32)`.
Masks are only ever resized with nearest neighbour and padded with 255, so
no value appears that was not a class id or the ignore label. All randomness
is stateless, drawn from a per-example seed, so a run is repeatable.
"""

import tensorflow as tf

from danet_tf.models.losses import IGNORE_LABEL
from danet_tf.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD


def normalize(image):
    """uint8 or float `[0, 255]` RGB -> ImageNet-normalised float32."""
    image = tf.cast(image, tf.float32) / 255.0
    return (image - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def random_rescale(image, mask, seed, scale_range, base_size=None):
    """Resizes by a factor in `scale_range` (of `base_size` on the long side if given)."""
    scale = tf.random.stateless_uniform([], seed, scale_range[0], scale_range[1])
    size = tf.cast(tf.shape(mask), tf.float32)
    if base_size:
        scale = scale * base_size / tf.reduce_max(size)
    new_size = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), 1)
    image = tf.image.resize(tf.cast(image, tf.float32), new_size, method="bilinear")
    mask = tf.image.resize(mask[..., None], new_size, method="nearest")[..., 0]
    return image, mask


def photometric_jitter(image, seed, strength=0.2):
    """Brightness, contrast and saturation jitter on a `[0, 255]` float image."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    image = image / 255.0
    image = tf.image.stateless_random_brightness(image, strength, seeds[0])
    image = tf.image.stateless_random_contrast(image, 1 - strength, 1 + strength, seeds[1])
    image = tf.image.stateless_random_saturation(image, 1 - strength, 1 + strength, seeds[2])
    return tf.clip_by_value(image, 0.0, 1.0) * 255.0


def pad_to_size(image, mask, crop_size):
    """Pads bottom/right to at least `crop_size`: the `[0, 255]` image with 0
    (black, the official `ImageOps.expand(..., fill=0)` before normalising,
    i.e. `-mean / std` afterwards), the mask with the ignore label."""
    shape = tf.shape(mask)
    pad_h = tf.maximum(crop_size[0] - shape[0], 0)
    pad_w = tf.maximum(crop_size[1] - shape[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]])
    mask = tf.pad(mask, [[0, pad_h], [0, pad_w]], constant_values=IGNORE_LABEL)
    return image, mask


def random_crop(image, mask, seed, crop_size):
    shape = tf.shape(mask)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    top = tf.random.stateless_uniform([], seeds[0], 0, shape[0] - crop_size[0] + 1, tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, shape[1] - crop_size[1] + 1, tf.int32)
    image = image[top : top + crop_size[0], left : left + crop_size[1]]
    mask = mask[top : top + crop_size[0], left : left + crop_size[1]]
    return image, mask


def random_flip(image, mask, seed):
    flip = tf.random.stateless_uniform([], seed) < 0.5
    image = tf.where(flip, tf.reverse(image, [1]), image)
    mask = tf.where(flip, tf.reverse(mask, [1]), mask)
    return image, mask


def train_transform(image, mask, seed, crop_size, scale_range=(0.5, 2.0), base_size=None,
                    flip=True, jitter=False):
    """Random scale, (jitter), pad with black, random crop, flip, normalise.

    Args:
        image: `(H, W, 3)` uint8.
        mask: `(H, W)` uint8 class ids, 255 = ignore.
        seed: `(2,)` int stateless seed of this example.
        crop_size: `(crop_h, crop_w)` Python ints (static output shape).

    Returns:
        `(image (crop_h, crop_w, 3) float32, mask (crop_h, crop_w) int32)`.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    image, mask = random_rescale(image, mask, seeds[0], scale_range, base_size)
    if jitter:
        image = photometric_jitter(image, seeds[1])
    image, mask = pad_to_size(image, mask, crop_size)
    image, mask = random_crop(image, mask, seeds[2], crop_size)
    if flip:
        image, mask = random_flip(image, mask, seeds[3])
    image = tf.ensure_shape(normalize(image), (*crop_size, 3))
    mask = tf.ensure_shape(tf.cast(mask, tf.int32), crop_size)
    return image, mask


def eval_transform(image, mask):
    """Full-resolution evaluation: normalise only. `(H, W, 3)` float32, `(H, W)` int32."""
    return normalize(image), tf.cast(mask, tf.int32)
