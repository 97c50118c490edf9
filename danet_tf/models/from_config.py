"""A model from an experiment config: the one mapping of `ModelConfig` to `DANet`."""

import dataclasses

from danet_tf.models.danet import DANet


def build_model(config):
    """An uncompiled `DANet` from `config.model` and `config.data.num_classes`
    (`model.backbone_weights` and `model.init_from` are applied by training,
    not here)."""
    model_config = dataclasses.asdict(config.model)
    model_config.pop("backbone_weights")
    model_config.pop("init_from")
    return DANet(num_classes=config.data.num_classes, **model_config)
