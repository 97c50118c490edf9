import atexit
import ctypes
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Eager JAX compiles every op for every shape it meets (a DANet-18 forward: ~130
# compilations, ~5 s). The JAX processes of one session (the other-backend
# suite, the training runs) and its test modules after each cache clearing
# load them from one cache directory instead. A fresh, empty directory per
# session (kept when set: a subprocess of this session), so that a measured
# run is always the cold one.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="danet-tests-jax-cache-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# XLA's LLVM back end at -O0 in the test processes: most programs of a test
# run once, and compiling them is what takes the time (a DANet-18 build on
# JAX: 7.1 s -> 3.2 s, its first forward 5.8 s -> 4.1 s, back to back on the
# 2-core Xeon development machine, avx512_bf16 + amx_bf16; the same HLO
# optimisations, IEEE arithmetic either way). Subprocesses inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(
        [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]).strip()

import keras
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    np.random.seed(0)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(autouse=True, scope="module")
def _free_memory_between_modules():
    """Models of one test module are not kept alive (or cached by Keras) while
    the next runs: keeps the suite's peak memory down."""
    yield
    if keras.backend.backend() == "jax":
        import jax

        jax.clear_caches()  # compiled executables of every op and shape seen so far
    keras.backend.clear_session()  # and a garbage collection (`free_memory=True`)
    _return_free_memory_to_the_system()


def _return_free_memory_to_the_system():
    """glibc keeps freed heap pages mapped; `malloc_trim` hands them back, so
    the process does not carry the largest earlier module's peak along."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


# The suite runs on two pytest-xdist workers (`-n 2 --dist loadscope`, the
# README's command), scheduled by `LaneScheduling` below. The tests that
# start the suite's large processes are in two lanes, each run one after
# another on one worker and handed out first, so that at most two such
# processes are alive at once: `memory` holds the largest (the other-backend
# runs of tests/models, the ONNX conversion, the two-worker training runs),
# `processes` the other training and backend processes. Every other test
# goes with its module (module fixtures are built once), and the modules
# fill both workers around the lanes, those with `slow` tests first.
# (pytest-xdist 3.8's own `xdist_group` marker does nothing under pytest
# 9.2: it renames `item._nodeid`, which pytest no longer reads.) The lanes
# are node id prefixes, as the scheduler sees only node ids:
LANES = {
    "memory": (
        "tests/test_backends.py::test_model_suite_passes_on_backend[",
        "tests/deploy/test_export.py::test_onnx_matches_keras",
        "tests/train/test_trainer.py::test_two_multiworker_processes_reach_identical_weights",
        "tests/train/test_trainer.py::test_keras_still_needs_the_multiworker_patch",
    ),
    "processes": (
        "tests/cli/test_folder_recipe.py::",
        "tests/test_backends.py::test_the_core_runs_without_tensorflow_and_gives_its_logits[",
        "tests/train/test_trainer.py::test_mirrored_fit_on_two_logical_cpus_resumes_after_a_kill",
        "tests/train/test_trainer.py::test_jax_data_parallel_on_two_devices_equals_one_device",
        "tests/cli/test_run_life_cycle.py::test_ctrl_c_says_where_the_checkpoint_is_and_the_same_command_resumes",
    ),
}


def _module(nodeid):
    return nodeid.split("::")[0]


def lane_of(nodeid):
    """The lane of a test's node id, or `None`."""
    return next((lane for lane, prefixes in LANES.items()
                 if nodeid.startswith(prefixes)), None)


def pytest_collection_modifyitems(config, items):
    """The lanes' tests first, then the modules with `slow` tests, then the
    rest (stable otherwise: quick modules last even out the two workers'
    ends); and `@pytest.mark.tensorflow` tests, which need Keras on
    TensorFlow (tf.function, XLA via tf, SavedModel), are skipped when the
    suite runs on another backend."""
    slow = {_module(item.nodeid) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (lane_of(item.nodeid) is None, _module(item.nodeid) not in slow))
    if keras.backend.backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs the TensorFlow backend, not {keras.backend.backend()}")
    for item in items:
        if "tensorflow" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    """A worker that crashes ends the run (naming the test it crashed on)
    unless `--max-worker-restart` says otherwise: pytest-xdist 3.8's
    loadscope puts a crashed worker's finished modules back in its queue as
    empty work units, which no worker ever completes, so a run that replaced
    a worker waits forever (pytest-xdist issues #1323, #1378)."""
    if getattr(config.option, "maxworkerrestart", "") is None:
        config.option.maxworkerrestart = "0"


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: absent under -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope` with the lanes as two more scopes.

    pytest-xdist's public hook makes the scheduler, but which tests share a
    worker is decided by `LoadScopeScheduling._split_scope`, a private method
    that no option or hook exposes (its public grouping, `xdist_group`, is
    the broken marker above). So this one override is guarded: if a
    pytest-xdist release drops or changes the method, the suite warns and
    falls back to plain `loadscope` (slower, same results).
    """
    if config.getvalue("dist") != "loadscope":
        return None
    import inspect
    import warnings

    from xdist.scheduler import LoadScopeScheduling

    method = getattr(LoadScopeScheduling, "_split_scope", None)
    if method is None or list(inspect.signature(method).parameters) != ["self", "nodeid"]:
        warnings.warn("pytest-xdist changed LoadScopeScheduling._split_scope: the test lanes "
                      "are off (tests/conftest.py)", stacklevel=1)
        return None

    class LaneScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return lane_of(nodeid) or _module(nodeid)

    config.option.loadscopereorder = False  # collection order: the lanes first
    return LaneScheduling(config, log)


def to_numpy(x):
    """A tensor or variable of any backend as a NumPy array."""
    return x if isinstance(x, np.ndarray) else keras.ops.convert_to_numpy(x)


def relative_error(actual, expected):
    """max |actual - expected| / max |expected| (float64)."""
    actual = to_numpy(actual).astype(np.float64)
    expected = to_numpy(expected).astype(np.float64)
    return np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30)
