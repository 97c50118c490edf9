"""Distribution for training: tf.distribute strategies on TensorFlow,
`keras.distribution.DataParallel` on JAX, and the Keras 3.15 multi-worker fix.

`make_strategy("mirrored")` on a machine without GPUs runs on the CPU (one
replica); `"multiworker"` reads the cluster from `TF_CONFIG`. On JAX,
`setup_distribution` spreads each batch over all local devices (GPUs, TPU
cores, or host devices made with
`XLA_FLAGS=--xla_force_host_platform_device_count=N`).

Keras 3.15's `fit` breaks under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585) in two places of
`keras/src/backend/tensorflow/trainer.py`:
1. `_maybe_symbolic_build` reduces the first data batch with
   `strategy.reduce("MEAN", ...)`, which collective strategies refuse for
   `PerReplica` integer batches ("unsupported type PerReplica");
2. `reduce_per_replica` reduces scalar step outputs with
   `strategy.reduce("MEAN", v, axis=0)` ("Invalid reduction dimension 0").
`patch_keras_for_multiworker()` replaces both with versions that take the
local replica's batch for the symbolic build (only shapes and dtypes are
used) and reduce scalars with `axis=None`. It is applied only when the
multi-worker strategy is created, only on the Keras versions known to need
it (`KERAS_VERSIONS_NEEDING_PATCH`), and only after checking that the two
functions still have the signatures it was written against; otherwise it
stops with a message saying what to check. `tests/train/test_trainer.py`
runs two workers without the patch and fails once Keras fixes the bug.
"""

import contextlib
import inspect
import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("auto", "mirrored", "multiworker", "tpu", "onedevice")
# keras-team/keras#20585 is open in these versions (checked by running two
# workers without the patch, tests/train/test_trainer.py).
KERAS_VERSIONS_NEEDING_PATCH = ("3.15.1",)
# Set to 1 to run without the patch (to check whether Keras still needs it).
NO_PATCH_ENV = "DANET_NO_KERAS_MULTIWORKER_PATCH"


def _patch_reduce_per_replica(trainer_module):
    original = trainer_module.reduce_per_replica
    if getattr(original, "_danet_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if trainer_module._collective_all_reduce_multi_worker(strategy) and reduction in (
            "auto", "mean"
        ):
            def reduce_mean(v):
                axis = 0 if v.shape.rank else None
                return strategy.reduce("MEAN", v, axis=axis)

            return tf.nest.map_structure(reduce_mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica._danet_patched = True
    trainer_module.reduce_per_replica = reduce_per_replica


def _patch_symbolic_build(trainer_cls):
    original = trainer_cls._maybe_symbolic_build
    if getattr(original, "_danet_patched", False):
        return

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None or iterator is None or not isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        ):
            return original(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tf.nest.map_structure(
                lambda x: strategy.experimental_local_results(x)[0]
                if isinstance(x, tf.distribute.DistributedValues) else x,
                batch,
            )
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    _maybe_symbolic_build._danet_patched = True
    trainer_cls._maybe_symbolic_build = _maybe_symbolic_build


def _expect_parameters(function, expected):
    found = tuple(inspect.signature(function).parameters)
    if found != expected:
        raise RuntimeError(
            f"danet_tf's fix for keras-team/keras#20585 patches {function.__qualname__}{expected}, "
            f"but Keras {keras.__version__} has {function.__qualname__}{found}. Check whether "
            "the issue is fixed in this Keras version, then update danet_tf/train/distribute.py."
        )


def patch_keras_for_multiworker():
    """Applies the two fixes described in the module docstring (idempotent).

    Raises:
        RuntimeError: Keras is not a version known to need the patch, or the
            patched functions changed shape.
    """
    if os.environ.get(NO_PATCH_ENV) == "1":
        return
    if keras.__version__ not in KERAS_VERSIONS_NEEDING_PATCH:
        raise RuntimeError(
            f"--strategy multiworker: danet_tf works around keras-team/keras#20585 in Keras "
            f"{', '.join(KERAS_VERSIONS_NEEDING_PATCH)}, and Keras {keras.__version__} is "
            f"installed. Check whether that version still needs it (run with {NO_PATCH_ENV}=1) "
            "and update KERAS_VERSIONS_NEEDING_PATCH in danet_tf/train/distribute.py, or "
            "install a listed Keras version."
        )
    from keras.src.backend.tensorflow import trainer as trainer_module

    _expect_parameters(trainer_module.reduce_per_replica, ("values", "strategy", "reduction"))
    _expect_parameters(trainer_module.TensorFlowTrainer._maybe_symbolic_build,
                       ("self", "iterator", "data_batch"))
    _patch_reduce_per_replica(trainer_module)
    _patch_symbolic_build(trainer_module.TensorFlowTrainer)


def make_strategy(name="auto"):
    """Creates a `tf.distribute.Strategy` by name.

    Args:
        name: `auto` (Mirrored over all GPUs when there are any, else the
            default strategy), `mirrored` (all GPUs, or the logical CPU
            devices when there are none), `multiworker` (cluster from `TF_CONFIG`), `tpu` (TPU
            cluster resolver; needs a TPU host), `onedevice` (first GPU or the
            CPU).
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}. Received: {name!r}")
    if name == "multiworker":
        # Before anything initialises the TF runtime: collective ops must be
        # configured at program start-up.
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multiworker needs the TF_CONFIG environment variable.")
        patch_keras_for_multiworker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if name == "mirrored":
        # Without GPUs: every logical CPU device (one, unless configured).
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def is_chief(strategy=None):
    """True on the worker that writes checkpoints, logs and exports."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = cluster.get("task", {})
    if not task or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    return task.get("type") == "chief" or (
        task.get("type") == "worker" and task.get("index") == 0
        and "chief" not in cluster.get("cluster", {})
    )


def worker_id():
    return json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", 0)


class Distribution:
    """What the trainer needs to know of how it is distributed.

    Attributes:
        scope: a context manager to build and compile the model in.
        strategy: the `tf.distribute.Strategy` (TensorFlow) or `None`.
        description: one line, e.g. `"mirrored, 2 replicas: /cpu:0, /cpu:1"`.
        is_chief: bool. This process writes checkpoints, logs and exports.
        num_replicas: int. Devices each global batch is split over.
    """

    def __init__(self, scope, strategy, description, is_chief=True, num_replicas=1):
        self.scope = scope
        self.num_replicas = num_replicas
        self.strategy = strategy
        self.description = description
        self.is_chief = is_chief


def setup_distribution(name="auto"):
    """A `Distribution` for `--strategy name` on the current Keras backend.

    TensorFlow: `make_strategy(name)`. JAX: `auto` and `mirrored` use
    `keras.distribution.DataParallel` over all local devices when there are
    several (`onedevice`: the first device); multi-worker and TPU-pod
    training there is `keras.distribution.initialize()`'s business and is
    not wired here. Other backends train on one device.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        strategy = make_strategy(name)
        try:
            devices = list(strategy.extended.worker_devices)
            description = (f"{name}: {type(strategy).__name__}, "
                           f"{strategy.num_replicas_in_sync} replica(s) on {', '.join(devices)}")
        except RuntimeError:  # the default strategy
            device = (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices())[0]
            description = f"{name}: no tf.distribute strategy, one device ({device.name})"
        return Distribution(strategy.scope(), strategy, description, is_chief(strategy),
                            strategy.num_replicas_in_sync)
    if name not in ("auto", "mirrored", "onedevice"):
        raise ValueError(
            f"--strategy {name} needs the TensorFlow backend; on {backend} use auto, mirrored "
            "or onedevice."
        )
    devices = keras.distribution.list_devices()
    if backend == "jax" and name != "onedevice" and len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        description = f"{name} (keras.distribution.DataParallel), {len(devices)} devices: "
        return Distribution(contextlib.nullcontext(), None, description + ", ".join(devices),
                            num_replicas=len(devices))
    return Distribution(contextlib.nullcontext(), None, f"{name}, one device: {devices[0]}")
