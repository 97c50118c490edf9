import numpy as np
import pytest
from conftest import relative_error

from danet_tf import DANet
from danet_tf.deploy import loading


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = DANet(3, backbone="resnet18")
    model.set_gammas(pam=0.5, cam=-0.5)
    path = str(tmp_path_factory.mktemp("keras") / "danet.keras")
    model.save(path)
    return model, path


def test_keras_file_gives_the_models_logits_for_any_batch_and_size(saved):
    """The frozen graph is traced once for every size: batches of windows and
    whole images of other shapes give the Keras model's logits."""
    model, path = saved
    logits_fn, num_classes = loading.load_logits_fn(path, precision="float32")
    assert num_classes == 3
    rng = np.random.default_rng(0)
    for shape in ((2, 40, 56, 3), (1, 33, 21, 3)):
        x = rng.normal(size=shape).astype("float32")
        expected = model(x, training=False)["logits"]
        got = logits_fn(x)
        assert got.shape == shape[:3] + (3,)
        assert relative_error(got, expected) <= 1e-5


def test_unknown_model_file_and_precision_are_refused(saved):
    with pytest.raises(ValueError,
                       match=r"\.keras file, a preset \(directory or name\), a SavedModel"):
        loading.load_logits_fn("model.h5")
    with pytest.raises(ValueError, match="--precision must be one of"):
        loading.load_logits_fn(saved[1], "float16")
