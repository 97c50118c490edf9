"""The model core on TensorFlow, JAX and PyTorch.

The suite runs on TensorFlow; these tests start fresh processes with
`KERAS_BACKEND=jax` and `KERAS_BACKEND=torch` (Keras picks its backend once,
at import): the `tests/models` suite there (all but the tests marked
`backend_independent`, whose result is the same Python on every backend),
and, per backend, a core that never imports TensorFlow and gives the same
logits from the same weights as TensorFlow does.
"""

import glob
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import relative_error

from danet_tf import DANet

TESTS = os.path.dirname(os.path.abspath(__file__))
OTHER_BACKENDS = ("jax", "torch")
# The JAX run of tests/models is the suite's longest process (eager JAX
# compiles each op for each shape): two halves, so that both pytest-xdist
# workers can take one. The first half is named; the second is every other
# file, so that a new test file is never left out.
FIRST_HALF = ("test_batch_norm_folding.py", "test_danet.py", "test_dilated_resnet.py",
              "test_resize.py")
PARTS = {"jax": ("first", "second"), "torch": ("all",)}
pytestmark = pytest.mark.slow


def _python(code, backend, timeout=900):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=timeout)


def model_suite_files(part):
    """The `tests/models` files of one part of a backend's run."""
    files = sorted(glob.glob(os.path.join(TESTS, "models", "test_*.py")))
    first = [f for f in files if os.path.basename(f) in FIRST_HALF]
    return {"first": first, "second": [f for f in files if f not in first], "all": files}[part]


def test_the_halves_cover_tests_models():
    first, second = model_suite_files("first"), model_suite_files("second")
    assert len(first) == len(FIRST_HALF) and not set(first) & set(second)
    assert sorted(first + second) == model_suite_files("all")


@pytest.mark.lane("memory")
@pytest.mark.parametrize("backend, part", [(b, p) for b in OTHER_BACKENDS for p in PARTS[b]])
def test_model_suite_passes_on_backend(backend, part):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-m", "not tensorflow and not backend_independent", *model_suite_files(part)],
        capture_output=True, text=True, timeout=1800,
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


@pytest.fixture(scope="module")
def danet50_reference(tmp_path_factory):
    """DANet-50 with non-zero gammas, random BN statistics: its weights file,
    a non-square input and the TensorFlow logits."""
    root = tmp_path_factory.mktemp("danet50")
    rng = np.random.default_rng(0)
    model = DANet(num_classes=5, backbone="resnet50")
    for layer in model.get_layer("backbone").layers + model.get_layer("head").layers:
        for variable in layer.non_trainable_weights:
            if variable.path.endswith("moving_variance"):
                variable.assign(rng.uniform(0.5, 2.0, variable.shape))
            elif variable.path.endswith("moving_mean"):
                variable.assign(rng.normal(0.0, 0.2, variable.shape))
    model.set_gammas(pam=0.8, cam=-0.6)
    images = rng.normal(size=(1, 72, 40, 3)).astype("float32")
    model.save_weights(root / "danet50.weights.h5")
    np.save(root / "images.npy", images)
    expected = {k: np.asarray(v) for k, v in model(images, training=False).items()}
    return root, expected


def _core_without_tensorflow(folded_path, reference, out):
    """The child of the test below: with `import tensorflow` failing, a
    ResNet-18 DANet (chunked attention) runs, folds, saves to `folded_path` and
    reloads (it prints `RELOADED <max error> <max |logit|>`); DANet-50 from
    `reference`'s weights writes its three logits on its images to `out`."""
    return f"""
        import sys
        sys.modules["tensorflow"] = None  # `import tensorflow` now raises ImportError
        import keras
        import numpy as np
        import danet_tf
        from danet_tf.models import weights, preprocessing, batch_norm_folding
        model = danet_tf.DANet(3, backbone="resnet18", attention_block_size=8)
        x = preprocessing.normalize(np.zeros((1, 40, 48, 3), "uint8"))
        logits = keras.ops.convert_to_numpy(model(x)["logits"])
        folded = danet_tf.fold_batch_norm(model)
        folded.save({str(folded_path)!r})
        reloaded = keras.models.load_model({str(folded_path)!r})
        error = np.max(np.abs(keras.ops.convert_to_numpy(reloaded(x)["logits"]) - logits))
        print("RELOADED", float(error), float(np.max(np.abs(logits))))

        model = danet_tf.DANet(num_classes=5, backbone="resnet50")
        model.load_weights({str(reference / "danet50.weights.h5")!r})
        outputs = model(np.load({str(reference / "images.npy")!r}), training=False)
        np.savez({str(out)!r}, **{{k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}})
        """


@pytest.mark.lane("processes")
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_the_core_runs_without_tensorflow_and_gives_its_logits(backend, danet50_reference,
                                                               tmp_path):
    """As on a GPU machine with JAX and PyTorch but no TensorFlow: `import
    tensorflow` fails, and the core builds, runs (chunked attention too),
    folds, saves and reloads; and DANet-50 from TensorFlow's weights gives
    TensorFlow's three logits. (With TensorFlow installed, Keras' own
    serialisation imports it lazily; the core itself never does.)"""
    root, expected = danet50_reference
    out = tmp_path / "logits.npz"
    result = _python(_core_without_tensorflow(tmp_path / "folded.keras", root, out), backend)
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = next(line for line in result.stdout.splitlines() if line.startswith("RELOADED"))
    error, scale = map(float, reloaded.split()[1:])
    assert scale > 0 and error <= 1e-4 * max(1.0, scale), (backend, error, scale)
    actual = np.load(out)
    assert sorted(actual.files) == sorted(expected)
    for key, value in expected.items():
        assert relative_error(actual[key], value) <= 1e-4, (backend, key)
