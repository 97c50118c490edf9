import atexit
import ctypes
import gc
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
    keras.backend.clear_session()
    if keras.backend.backend() == "jax":
        import jax

        jax.clear_caches()  # compiled executables of every op and shape seen so far
    gc.collect()
    _return_free_memory_to_the_system()


def _return_free_memory_to_the_system():
    """glibc keeps freed heap pages mapped; `malloc_trim` hands them back, so
    the process does not carry the largest earlier module's peak along."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


# Tests that start large processes (other backends, training runs, exports)
# carry `@pytest.mark.xdist_group("processes")`: under the optional
# `-n 2 --dist loadgroup` they run one after another on one worker, so that
# two of them never add up their peak memory.


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.tensorflow` tests need Keras on TensorFlow (tf.function,
    XLA via tf, SavedModel): skipped when the suite runs on another backend."""
    if keras.backend.backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs the TensorFlow backend, not {keras.backend.backend()}")
    for item in items:
        if "tensorflow" in item.keywords:
            item.add_marker(skip)


def to_numpy(x):
    """A tensor or variable of any backend as a NumPy array."""
    return x if isinstance(x, np.ndarray) else keras.ops.convert_to_numpy(x)


def relative_error(actual, expected):
    """max |actual - expected| / max |expected| (float64)."""
    actual = to_numpy(actual).astype(np.float64)
    expected = to_numpy(expected).astype(np.float64)
    return np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30)
