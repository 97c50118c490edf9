import atexit
import ctypes
import json
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
# `processes` the other training and backend processes. A test joins a lane
# by its marker, `@pytest.mark.lane("memory")` (a module's `pytestmark` for
# all its tests). Every other test goes with its module (module fixtures are
# built once), and the modules fill both workers around the lanes, those
# with `slow` tests first. (pytest-xdist 3.8's own `xdist_group` marker does
# nothing under pytest 9.2: it renames `item._nodeid`, which pytest no longer
# reads.)
LANES = ("memory", "processes")
# The scheduler runs in the controller, which collects no tests and sees
# only node ids: each worker writes the lanes of its collection, `{node id:
# lane}`, as `<workerid>.json` into a directory the controller names in its
# `workerinput`, before it reports its collection.
LANE_DIRECTORY = "danet_lane_directory"
_lane_directory = pytest.StashKey[str]()


def _module(nodeid):
    return nodeid.split("::")[0]


def lane_of(item):
    """The lane of a collected test, from its `lane` marker, or `None`."""
    marker = item.get_closest_marker("lane")
    if marker is None:
        return None
    if marker.args not in [(lane,) for lane in LANES] or marker.kwargs:
        raise pytest.UsageError(f"{item.nodeid}: the lane marker takes one of {LANES}, "
                                f"not {marker.args} {marker.kwargs}")
    return marker.args[0]


def lanes_by_nodeid(items):
    """`{node id: lane}` of the collected tests that are in a lane."""
    return {item.nodeid: lane for item in items if (lane := lane_of(item))}


def write_lanes(directory, workerid, lanes):
    """Writes a worker's `{node id: lane}` for the controller's scheduler."""
    path = os.path.join(directory, f"{workerid}.json")
    with open(f"{path}.part", "w") as f:
        json.dump(lanes, f)
    os.replace(f"{path}.part", path)


def read_lanes(directory):
    """The `{node id: lane}` the workers wrote to `directory` (all alike)."""
    lanes = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as f:
                lanes.update(json.load(f))
    return lanes


def scope_of(nodeid, lanes):
    """A test's work unit under `LaneScheduling`: its lane, else its module."""
    return lanes.get(nodeid) or _module(nodeid)


def pytest_collection_modifyitems(config, items):
    """The lanes' tests first, then the modules with `slow` tests, then the
    rest (stable otherwise: quick modules last even out the two workers'
    ends), and a worker writes the lanes for the scheduler; and
    `@pytest.mark.tensorflow` tests, which need Keras on TensorFlow
    (tf.function, XLA via tf, SavedModel), are skipped when the suite runs on
    another backend."""
    lanes = lanes_by_nodeid(items)
    slow = {_module(item.nodeid) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.nodeid not in lanes, _module(item.nodeid) not in slow))
    workerinput = getattr(config, "workerinput", {})
    if LANE_DIRECTORY in workerinput:
        write_lanes(workerinput[LANE_DIRECTORY], workerinput["workerid"], lanes)
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
        lanes = None

        def _split_scope(self, nodeid):
            if self.lanes is None:  # first called once every worker has reported its collection
                directory = config.stash.get(_lane_directory, None)
                self.lanes = read_lanes(directory) if directory else {}
            return scope_of(nodeid, self.lanes)

    config.option.loadscopereorder = False  # collection order: the lanes first
    return LaneScheduling(config, log)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, in the controller
def pytest_configure_node(node):
    """Names to a worker the directory it writes its lanes to (`LANE_DIRECTORY`)."""
    config = node.config
    if config.getvalue("dist") != "loadscope":
        return
    if _lane_directory not in config.stash:
        config.stash[_lane_directory] = tempfile.mkdtemp(prefix="danet-test-lanes-")
    node.workerinput[LANE_DIRECTORY] = config.stash[_lane_directory]


def pytest_unconfigure(config):
    if _lane_directory in config.stash:
        shutil.rmtree(config.stash[_lane_directory], ignore_errors=True)


def to_numpy(x):
    """A tensor or variable of any backend as a NumPy array."""
    return x if isinstance(x, np.ndarray) else keras.ops.convert_to_numpy(x)


def relative_error(actual, expected):
    """max |actual - expected| / max |expected| (float64)."""
    actual = to_numpy(actual).astype(np.float64)
    expected = to_numpy(expected).astype(np.float64)
    return np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30)
