"""Whole-image, sliding-window and multi-scale + flip inference (the official
`MultiEvalModule`, PyTorch-Encoding, used for the published DANet numbers).

For each scale the image is resized (long side `base_size * scale`, bilinear,
align_corners=True), run whole or in `crop_size` windows with stride
`crop_size * stride_rate` (windows padded with black, `-mean / std`, as the
official `pad_image`), and turned into
scores `exp(logits + flipped logits)` (flip) or `exp(logits)`; window scores
are averaged where windows overlap, resized back to the input size and
summed over scales. The class is the argmax of the sum. Unlike the official
loop, windows and their flips are batched into few model calls.
"""

import math

import numpy as np

from danet_tf.models.preprocessing import BLACK, normalize
from danet_tf.models.resize import resize_bilinear


def _resize(x, height, width):
    """`(n, h, w, C)` float32 -> `(n, height, width, C)`, align_corners=True."""
    if x.shape[1:3] == (height, width):
        return x
    return np.asarray(resize_bilinear(x, (height, width), True), np.float32)


def _pad(x, height, width):
    """Pads a normalised `(1, h, w, 3)` bottom/right to `(height, width)` with
    black, `-mean / std` per channel (the official `pad_image`)."""
    ph, pw = max(height - x.shape[1], 0), max(width - x.shape[2], 0)
    if not (ph or pw):
        return x
    out = np.empty((x.shape[0], x.shape[1] + ph, x.shape[2] + pw, x.shape[3]), x.dtype)
    out[...] = np.asarray(BLACK, x.dtype)
    out[:, : x.shape[1], : x.shape[2]] = x
    return out


def scaled_size(height, width, long_side):
    """`(h, w)` with the long side `ceil(long_side)` and the aspect ratio kept
    (rounded as the official `MultiEvalModule`)."""
    long_side = math.ceil(long_side)
    if height > width:
        return long_side, int(width * long_side / height + 0.5)
    return int(height * long_side / width + 0.5), long_side


def window_grid(height, width, crop, stride):
    """The official sliding windows over a `(height, width)` image (already
    padded to at least `crop`): `[(h0, h1, w0, w1), ...]`, row by row; the
    last window of a row or column may be shorter than `crop`."""
    rows = int(math.ceil((height - crop) / stride)) + 1
    cols = int(math.ceil((width - crop) / stride)) + 1
    return [(i * stride, min(i * stride + crop, height), j * stride, min(j * stride + crop, width))
            for i in range(rows) for j in range(cols)]


# The official sliding-window stride, as a fraction of the window.
STRIDE_RATE = 2 / 3


class Segmenter:
    """Predicts class maps for images of any size.

    Windows (and their mirror images, with `flip`) go to `logits_fn` in
    batches of at most `batch_size` images, and each batch is fused as it
    comes back, in float32 as the official code does on its GPU: memory stays
    bounded by one batch of logits plus the score maps of one scale.

    Args:
        logits_fn: callable mapping normalised float32 images `(B, h, w, 3)`
            to logits `(B, h, w, num_classes)` (e.g. `DANet.inference_model()`,
            or `danet_tf.deploy.loading.load_logits_fn`).
        crop_size: int or None. Sliding-window size; `None` runs whole images.
        stride_rate: float. Window stride as a fraction of `crop_size`
            (official: 2/3).
        scales: sequence of floats. Test scales.
        flip: bool. Adds the horizontally flipped prediction.
        base_size: int or None. Long side at scale 1.0; `None` keeps the
            image's own size.
        batch_size: int. Most images per `logits_fn` call (a window and its
            flip count as two).
    """

    def __init__(self, logits_fn, crop_size=None, stride_rate=STRIDE_RATE, scales=(1.0,),
                 flip=False, base_size=None, batch_size=4):
        if batch_size < (2 if flip else 1):
            raise ValueError(f"batch_size must be at least {2 if flip else 1} "
                             f"(flip={flip}). Received: {batch_size}")
        self.logits_fn = logits_fn
        self.crop_size = crop_size
        self.stride_rate = stride_rate
        self.scales = tuple(scales)
        self.flip = flip
        self.base_size = base_size
        self.batch_size = batch_size

    @classmethod
    def from_model(cls, path, precision="auto", **options):
        """A segmenter of the model at `path` (`.keras`, preset, SavedModel
        or OpenVINO `.xml`; see `loading.load_logits_fn`), at `precision`
        (`"auto"`: the fastest path this CPU has, said in one line)."""
        from danet_tf.deploy.loading import load_logits_fn

        return cls(load_logits_fn(path, precision)[0], **options)

    def _window_scores(self, windows):
        """exp(logits [+ flipped logits of the mirrored windows]), `(n, h, w, C)`
        float32, for normalised windows `(n, h, w, 3)` of one size."""
        batch = np.concatenate([windows, windows[:, :, ::-1]]) if self.flip else windows
        logits = np.asarray(self.logits_fn(np.ascontiguousarray(batch, np.float32)), np.float32)
        if self.flip:
            n = len(windows)
            logits = logits[:n] + logits[n:, :, ::-1]
        return np.exp(logits)

    def _scale_scores(self, x):
        """Scores `(n, h, w, C)` of resized images: whole, or one image `(1, h, w, 3)`
        by sliding window."""
        height, width = x.shape[1:3]
        crop = self.crop_size
        if crop is None:
            return self._window_scores(x)
        padded = _pad(x, crop, crop)
        boxes = window_grid(*padded.shape[1:3], crop, int(crop * self.stride_rate))
        per_call = self.batch_size // (2 if self.flip else 1)
        scores = counts = None
        for first in range(0, len(boxes), per_call):
            chunk = boxes[first:first + per_call]
            windows = np.concatenate([_pad(padded[:, h0:h1, w0:w1], crop, crop)
                                      for h0, h1, w0, w1 in chunk])
            window_scores = self._window_scores(windows)
            if scores is None:
                scores = np.zeros((1, *padded.shape[1:3], window_scores.shape[-1]), np.float32)
                counts = np.zeros((1, *padded.shape[1:3], 1), np.float32)
            for (h0, h1, w0, w1), window in zip(chunk, window_scores):
                scores[0, h0:h1, w0:w1] += window[: h1 - h0, : w1 - w0]
                counts[0, h0:h1, w0:w1] += 1
        return (scores / counts)[:, :height, :width]

    def _fused_scores(self, x):
        """Scores `(n, H, W, C)` summed over scales for normalised images `(n, H, W, 3)`
        of one size (`n` is 1 with sliding windows)."""
        height, width = x.shape[1:3]
        total = None
        for scale in self.scales:
            size = scaled_size(height, width, (self.base_size or max(height, width)) * scale)
            scores = _resize(self._scale_scores(_resize(x, *size)), height, width)
            total = scores if total is None else total + scores
        return total

    def scores(self, image):
        """Fused scores `(H, W, num_classes)` float32 for a uint8 image `(H, W, 3)`."""
        return self._fused_scores(np.asarray(normalize(image), np.float32)[None])[0]

    def predict(self, image):
        """Class map `(H, W)` int32 for a uint8 image `(H, W, 3)`."""
        return np.argmax(self.scores(image), axis=-1).astype(np.int32)

    def predict_batch(self, images):
        """Class maps `(n, H, W)` int32 for uint8 images `(n, H, W, 3)` of one size.

        Whole images (no `crop_size`) go to the model together, at most
        `batch_size` per call (an image and its flip count as two); with
        sliding windows each image runs alone, its windows batched.
        """
        images = np.asarray(images)
        if self.crop_size is not None:
            return np.stack([self.predict(image) for image in images])
        per_call = max(self.batch_size // (2 if self.flip else 1), 1)
        maps = []
        for first in range(0, len(images), per_call):
            x = np.asarray(normalize(images[first:first + per_call]), np.float32)
            maps.append(np.argmax(self._fused_scores(x), axis=-1).astype(np.int32))
        return np.concatenate(maps)
