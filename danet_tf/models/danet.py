"""The DANet segmentation model: dilated ResNet + dual attention head."""

import inspect

import keras

from danet_tf.models.batch_norm_folding import fold_batch_norm as fold_batch_norm_fn
from danet_tf.models.danet_graph import danet_graph
from danet_tf.models.dilated_resnet import BACKBONES, layer4_grid
from danet_tf.models.head import attention_inputs, attention_layers, head_choice
from danet_tf.models.losses import label_every_output, official_losses
from danet_tf.models.metrics import SegmentationMetric
from danet_tf.models.optimizer import give_schedule_the_fit_length, official_optimizer
from danet_tf.models.precision import check_precision, global_dtype_policy


@keras.saving.register_keras_serializable(package="danet_tf")
class DANet(keras.Model):
    """Dual Attention Network for scene segmentation (Fu et al., CVPR 2019).

    Paper: https://arxiv.org/abs/1809.02983

    Args:
        num_classes: int. Number of classes.
        backbone: str. `"resnet50"`, `"resnet101"` or `"resnet152"` (the
            paper's), or `"resnet18"` / `"resnet34"` (light variants).
        output_stride: int. 8 (official), 16 or 32.
        multi_grid: bool or tuple. `True` uses layer4 dilation multipliers
            `(1, 2, 4)` (the released DANet-101); a tuple gives them.
        deep_stem: bool. Three 3x3 stem convs (ResNetV1c) instead of 7x7.
        aux_head: bool. Adds mmseg's FCN head on layer3 (`"aux_logits"`).
        align_corners: bool. Upsampling semantics; `True` as the official
            code (needed to match converted weights).
        dropout: float. Channel dropout before the classifiers.
        synchronized_bn: bool. Cross-replica batch norm.
        attention_block_size: `None`, `"auto"` or int. Chunked (exact)
            position attention for large inputs; see `PositionAttention`.
        head: str. `"danet"` (default), or an ablation / comparison head on
            the same backbone: `"pam"`, `"cam"` (one attention module),
            `"fcn"` (dilated FCN), `"psp"` (PSPNet), `"aspp"` (DeepLabV3).
            Only `"danet"` has the position and channel branch outputs.
        backbone_layout: `"torchvision"` (official) or `"caffe"` (to start
            from keras.applications ImageNet weights).
        input_shape: `(height, width, 3)`; `None` for dynamic sizes.
        dtype: dtype policy of every layer, e.g. `"mixed_bfloat16"`.
            Defaults to the global policy at construction time; saved in the
            config, so a mixed-precision model reloads as one.

    Inputs: ImageNet-normalised float images `(batch, height, width, 3)`.

    Outputs: a dict of `(batch, height, width, num_classes)` logits at input
    resolution: `"logits"` (fused, the prediction), `"pam_logits"`,
    `"cam_logits"` (the `"danet"` head only) and, with `aux_head`,
    `"aux_logits"`. Use
    `inference_model()` for a model that computes only the fused logits.

    Training: `compile()` with no arguments gives the official recipe (see
    `compile`), and `fit` takes a dataset of `(images, masks)`: integer masks
    `(batch, height, width)`, 255 = ignore, are the label of every output.

    Example:
    >>> model = DANet(num_classes=19, backbone="resnet50")
    >>> model(np.zeros((1, 64, 96, 3), "float32"))["logits"].shape
    (1, 64, 96, 19)
    >>> model.compile()  # the official loss, optimizer and mIoU
    >>> model.fit(dataset_of_images_and_masks, epochs=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        num_classes,
        backbone="resnet101",
        output_stride=8,
        multi_grid=False,
        deep_stem=False,
        aux_head=False,
        align_corners=True,
        dropout=0.1,
        synchronized_bn=False,
        attention_block_size=None,
        backbone_layout="torchvision",
        input_shape=(None, None, 3),
        dtype=None,
        head="danet",
        **kwargs,
    ):
        options = danet_options(**{name: value for name, value in locals().items()
                                   if name in OPTIONS})
        images, outputs, policy = danet_graph(options, dtype)
        with global_dtype_policy(policy):  # the model's own policy, as its layers'
            super().__init__(inputs=images, outputs=outputs, dtype=policy, **kwargs)
        self._model_options = options
        for name, value in options.items():
            setattr(self, ATTRIBUTES.get(name, name), value)
        self.image_shape = tuple(input_shape)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", *, loss_weights="auto",
                **kwargs):
        """`keras.Model.compile` whose `"auto"` arguments give the official recipe.

        Args:
            optimizer: `"auto"`: PyTorch-semantics SGD (momentum 0.9, weight
                decay 1e-4, learning rate 0.01) with poly decay (power 0.9)
                over the first `fit` call's steps, the head at 10x
                (`danet_tf.models.optimizer.official_optimizer`). Or any
                Keras optimizer.
            loss: `"auto"`: cross-entropy ignoring label 255 on every output
                (`official_losses`). Or any Keras loss argument.
            metrics: `"auto"`: mIoU of the fused logits
                (`SegmentationMetric`, its `scores()` give pixel accuracy and
                per-class IoU). Or any Keras metrics argument.
            loss_weights: `"auto"`: 1 for every main output, 0.4 for
                `aux_logits` (with `loss="auto"`; else Keras' default).
            **kwargs: passed to `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = official_optimizer()
        if loss == "auto":
            loss, weights = official_losses(tuple(self.output))
            loss_weights = weights if loss_weights == "auto" else loss_weights
        if loss_weights == "auto":
            loss_weights = None
        if metrics == "auto":
            metrics = {"logits": [SegmentationMetric(self.num_classes, name="miou")]}
        super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                        metrics=metrics, **kwargs)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`; first gives a poly schedule without a length
        (`compile()`'s default) the length of this call: epochs x steps."""
        bound = inspect.signature(keras.Model.fit).bind(self, *args, **kwargs)
        give_schedule_the_fit_length(self.optimizer, bound.arguments)
        return super().fit(*args, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(x, label_every_output(y, y_pred), y_pred, sample_weight,
                                    training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, label_every_output(y, y_pred), y_pred, sample_weight)

    def inference_model(self, fold_batch_norm=False, precision="float32"):
        """A model that returns only the fused logits `(B, H, W, num_classes)`.

        Args:
            fold_batch_norm: bool. `False` shares this model's weights.
                `True` returns a frozen copy with every BN folded into its
                conv (`danet_tf.fold_batch_norm`): same outputs in inference
                mode, less memory and time; later training of this model
                does not reach it.
            precision: `"float32"` or `"bfloat16"`. `"bfloat16"` computes in
                bfloat16 (float32 weights, the `mixed_bfloat16` policy; the
                attention's energies and softmax stay float32) on a copy of
                the weights; inputs and logits stay float32. Fast on CPUs
                with AMX and on TPUs; slower elsewhere, AVX512-BF16
                included (docs/performance.md).
        """
        model = self.with_precision(precision)
        if fold_batch_norm:
            model = fold_batch_norm_fn(model)
        logits = model.output["logits"]
        if logits.dtype != "float32":
            logits = keras.layers.Activation("linear", dtype="float32", name="float32_logits")(
                logits)
        return keras.Model(model.input, logits, name=f"{self.name}_inference")

    def with_precision(self, precision):
        """This model if it computes at `precision` (`"float32"` or
        `"bfloat16"`), else a copy with the weights that does."""
        if check_precision(precision) == self.dtype_policy.compute_dtype:
            return self
        dtype = "mixed_bfloat16" if precision == "bfloat16" else "float32"
        model = DANet.from_config({**self.get_config(), "dtype": dtype})
        model.set_weights(self.get_weights())
        return model

    # === Seams: the parts other code reads ===
    @property
    def backbone(self):
        """The dilated ResNet: a functional model giving `layer1`..`layer4`."""
        return self.get_layer("backbone")

    @property
    def head(self):
        """The segmentation head: a functional model on the layer4 features."""
        return self.get_layer("head")

    def attention_layers(self):
        """`{"pam": PositionAttention, "cam": ChannelAttention}`: the head's
        attention modules (both for `danet`, one for `pam` / `cam`, none
        for the context heads)."""
        return attention_layers(self.head)

    def attention_inputs(self, images):
        """`{"pam": ..., "cam": ...}`: the features each attention module
        reads for normalised `images` (inference mode)."""
        features = self.backbone(images, training=False)["layer4"]
        return attention_inputs(self.head, features)

    def gammas(self):
        """`{"pam": float, "cam": float}`: each attention module's γ."""
        return {kind: float(keras.ops.convert_to_numpy(layer.gamma)[0])
                for kind, layer in self.attention_layers().items()}

    def set_gammas(self, pam=None, cam=None):
        """Assigns the attention modules' γ (`None` leaves one as it is)."""
        layers = self.attention_layers()
        for kind, value in (("pam", pam), ("cam", cam)):
            if value is not None:
                if kind not in layers:
                    raise ValueError(f"This model (head {self.head_kind!r}) has no {kind} module.")
                layers[kind].gamma.assign([float(value)])

    @classmethod
    def from_preset(cls, preset, load_weights=True, **overrides):
        """A trained DANet by catalogue name or from a preset directory.

        A name (`danet_tf.models.preset_catalog`, e.g.
        `"danet_r101-d8_4xb2-80k_cityscapes-769x769"`) is downloaded,
        checked against its SHA-256 and converted on first use, then read
        from the cache (`danet_tf.models.preset_cache`; converting needs
        PyTorch). `overrides` change constructor arguments (see
        `danet_tf.models.presets.load_preset`); the preset's metadata
        (class names, palette, evaluation protocol) is
        `danet_tf.models.presets.preset_metadata(directory)`.

        Example:
        >>> model = DANet.from_preset("danet_r50-d8_4xb2-40k_cityscapes-512x1024")  # doctest: +SKIP
        """
        from danet_tf.models.presets import load_preset

        return load_preset(preset, load_weights, **overrides)

    def save_to_preset(self, directory, metadata=None):
        """Writes this model as a preset directory (config, weights and
        `metadata`, a dict of JSON values merged into `metadata.json`)."""
        from danet_tf.models.presets import save_to_preset

        return save_to_preset(self, directory, metadata)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._model_options,
                "dtype": keras.saving.serialize_keras_object(self.dtype_policy)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# The constructor's model options (all but `dtype`), saved in the config, and
# the attribute each is kept in where its name differs.
OPTIONS = tuple(inspect.signature(DANet.__init__).parameters)[1:-1]
OPTIONS = tuple(name for name in OPTIONS if name != "dtype")
ATTRIBUTES = {"backbone": "backbone_name", "head": "head_kind", "input_shape": "image_shape"}


def danet_options(num_classes, **options):
    """DANet's model options (`OPTIONS`) with their defaults, checked (an
    unknown head or backbone fails in one line) and in their saved form."""
    bound = inspect.signature(DANet.__init__).bind(None, num_classes, **options)
    bound.apply_defaults()
    options = {name: value for name, value in bound.arguments.items() if name in OPTIONS}
    head_choice(options["head"])
    if options["backbone"] not in BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(BACKBONES)}. "
                         f"Received: backbone={options['backbone']!r}")
    options["multi_grid"] = list(layer4_grid(options["multi_grid"]) or ()) or False
    options["input_shape"] = list(options["input_shape"])
    return options
