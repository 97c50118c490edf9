"""The config's schema, checked once, before any file is read, moved or
written, by every command that takes a config.

Each field with a closed set of values is checked against the registry that
uses it (heads, backbones, data sources, optimizers, export formats,
`on_bad_example`), and the schedule's numbers against their ranges; the
cross-field checks are `danet_tf.config.check_config`'s. The first problem
is raised as a one-line `ValueError` naming the field and what was expected.
"""

from danet_tf.config import check_config
from danet_tf.data.sources import ON_BAD_EXAMPLE, SOURCES
from danet_tf.deploy.layout import EXPORT_FORMATS
from danet_tf.models.dilated_resnet import BACKBONES, LAYOUTS
from danet_tf.models.head import HEADS, head_attention_modules
from danet_tf.models.losses import MAIN_LOSSES
from danet_tf.train.task import OPTIMIZERS


def _one_of(field, value, choices):
    if value not in choices:
        raise ValueError(f"{field} must be one of {', '.join(map(str, choices))}. "
                         f"Received: {value!r}")


def _at_least(field, value, low):
    if value < low:
        raise ValueError(f"{field} must be at least {low}. Received: {value!r}")


def validate_config(config):
    """Checks `config` against the schema; returns it."""
    d, m, t = config.data, config.model, config.train
    _one_of("data.source", d.source, tuple(SOURCES))
    _one_of("data.on_bad_example", d.on_bad_example, ON_BAD_EXAMPLE)
    _one_of("model.head", m.head, tuple(HEADS))
    _one_of("model.backbone", m.backbone, tuple(BACKBONES))
    _one_of("model.backbone_layout", m.backbone_layout, LAYOUTS)
    _one_of("model.output_stride", m.output_stride, (8, 16, 32))
    _one_of("train.optimizer", t.optimizer, OPTIMIZERS)
    _one_of("train.main_losses", t.main_losses, MAIN_LOSSES)
    for fmt in t.export_formats:
        _one_of("train.export_formats", fmt, EXPORT_FORMATS)
    modules = head_attention_modules(m.head)
    if t.frozen_gammas and not modules:
        raise ValueError(f"train.frozen_gammas must be empty: model.head={m.head} has no "
                         f"attention module. Received: {list(t.frozen_gammas)!r}")
    for kind in t.frozen_gammas:
        _one_of("train.frozen_gammas", kind, modules)
    for field, value, low in (("data.num_classes", d.num_classes, 1),
                              ("data.batch_size", d.batch_size, 1),
                              ("data.eval_batch_size", d.eval_batch_size, 1),
                              ("train.epochs", t.epochs, 1),
                              ("train.steps_per_epoch", t.steps_per_epoch, 1),
                              ("train.eval_every_epochs", t.eval_every_epochs, 1),
                              ("train.warmup_steps", t.warmup_steps, 0),
                              ("train.learning_rate", t.learning_rate, 0.0),
                              ("train.weight_decay", t.weight_decay, 0.0)):
        _at_least(field, value, low)
    return check_config(config)
