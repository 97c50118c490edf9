"""mmsegmentation's test protocol, for models converted from its checkpoints.

mmseg 1.2.2 evaluates a DANet as its configs say (`test_pipeline`,
`model.test_cfg`): the image is resized keeping its aspect ratio to fit
`scale` (long, short) (`mmcv.imrescale`: factor
`min(long / max(h, w), short / min(h, w))`, size `int(x * factor + 0.5)`,
bilinear); the model runs on the whole image (`mode='whole'`) or on
`crop` windows every `stride` pixels, the last window of a row or column
moved back to end at the border and never padded (`mode='slide'`), window
logits averaged where they overlap; the logits are resized back to the
image bilinearly with the model's `align_corners`; argmax. Unlike the
official DANet protocol (`danet_tf.deploy.inference`) it averages logits, not
`exp(logits)`, and never pads.
"""

import numpy as np

from danet_tf.models.preprocessing import normalize
from danet_tf.models.resize import resize_bilinear


def rescaled_size(height, width, scale):
    """`(h, w)` after mmcv's keep-ratio rescale to `scale` (long, short)."""
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


def rescale_image(image, scale):
    """A uint8 `(H, W, 3)` image resized as mmcv's keep-ratio `imrescale`
    (bilinear, half-pixel centres; cv2 rounds in fixed point, so a pixel may
    differ from it by one grey level)."""
    size = rescaled_size(*image.shape[:2], scale)
    if size == image.shape[:2]:
        return image
    resized = resize_bilinear(np.asarray(image, np.float32)[None], size, False)
    return np.clip(np.floor(np.asarray(resized)[0] + 0.5), 0, 255).astype(np.uint8)


def slide_windows(height, width, crop, stride):
    """mmseg's `slide_inference` windows `[(y1, y2, x1, x2), ...]`, row by row."""
    (crop_h, crop_w), (stride_h, stride_w) = crop, stride
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    windows = []
    for row in range(rows):
        for col in range(cols):
            y2, x2 = min(row * stride_h + crop_h, height), min(col * stride_w + crop_w, width)
            windows.append((max(y2 - crop_h, 0), y2, max(x2 - crop_w, 0), x2))
    return windows


def _resize(x, height, width, align_corners):
    if x.shape[1:3] == (height, width):
        return x
    return np.asarray(resize_bilinear(x, (height, width), align_corners), np.float32)


class MMSegSegmenter:
    """Predicts class maps with mmseg's test protocol (see the module).

    Args:
        logits_fn: callable, normalised float32 `(B, h, w, 3)` -> logits
            `(B, h, w, num_classes)` at input size (a converted model's
            fused logits).
        scale: `(long, short)` of the keep-ratio test resize.
        crop: `(h, w)` windows, or `None` for whole images.
        stride: `(h, w)` window stride (with `crop`).
        align_corners: bool. The converted model's upsampling semantics,
            also used to resize the logits back.
        batch_size: int. Most windows per `logits_fn` call.
    """

    def __init__(self, logits_fn, scale, crop=None, stride=None, align_corners=False,
                 batch_size=4):
        if (crop is None) != (stride is None):
            raise ValueError(f"crop and stride go together. Received: crop={crop}, "
                             f"stride={stride}")
        self.logits_fn = logits_fn
        self.scale = tuple(scale)
        self.crop = tuple(crop) if crop else None
        self.stride = tuple(stride) if stride else None
        self.align_corners = align_corners
        self.batch_size = batch_size

    def _logits(self, x):
        return np.asarray(self.logits_fn(np.ascontiguousarray(x, np.float32)), np.float32)

    def _slide(self, x):
        height, width = x.shape[1:3]
        windows = slide_windows(height, width, self.crop, self.stride)
        total = counts = None
        for first in range(0, len(windows), self.batch_size):
            chunk = windows[first:first + self.batch_size]
            shapes = {(y2 - y1, x2 - x1) for y1, y2, x1, x2 in chunk}
            # Windows of one call share a size; a clipped one goes alone.
            groups = [chunk] if len(shapes) == 1 else [[w] for w in chunk]
            for group in groups:
                logits = self._logits(np.concatenate([x[:, y1:y2, x1:x2]
                                                      for y1, y2, x1, x2 in group]))
                if total is None:
                    total = np.zeros((height, width, logits.shape[-1]), np.float32)
                    counts = np.zeros((height, width, 1), np.float32)
                for (y1, y2, x1, x2), window in zip(group, logits):
                    total[y1:y2, x1:x2] += window
                    counts[y1:y2, x1:x2] += 1
        return (total / counts)[None]

    def scores(self, image):
        """Logits `(H, W, num_classes)` float32 at the size of a uint8 `(H, W, 3)` image."""
        height, width = image.shape[:2]
        x = np.asarray(normalize(rescale_image(image, self.scale)[None]), np.float32)
        logits = self._slide(x) if self.crop else self._logits(x)
        return _resize(logits, height, width, self.align_corners)[0]

    def predict(self, image):
        """Class map `(H, W)` int32 for a uint8 image `(H, W, 3)`."""
        return np.argmax(self.scores(image), axis=-1).astype(np.int32)

    def predict_batch(self, images):
        """Class maps `(n, H, W)` int32 for uint8 images `(n, H, W, 3)`."""
        return np.stack([self.predict(image) for image in images])
