"""The DANet segmentation model: dilated ResNet + dual attention head."""

import contextlib
import inspect
import math

import keras

from danet_tf.models.batch_norm_folding import fold_batch_norm as fold_batch_norm_fn
from danet_tf.models.dilated_resnet import BACKBONES, DilatedResNet
from danet_tf.models.head import fcn_aux_head, head_kind, head_output_names, segmentation_head
from danet_tf.models.losses import official_losses
from danet_tf.models.metrics import SegmentationMetric
from danet_tf.models.optimizer import PolyDecay, official_optimizer
from danet_tf.models.resize import ResizeLike

PRECISIONS = ("float32", "bfloat16")


@contextlib.contextmanager
def _global_dtype_policy(policy):
    """Builds the sublayers under `policy` (they read the global policy)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


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
        head_kind(head)  # refuses an unknown head in one line
        if backbone not in BACKBONES:
            raise ValueError(
                f"backbone must be one of {sorted(BACKBONES)}. Received: backbone={backbone!r}"
            )
        policy = (keras.dtype_policies.get(dtype) if dtype is not None
                  else keras.config.dtype_policy())
        with _global_dtype_policy(policy):
            self._build_graph(num_classes, backbone, output_stride, multi_grid, deep_stem,
                              aux_head, align_corners, dropout, synchronized_bn,
                              attention_block_size, backbone_layout, input_shape, head,
                              dtype=policy, **kwargs)

    def _build_graph(self, num_classes, backbone, output_stride, multi_grid, deep_stem, aux_head,
                     align_corners, dropout, synchronized_bn, attention_block_size,
                     backbone_layout, input_shape, head_kind, **kwargs):
        if multi_grid is True:
            grid = (1, 2, 4)
        else:
            grid = tuple(multi_grid) if multi_grid else None

        # === Layers ===
        resnet = DilatedResNet(
            BACKBONES[backbone], output_stride, multi_grid=grid,
            deep_stem=deep_stem, synchronized_bn=synchronized_bn,
            input_shape=input_shape, layout=backbone_layout, name="backbone",
        )
        head = segmentation_head(
            head_kind, resnet.output["layer4"].shape[-1], num_classes, dropout=dropout,
            synchronized_bn=synchronized_bn, attention_block_size=attention_block_size,
            align_corners=align_corners, name="head",
        )

        # === Functional Model ===
        images = keras.Input(input_shape, name="images")
        features = resnet(images)
        head_logits = keras.tree.flatten(head(features["layer4"]))
        outputs = {
            key: ResizeLike(align_corners, name=key)([logits, images])
            for key, logits in zip(head_output_names(head_kind), head_logits)
        }
        if aux_head:
            aux = fcn_aux_head(features["layer3"], num_classes, synchronized_bn, dropout=dropout)
            outputs["aux_logits"] = ResizeLike(align_corners, name="aux_logits")([aux, images])
        super().__init__(inputs=images, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.backbone_name = backbone
        self.output_stride = output_stride
        self.multi_grid = list(grid) if grid else False
        self.deep_stem = deep_stem
        self.aux_head = aux_head
        self.align_corners = align_corners
        self.dropout = dropout
        self.synchronized_bn = synchronized_bn
        self.attention_block_size = attention_block_size
        self.backbone_layout = backbone_layout
        self.image_shape = tuple(input_shape)
        self.head_kind = head_kind

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
        schedule = getattr(self.optimizer, "_learning_rate", None)
        if isinstance(schedule, PolyDecay) and schedule.total_steps is None:
            steps = _steps_per_epoch(bound.arguments)
            if steps:
                schedule.total_steps = steps * bound.arguments.get("epochs", 1)
        return super().fit(*args, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(x, _label_every_output(y, y_pred), y_pred, sample_weight,
                                    training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, _label_every_output(y, y_pred), y_pred, sample_weight)

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
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}. Received: {precision!r}")
        if self.dtype_policy.compute_dtype == precision:
            return self
        dtype = "mixed_bfloat16" if precision == "bfloat16" else "float32"
        model = DANet.from_config({**self.get_config(), "dtype": dtype})
        model.set_weights(self.get_weights())
        return model

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
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            "backbone": self.backbone_name,
            "output_stride": self.output_stride,
            "multi_grid": self.multi_grid,
            "deep_stem": self.deep_stem,
            "aux_head": self.aux_head,
            "align_corners": self.align_corners,
            "dropout": self.dropout,
            "synchronized_bn": self.synchronized_bn,
            "attention_block_size": self.attention_block_size,
            "backbone_layout": self.backbone_layout,
            "input_shape": list(self.image_shape),
            "head": self.head_kind,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _label_every_output(y, y_pred):
    """One mask for every output of a multi-output model, when given one."""
    if isinstance(y_pred, dict) and y is not None and not isinstance(y, dict):
        return dict.fromkeys(y_pred, y)
    return y


def _steps_per_epoch(fit_arguments):
    """Steps of one `fit` epoch: `steps_per_epoch`, else the data's length
    (a finite tf.data dataset, a `PyDataset` or a DataLoader, or arrays and
    `batch_size`); `None` when unknown (an endless dataset)."""
    if fit_arguments.get("steps_per_epoch"):
        return int(fit_arguments["steps_per_epoch"])
    x = fit_arguments.get("x")
    if hasattr(x, "cardinality"):
        count = int(x.cardinality())
        return count if count > 0 else None
    if hasattr(x, "__len__") and hasattr(x, "shape"):
        return math.ceil(len(x) / (fit_arguments.get("batch_size") or 32))
    if hasattr(x, "__len__") and not isinstance(x, (dict, list, tuple)):
        return len(x)
    return None
