"""Whole-image, sliding-window and multi-scale + flip inference (the official
`MultiEvalModule`, PyTorch-Encoding, used for the published DANet numbers).

For each scale the image is resized (long side `base_size * scale`, bilinear,
align_corners=True), run whole or in `crop_size` windows with stride
`crop_size * stride_rate` (windows padded with black, `-mean / std`, as the
official `pad_image`), and turned into
scores `exp(logits + flipped logits)` (flip) or `exp(logits)`; window scores
are averaged where windows overlap, resized back to the input size and
summed over scales. The class is the argmax of the sum.
"""

import math

import numpy as np

from danet_tf.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD, normalize
from danet_tf.models.resize import resize_bilinear


def _resize(x, height, width):
    """`(1, h, w, C)` float -> `(1, height, width, C)`, align_corners=True."""
    if x.shape[1:3] == (height, width):
        return x
    return np.asarray(resize_bilinear(x, (height, width), True))


BLACK = -np.asarray(IMAGENET_MEAN) / np.asarray(IMAGENET_STD)


def _pad(x, height, width):
    """Pads a normalised `(1, h, w, 3)` bottom/right to `(height, width)` with
    black, `-mean / std` per channel (the official `pad_image`)."""
    ph, pw = max(height - x.shape[1], 0), max(width - x.shape[2], 0)
    if not (ph or pw):
        return x
    out = np.empty((x.shape[0], x.shape[1] + ph, x.shape[2] + pw, x.shape[3]), x.dtype)
    out[...] = BLACK.astype(x.dtype)
    out[:, : x.shape[1], : x.shape[2]] = x
    return out


class Segmenter:
    """Predicts class maps for images of any size.

    Args:
        logits_fn: callable mapping normalised float32 images `(1, h, w, 3)`
            to logits `(1, h, w, num_classes)` (e.g. `DANet.inference_model()`).
        crop_size: int or None. Sliding-window size; `None` runs whole images.
        stride_rate: float. Window stride as a fraction of `crop_size`
            (official: 2/3 single-scale, 1/2 multi-scale).
        scales: sequence of floats. Test scales.
        flip: bool. Adds the horizontally flipped prediction.
        base_size: int or None. Long side at scale 1.0; `None` keeps the
            image's own size.
    """

    def __init__(self, logits_fn, crop_size=None, stride_rate=2 / 3, scales=(1.0,), flip=False,
                 base_size=None):
        self.logits_fn = logits_fn
        self.crop_size = crop_size
        self.stride_rate = stride_rate
        self.scales = tuple(scales)
        self.flip = flip
        self.base_size = base_size

    def _logits(self, x):
        return np.asarray(self.logits_fn(x.astype(np.float32)), np.float64)

    def _window_scores(self, x):
        """exp(logits [+ flipped logits]) of one normalised input."""
        logits = self._logits(x)
        if self.flip:
            logits = logits + self._logits(x[:, :, ::-1])[:, :, ::-1]
        return np.exp(logits)

    def _scale_scores(self, x):
        """Scores of one resized image, whole or by sliding window."""
        height, width = x.shape[1:3]
        crop = self.crop_size
        if crop is None:
            return self._window_scores(x)
        if max(height, width) <= crop:
            return self._window_scores(_pad(x, crop, crop))[:, :height, :width]
        padded = _pad(x, crop, crop)
        ph, pw = padded.shape[1:3]
        stride = int(crop * self.stride_rate)
        scores, counts = None, np.zeros((1, ph, pw, 1))
        for i in range(int(math.ceil((ph - crop) / stride)) + 1):
            for j in range(int(math.ceil((pw - crop) / stride)) + 1):
                h0, w0 = i * stride, j * stride
                h1, w1 = min(h0 + crop, ph), min(w0 + crop, pw)
                window = self._window_scores(_pad(padded[:, h0:h1, w0:w1], crop, crop))
                if scores is None:
                    scores = np.zeros((1, ph, pw, window.shape[-1]))
                scores[:, h0:h1, w0:w1] += window[:, : h1 - h0, : w1 - w0]
                counts[:, h0:h1, w0:w1] += 1
        return (scores / counts)[:, :height, :width]

    def scores(self, image):
        """Fused scores `(H, W, num_classes)` float64 for a uint8 image `(H, W, 3)`."""
        x = np.asarray(normalize(image))[None]
        height, width = x.shape[1:3]
        total = None
        for scale in self.scales:
            long_side = math.ceil((self.base_size or max(height, width)) * scale)
            if height > width:
                size = (long_side, int(width * long_side / height + 0.5))
            else:
                size = (int(height * long_side / width + 0.5), long_side)
            scores = self._scale_scores(_resize(x, *size))
            scores = _resize(scores, height, width).astype(np.float64)
            total = scores if total is None else total + scores
        return total[0]

    def predict(self, image):
        """Class map `(H, W)` int32 for a uint8 image `(H, W, 3)`."""
        return np.argmax(self.scores(image), axis=-1).astype(np.int32)
