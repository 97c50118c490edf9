"""PyTorch-semantics SGD and the poly learning-rate schedule of the DANet recipe."""

import math

import keras
from keras import ops

from danet_tf import recipe


@keras.saving.register_keras_serializable(package="danet_tf")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr * (1 - step / total_steps) ** power`, after an optional linear warm-up.

    Without warm-up this is Keras' `PolynomialDecay(lr, total_steps,
    end_learning_rate=0, power=power)`; Keras has no warm-up for it (only
    `CosineDecay` has one), hence this class.

    Args:
        initial_learning_rate: float.
        total_steps: int. Steps of the whole run; `None` until known
            (`DANet.fit` sets it from the first `fit` call's length).
        power: float. Defaults to `0.9` (the official recipe).
        warmup_steps: int. Linear ramp from `lr / warmup_steps` to `lr`.
    """

    def __init__(self, initial_learning_rate, total_steps, power=recipe.POLY_POWER,
                 warmup_steps=0):
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.power = float(power)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        lr = self.initial_learning_rate * ops.ones_like(step)
        if self.total_steps is not None:
            progress = ops.minimum(step / max(self.total_steps, 1), 1.0)
            lr = lr * ops.power(1.0 - progress, self.power)
        if self.warmup_steps:
            ramp = ops.minimum((step + 1.0) / self.warmup_steps, 1.0)
            lr = lr * ramp
        return lr

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "power": self.power,
            "warmup_steps": self.warmup_steps,
        }


@keras.saving.register_keras_serializable(package="danet_tf")
class TorchSGD(keras.optimizers.Optimizer):
    """SGD exactly as `torch.optim.SGD` with momentum and weight decay.

    `g = grad + weight_decay * w; buf = momentum * buf + g; w -= lr * mult * buf`.
    Keras' own SGD folds the learning rate into the momentum buffer and its
    `weight_decay` is decoupled (not passed through momentum), which decays
    about `1 / (1 - momentum)` = 10x less than the official recipe.

    Args:
        learning_rate: float or schedule.
        momentum: float.
        l2_weight_decay: float. Coupled (PyTorch) weight decay.
        lr_multipliers: dict `{variable path prefix: multiplier}`; e.g.
            `{"head/": 10.0}` for the official 10x head learning rate.
    """

    def __init__(self, learning_rate=recipe.LEARNING_RATE, momentum=recipe.MOMENTUM,
                 l2_weight_decay=recipe.WEIGHT_DECAY,
                 lr_multipliers=None, name="torch_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = float(momentum)
        self.l2_weight_decay = float(l2_weight_decay)
        self.lr_multipliers = dict(lr_multipliers or {})

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = [self.add_variable_from_reference(v, "momentum") for v in variables]
        # Distributed updates see raw tf.Variables without `.path`: decide here.
        self._multipliers = [self.lr_multiplier(v) for v in variables]

    def lr_multiplier(self, variable):
        for prefix, multiplier in self.lr_multipliers.items():
            if variable.path.startswith(prefix):
                return multiplier
        return 1.0

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype) * self._multipliers[index]
        gradient = ops.cast(gradient, dtype)
        if self.l2_weight_decay:
            gradient = gradient + self.l2_weight_decay * variable
        buffer = self.momentums[index]
        self.assign(buffer, self.momentum * buffer + gradient)
        self.assign_sub(variable, lr * buffer)

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "l2_weight_decay": self.l2_weight_decay,
            "lr_multipliers": self.lr_multipliers,
        }


# Parameters whose variable paths start so learn at the head's rate.
HEAD_PREFIXES = ("head/", "aux_")


def official_optimizer(learning_rate=recipe.LEARNING_RATE, total_steps=None,
                       power=recipe.POLY_POWER, warmup_steps=0, momentum=recipe.MOMENTUM,
                       weight_decay=recipe.WEIGHT_DECAY,
                       head_lr_multiplier=recipe.HEAD_LR_MULTIPLIER):
    """The official recipe's optimizer: PyTorch-semantics SGD (momentum 0.9,
    coupled weight decay 1e-4) with poly decay, the head at 10x the backbone's
    learning rate. `DANet.compile()` and `training/train.py` both use it."""
    schedule = PolyDecay(learning_rate, total_steps, power, warmup_steps)
    multipliers = dict.fromkeys(HEAD_PREFIXES, head_lr_multiplier)
    return TorchSGD(schedule, momentum, weight_decay, lr_multipliers=multipliers)


def give_schedule_the_fit_length(optimizer, fit_arguments):
    """Gives `optimizer`'s `PolyDecay` without a length (`DANet.compile()`'s
    default) the length of a `fit` call: epochs x steps per epoch."""
    # Keras keeps the schedule object only in this attribute (the public
    # `learning_rate` is its current value).
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, PolyDecay) and schedule.total_steps is None:
        steps = steps_per_epoch(fit_arguments)
        if steps:
            schedule.total_steps = steps * fit_arguments.get("epochs", 1)


def steps_per_epoch(fit_arguments):
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
