"""DANet for keras-hub: a `Backbone`, an `ImageSegmenter` and its preprocessor.

Importing this module registers the classes, after which keras-hub's own
loaders read this package's presets (a named one once it is cached):

>>> import keras_hub
>>> import danet_tf.models.hub  # doctest: +SKIP
>>> segmenter = keras_hub.models.ImageSegmenter.from_preset(preset_dir)  # doctest: +SKIP
>>> segmenter.predict(preprocessed_images)  # (B, H, W, num_classes) logits  # doctest: +SKIP

`DANetImageSegmenter.from_preset` and `DANetBackbone.from_preset` also take
a catalogue name (downloaded, checked and converted on first use, as
`DANet.from_preset`). The backbone is the whole DANet (keras-hub's backbones
end where a task's head begins, and DANet's classifiers are part of its
attention head); the segmenter returns its fused logits, and its
preprocessor takes RGB images on 0-255 to the ImageNet normalisation.
"""

import os

import keras
from keras_hub.layers import ImageConverter
from keras_hub.models import Backbone, ImageSegmenter, ImageSegmenterPreprocessor

from danet_tf.models.danet import OPTIONS, danet_options
from danet_tf.models.danet_graph import danet_graph
from danet_tf.models.precision import global_dtype_policy
from danet_tf.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD


def _local_preset(preset):
    """A catalogue name's cached preset directory; anything else (a
    directory, a Kaggle or Hugging Face handle) as it is."""
    from danet_tf.models.preset_cache import cached_preset
    from danet_tf.models.preset_catalog import MMSEG_CONFIGS

    return cached_preset(preset) if preset in MMSEG_CONFIGS else preset


@keras.saving.register_keras_serializable(package="danet_tf")
class DANetBackbone(Backbone):
    """The DANet network as a keras-hub `Backbone`.

    Args: those of `danet_tf.DANet` (`num_classes`, `backbone`,
    `output_stride`, ...; the same defaults and checks), and `dtype`.

    Inputs: ImageNet-normalised images `(batch, height, width, 3)`.
    Outputs: `DANet`'s dict of logits at input resolution (`"logits"`,
    `"pam_logits"`, `"cam_logits"`, with `aux_head` `"aux_logits"`).
    """

    def __init__(self, num_classes, dtype=None, **kwargs):
        options = danet_options(num_classes, **{name: kwargs.pop(name) for name in OPTIONS
                                               if name in kwargs})
        images, outputs, policy = danet_graph(options, dtype)
        with global_dtype_policy(policy):  # the model's own policy, as its layers'
            super().__init__(inputs=images, outputs=outputs, dtype=policy, **kwargs)
        self.model_options = options

    @property
    def num_classes(self):
        return self.model_options["num_classes"]

    def get_config(self):
        return {**super().get_config(), **self.model_options}

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """keras-hub's `from_preset`; a catalogue name is fetched first."""
        return super().from_preset(_local_preset(preset), load_weights, **kwargs)

    def with_num_classes(self, num_classes):
        """A backbone for `num_classes` classes with these weights, except the
        classifiers' (they start anew where the class count differs)."""
        if num_classes == self.num_classes:
            return self
        backbone = DANetBackbone.from_config({**self.get_config(), "num_classes": num_classes})
        for source, target in zip(self.weights, backbone.weights, strict=True):
            if tuple(source.shape) == tuple(target.shape):
                target.assign(source)
        return backbone


@keras.saving.register_keras_serializable(package="danet_tf")
class DANetImageConverter(ImageConverter):
    """keras-hub's image converter for DANet; `danet_image_converter()`
    gives its normalisation."""

    backbone_cls = DANetBackbone


def danet_image_converter():
    """RGB on 0-255 to DANet's input, `(x / 255 - mean) / std` per channel,
    at every size as it is."""
    return DANetImageConverter(scale=[1.0 / (255.0 * s) for s in IMAGENET_STD],
                               offset=[-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])


@keras.saving.register_keras_serializable(package="danet_tf")
class DANetImageSegmenterPreprocessor(ImageSegmenterPreprocessor):
    """keras-hub's segmentation preprocessor with `DANetImageConverter`."""

    backbone_cls = DANetBackbone
    image_converter_cls = DANetImageConverter

    @classmethod
    def _add_missing_kwargs(cls, loader, kwargs):
        # keras-hub's hook for a preset without this layer's files: an
        # image_converter.json where keras-hub wrote one, else DANet's own
        # normalisation (what this package's presets leave implied).
        preset = str(loader.preset)
        if "image_converter" not in kwargs and os.path.isdir(preset) and not os.path.isfile(
                os.path.join(preset, "image_converter.json")):
            kwargs["image_converter"] = danet_image_converter()
        return super()._add_missing_kwargs(loader, kwargs)


@keras.saving.register_keras_serializable(package="danet_tf")
class DANetImageSegmenter(ImageSegmenter):
    """DANet as a keras-hub `ImageSegmenter`: the fused logits.

    Args:
        backbone: a `DANetBackbone`.
        num_classes: int or `None`. Another class count than the backbone's
            gives its classifiers anew (keras-hub's fine-tuning convention;
            every other weight is kept).
        activation: applied to the logits (`None`: logits, float32).
        preprocessor: a `DANetImageSegmenterPreprocessor` or `None`.

    `compile()` takes keras-hub's defaults for segmenters (Adam, one-hot
    categorical cross-entropy) and `fit` trains through the fused logits
    only (Keras says that the position, channel and auxiliary classifiers
    get no gradient); `danet_tf.DANet.compile()` is the paper's recipe with
    all three losses.
    """

    backbone_cls = DANetBackbone
    preprocessor_cls = DANetImageSegmenterPreprocessor

    def __init__(self, backbone, num_classes=None, activation=None, preprocessor=None,
                 **kwargs):
        backbone = backbone.with_num_classes(num_classes or backbone.num_classes)
        # === Layers ===
        self.output_activation = keras.layers.Activation(
            activation or "linear", dtype="float32", name="segmentation_output")

        # === Functional Model ===
        inputs = backbone.input
        outputs = self.output_activation(backbone(inputs)["logits"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.num_classes = backbone.num_classes
        self.activation = activation
        self.preprocessor = preprocessor

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "activation": self.activation}

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """keras-hub's `from_preset`; a catalogue name is fetched first."""
        return super().from_preset(_local_preset(preset), load_weights, **kwargs)
