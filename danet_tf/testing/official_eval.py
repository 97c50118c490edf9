"""The official multi-scale + flip sliding-window evaluation, as PyTorch-Encoding's
`MultiEvalModule.forward` and `module_inference` run it (junfu1115/DANet,
`encoding/models/sseg/base.py`): one window and one flip per model call, scores
`exp(logits)` averaged where windows overlap and summed over scales."""

import functools
import math

import torch
import torch.nn.functional as F


def multi_eval(model, image, crop, scales, flip, base_size, black, stride_rate=2 / 3,
               resize=None):
    """Summed scores `(1, C, H, W)` of the normalised `(1, 3, H, W)` `image`.

    Args:
        model: `(1, 3, h, w)` tensor -> `(1, C, h, w)` logits tensor (the
            official models return a tuple: pass `lambda x: net(x)[0]`).
        crop: int. Window size; `stride = int(crop * stride_rate)`.
        scales: sequence of floats; the long side is `ceil(base_size * scale)`.
        flip: bool. Adds the horizontally flipped window's logits.
        base_size: int. Long side at scale 1.
        black: per-channel pad value (`-mean / std`, the official `pad_image`).
        resize: `(x, h, w) -> x` resized with align_corners; defaults to the
            official `F.interpolate(..., mode="bilinear", align_corners=True)`.
    """
    pad = functools.partial(_pad, crop=crop, black=black)
    module_inference = functools.partial(_module_inference, model, flip=flip)
    resize = resize or _interpolate
    _, _, h, w = image.shape
    stride = int(crop * stride_rate)
    scores = 0.0
    for scale in scales:
        long_size = int(math.ceil(base_size * scale))
        height, width, short_size = _scaled_size(h, w, long_size)
        cur = resize(image, height, width)
        if long_size <= crop:
            outputs = module_inference(pad(cur))[:, :, :height, :width]
        else:
            padded = pad(cur) if short_size < crop else cur
            outputs = _slide(module_inference, pad, padded, crop, stride)[:, :, :height, :width]
        scores = scores + resize(outputs, h, w)
    return scores


def _pad(img, crop, black):
    """The official `pad_image`: bottom and right up to `crop`, channel `i` with `black[i]`."""
    _, channels, h, w = img.shape
    padh, padw = max(crop - h, 0), max(crop - w, 0)
    return torch.stack([F.pad(img[:, i], (0, padw, 0, padh), value=float(black[i]))
                        for i in range(channels)], 1)


def _module_inference(model, img, flip):
    """The official `module_inference`: exp of the logits (plus the flipped window's)."""
    output = model(img)
    if flip:
        output = output + model(img.flip(3)).flip(3)
    return output.exp()


def _interpolate(x, h, w):
    return F.interpolate(x, (h, w), mode="bilinear", align_corners=True)


def _scaled_size(h, w, long_size):
    """The official `(height, width, short_size)` of an `h x w` image whose
    long side becomes `long_size`."""
    if h > w:
        height, width = long_size, int(1.0 * w * long_size / h + 0.5)
        return height, width, width
    width, height = long_size, int(1.0 * h * long_size / w + 0.5)
    return height, width, height


def _slide(module_inference, pad, padded, crop, stride):
    """The official sliding windows over `padded`: each window's scores
    added in place, divided by how many windows cover each pixel."""
    _, _, ph, pw = padded.shape
    outputs, count = None, torch.zeros(1, 1, ph, pw, dtype=padded.dtype)
    for idh in range(int(math.ceil(1.0 * (ph - crop) / stride)) + 1):
        for idw in range(int(math.ceil(1.0 * (pw - crop) / stride)) + 1):
            h0, w0 = idh * stride, idw * stride
            h1, w1 = min(h0 + crop, ph), min(w0 + crop, pw)
            out = module_inference(pad(padded[:, :, h0:h1, w0:w1]))
            if outputs is None:
                outputs = torch.zeros(1, out.shape[1], ph, pw, dtype=out.dtype)
            outputs[:, :, h0:h1, w0:w1] += out[:, :, : h1 - h0, : w1 - w0]
            count[:, :, h0:h1, w0:w1] += 1
    return outputs / count
