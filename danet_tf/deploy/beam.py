"""An Apache Beam model handler for DANet: `RunInference` over class maps.

    handler = KeyedModelHandler(DANetModelHandler("danet.keras", crop_size=512))
    (path, image) pairs | RunInference(handler) -> (path, PredictionResult)

The handler loads the model once per worker process (Beam shares it between
the process's threads) with `danet_tf.deploy.loading.load_logits_fn`, so it
takes every format the project exports: a `.keras` file (on any Keras
backend), a SavedModel directory (its `predict_logits` signature) or an
OpenVINO `.xml`. Beam's own `TFModelHandlerNumpy` is not used: it imports
tensorflow_hub and cannot load a SavedModel under Keras 3 (apache/beam#30616).
"""

import os
from collections import defaultdict
from typing import NamedTuple

import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult

from danet_tf.deploy.inference import STRIDE_RATE
from danet_tf.models.precision import CHOICES, check_precision


class Segmentation(NamedTuple):
    """The inference of one image: its class map `(H, W)` int32 and the
    model's class count (for class shares and confusion matrices)."""

    classes: np.ndarray
    num_classes: int


class LoadedModel:
    """A worker's loaded model: its `Segmenter` and class count (a plain class:
    Beam keeps a weak reference to the shared model)."""

    def __init__(self, segmenter, num_classes):
        self.segmenter = segmenter
        self.num_classes = num_classes


def image_of(example):
    """The uint8 `(H, W, 3)` image of an example: the example itself, or the
    first item of an `(image, anything)` pair."""
    return example[0] if isinstance(example, tuple) else example


def indexes_by_size(images):
    """`{(H, W): [indexes of the images of that size]}`, in batch order."""
    groups = defaultdict(list)
    for index, image in enumerate(images):
        groups[image.shape[:2]].append(index)
    return groups


def limit_threads(threads):
    """Runs TensorFlow (and oneDNN / OpenMP) on `threads` threads in this
    process; a no-op once TensorFlow has started its thread pools."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import tensorflow as tf
    except ImportError:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised in this process
        pass


class DANetModelHandler(ModelHandler):
    """Segments uint8 RGB images `(H, W, 3)` into class maps with `Segmenter`.

    An example is an image, or an `(image, extra)` pair whose `extra` (e.g.
    the ground-truth mask) rides along untouched in `PredictionResult.example`.
    Each result's `inference` is a `Segmentation`.

    Batches: `RunInference` hands the handler up to `max_batch_images`
    examples at once (`batch_elements_kwargs`). Images of any sizes may share
    a batch: `run_inference` groups the batch by size; whole images of one
    size go through the model together (`Segmenter.predict_batch`, at most
    `batch_size` per model call), while with sliding windows (`crop_size`)
    each image runs alone with its windows batched. Results keep the batch's
    order.

    Args:
        model_path: str. `.keras` file, SavedModel directory or OpenVINO `.xml`.
        precision: `"auto"`, `"float32"` or `"bfloat16"` (as `danet-predict
            --precision`).
        crop_size, stride_rate, scales, flip, base_size, batch_size: the
            `Segmenter` options (`danet-predict --crop ...`).
        max_batch_images: int. Most images per `run_inference` call.
        threads: int or None. Threads of TensorFlow in each worker process
            (default: all cores).
    """

    def __init__(self, model_path, precision="auto", crop_size=None, stride_rate=STRIDE_RATE,
                 scales=(1.0,), flip=False, base_size=None, batch_size=4, max_batch_images=8,
                 threads=None):
        check_precision(precision, CHOICES)
        super().__init__(min_batch_size=1, max_batch_size=max_batch_images)
        self.model_path = model_path
        self.precision = precision
        self.segmenter_kwargs = dict(crop_size=crop_size, stride_rate=stride_rate,
                                     scales=tuple(scales), flip=flip, base_size=base_size,
                                     batch_size=batch_size)
        self.threads = threads

    def load_model(self):
        """Loads the model once per worker process (`import danet_tf` there
        registers the custom Keras layers)."""
        if self.threads:
            limit_threads(self.threads)
        import danet_tf  # noqa: F401
        from danet_tf.deploy.inference import Segmenter
        from danet_tf.deploy.loading import load_logits_fn

        logits_fn, num_classes = load_logits_fn(self.model_path, self.precision)
        return LoadedModel(Segmenter(logits_fn, **self.segmenter_kwargs), num_classes)

    def run_inference(self, batch, model, inference_args=None):
        images = [np.asarray(image_of(example)) for example in batch]
        maps = [None] * len(images)
        for indexes in indexes_by_size(images).values():
            same_size = np.stack([images[i] for i in indexes])
            for index, classes in zip(indexes, model.segmenter.predict_batch(same_size)):
                maps[index] = classes
        return [PredictionResult(example, Segmentation(classes, model.num_classes),
                                 self.model_path)
                for example, classes in zip(batch, maps)]

    def get_num_bytes(self, batch):
        return sum(image_of(example).nbytes for example in batch)

    def get_metrics_namespace(self):
        return "danet"


def keyed_handler(model_path, **kwargs):
    """`DANetModelHandler` for `(key, example)` pairs, e.g. keyed by the image's path."""
    return KeyedModelHandler(DANetModelHandler(model_path, **kwargs))
