"""The model core on TensorFlow, JAX and PyTorch.

The suite runs on TensorFlow; these tests start fresh processes with
`KERAS_BACKEND=jax` and `KERAS_BACKEND=torch` (Keras picks its backend once,
at import): the whole `tests/models` suite there, the same logits from the
same weights on all three backends, and a core that never imports
TensorFlow.
"""

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
# The fresh processes here are large: `processes` tests run one after another
# on one pytest-xdist worker (see conftest.py).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("processes")]


def _python(code, backend, timeout=900):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_model_suite_passes_on_backend(backend):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not tensorflow",
         os.path.join(TESTS, "models")],
        capture_output=True, text=True, timeout=1800,
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_the_core_runs_without_tensorflow(backend, tmp_path):
    """As on a GPU machine with JAX and PyTorch but no TensorFlow: `import
    tensorflow` fails, and the core builds, runs (chunked attention too),
    folds, saves and reloads. (With TensorFlow installed, Keras' own
    serialisation imports it lazily; the core itself never does.)"""
    result = _python(
        f"""
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
        folded.save({str(tmp_path / "folded.keras")!r})
        reloaded = keras.models.load_model({str(tmp_path / "folded.keras")!r})
        error = np.max(np.abs(keras.ops.convert_to_numpy(reloaded(x)["logits"]) - logits))
        print("OK", float(error) < 1e-4 * max(1.0, float(np.max(np.abs(logits)))))
        """,
        backend,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK True" in result.stdout


def test_same_logits_on_tensorflow_jax_and_torch(tmp_path):
    """DANet-50 with non-zero gammas, random BN statistics, a non-square input."""
    rng = np.random.default_rng(0)
    model = DANet(num_classes=5, backbone="resnet50")
    for layer in model.get_layer("backbone").layers + model.get_layer("head").layers:
        for variable in layer.non_trainable_weights:
            if variable.path.endswith("moving_variance"):
                variable.assign(rng.uniform(0.5, 2.0, variable.shape))
            elif variable.path.endswith("moving_mean"):
                variable.assign(rng.normal(0.0, 0.2, variable.shape))
    model.get_layer("head").get_layer("sa").gamma.assign([0.8])
    model.get_layer("head").get_layer("sc").gamma.assign([-0.6])
    images = rng.normal(size=(1, 72, 40, 3)).astype("float32")
    weights = str(tmp_path / "danet50.weights.h5")
    model.save_weights(weights)
    np.save(tmp_path / "images.npy", images)
    expected = {k: np.asarray(v) for k, v in model(images, training=False).items()}
    for backend in OTHER_BACKENDS:
        out = tmp_path / f"{backend}.npz"
        result = _python(
            f"""
            import keras, numpy as np
            from danet_tf import DANet
            model = DANet(num_classes=5, backbone="resnet50")
            model.load_weights({weights!r})
            outputs = model(np.load({str(tmp_path / "images.npy")!r}), training=False)
            np.savez({str(out)!r},
                     **{{k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}})
            """,
            backend,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        actual = np.load(out)
        assert sorted(actual.files) == sorted(expected)
        for key, value in expected.items():
            assert relative_error(actual[key], value) <= 1e-4, (backend, key)
