import keras
import numpy as np
import pytest
from conftest import relative_error, to_numpy
from helpers import gradients

from danet_tf.models.attention import ChannelAttention, PositionAttention


def softmax64(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def conv1x1_np(layer, x):
    kernel = to_numpy(layer.kernel).astype(np.float64)[0, 0]
    return x @ kernel + to_numpy(layer.bias).astype(np.float64)


def pam_reference(layer, x, gamma):
    """Official PAM in NCHW-free float64 form: out_i = sum_j A_ij V_j."""
    b, h, w, c = x.shape
    x64 = x.astype(np.float64).reshape(b, h * w, c)
    q = conv1x1_np(layer.query_conv, x64)
    k = conv1x1_np(layer.key_conv, x64)
    v = conv1x1_np(layer.value_conv, x64)
    out = np.empty_like(x64)
    for n in range(b):
        energy = q[n] @ k[n].T  # (N, N), no scaling
        attention = softmax64(energy)
        out[n] = np.einsum("ij,jc->ic", attention, v[n])
    return (gamma * out + x64).reshape(b, h, w, c)


def cam_reference(x, gamma):
    """Official CAM: softmax(rowmax(E) - E) with E = X X^T, X = (C, N)."""
    b, h, w, c = x.shape
    y = np.empty((b, h, w, c))
    for n in range(b):
        xc = x[n].astype(np.float64).reshape(h * w, c).T  # (C, N)
        energy = xc @ xc.T
        attention = softmax64(energy.max(axis=-1, keepdims=True) - energy)
        y[n] = (gamma * (attention @ xc) + xc).T.reshape(h, w, c)
    return y


@pytest.mark.parametrize("hw", [(6, 6), (5, 9)])
def test_position_attention_matches_numpy(hw):
    x = np.random.randn(2, *hw, 32).astype("float32")
    layer = PositionAttention()
    layer.build(x.shape)
    layer.gamma.assign([0.7])
    # Larger-than-init biases so a missing bias would show.
    for conv in (layer.query_conv, layer.key_conv, layer.value_conv):
        conv.bias.assign(np.random.randn(*conv.bias.shape).astype("float32"))
    expected = pam_reference(layer, x, 0.7)
    assert relative_error(layer(x), expected) <= 1e-5


@pytest.mark.parametrize("hw", [(6, 6), (5, 9)])
def test_channel_attention_matches_numpy(hw):
    x = np.random.randn(2, *hw, 16).astype("float32") * 0.5
    layer = ChannelAttention()
    layer.build(x.shape)
    layer.gamma.assign([-1.3])
    assert relative_error(layer(x), cam_reference(x, -1.3)) <= 1e-5


@pytest.mark.parametrize("layer_cls", [PositionAttention, ChannelAttention])
def test_zero_gamma_is_identity(layer_cls):
    x = np.random.randn(1, 4, 7, 16).astype("float32")
    layer = layer_cls()
    np.testing.assert_array_equal(to_numpy(layer(x)), x)
    assert float(to_numpy(layer.gamma)[0]) == 0.0


def test_position_attention_weights_and_dynamic_shape():
    layer = PositionAttention()
    inputs = keras.Input((None, None, 64))
    model = keras.Model(inputs, layer(inputs))
    # q, k: 64*8 + 8 each; v: 64*64 + 64; gamma: 1.
    assert model.count_params() == 2 * (64 * 8 + 8) + 64 * 64 + 64 + 1
    assert len(layer.trainable_weights) == 7
    for hw in [(3, 5), (8, 2)]:
        assert model(np.zeros((1, *hw, 64), "float32")).shape == (1, *hw, 64)


@pytest.mark.backend_independent
@pytest.mark.parametrize("layer_cls", [PositionAttention, ChannelAttention])
def test_config_round_trip(layer_cls):
    layer = layer_cls(name="attn")
    restored = layer_cls.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    serialized = keras.saving.serialize_keras_object(layer)
    assert type(keras.saving.deserialize_keras_object(serialized)) is layer_cls


@pytest.mark.parametrize("layer_cls", [PositionAttention, ChannelAttention])
def test_mixed_precision_computes_energy_in_float32(layer_cls):
    keras.config.set_dtype_policy("mixed_float16")
    x = np.random.randn(1, 4, 5, 16).astype("float32") * 300.0
    layer = layer_cls()
    layer.build(x.shape)
    attention = layer.attention(keras.ops.cast(x, "float16"))
    assert keras.backend.standardize_dtype(attention.dtype) == "float32"
    # Energies of this size overflow float16; in float32 the rows stay
    # probability distributions.
    np.testing.assert_allclose(to_numpy(attention).sum(-1), 1.0, rtol=1e-5)
    assert keras.backend.standardize_dtype(layer(x).dtype) == "float16"


@pytest.mark.backend_independent
def test_position_attention_rejects_tiny_channels():
    with pytest.raises(ValueError, match="reduction"):
        PositionAttention()(np.zeros((1, 2, 2, 4), "float32"))


def _gradients(layer, x):
    def loss(x):
        return keras.ops.sum(layer(x) * keras.ops.sin(x))

    return gradients(loss, [x], layer.trainable_weights)


def _pair(block_size, shape, gamma=0.7):
    reference = PositionAttention()
    reference.build(shape)
    reference.gamma.assign([gamma])
    chunked = PositionAttention(block_size=block_size)
    chunked.build(shape)
    chunked.set_weights(reference.get_weights())
    return reference, chunked


@pytest.mark.parametrize("block_size", [4, 7, 16, 63])
def test_chunked_pam_equals_unchunked_outputs_and_gradients(block_size):
    # N = 7 * 9 = 63: blocks of 4, 7 and 16 do not divide it; 63 is one block.
    x = np.random.randn(2, 7, 9, 32).astype("float32")
    reference, chunked = _pair(block_size, x.shape)
    expected = keras.ops.convert_to_numpy(reference(x))
    assert relative_error(keras.ops.convert_to_numpy(chunked(x)), expected) <= 1e-5
    expected_grads = _gradients(reference, x)
    grads = _gradients(chunked, x)
    assert len(grads) == len(expected_grads) == 8
    scale = max(float(np.max(np.abs(g))) for g in expected_grads)
    for got, want in zip(grads, expected_grads):
        # The key bias gets an exactly-zero gradient (softmax is shift
        # invariant), so compare against the overall gradient scale.
        assert np.max(np.abs(to_numpy(got) - to_numpy(want))) <= 1e-5 * scale


@pytest.mark.tensorflow
def test_chunked_pam_in_tf_function():
    import tensorflow as tf

    x = np.random.randn(2, 7, 9, 32).astype("float32")
    reference, chunked = _pair(16, x.shape)
    assert relative_error(tf.function(chunked)(x), reference(x)) <= 1e-5


@pytest.mark.tensorflow
def test_chunked_pam_under_xla():
    import tensorflow as tf

    x = np.random.randn(1, 6, 10, 16).astype("float32")
    reference, chunked = _pair(8, x.shape)
    compiled = tf.function(chunked, jit_compile=True)
    assert relative_error(compiled(x), reference(x)) <= 1e-5


def test_chunked_attention_against_numpy():
    x = np.random.randn(1, 5, 9, 32).astype("float32")
    layer = PositionAttention(block_size=4)
    layer.build(x.shape)
    layer.gamma.assign([1.3])
    assert relative_error(layer(x), pam_reference(layer, x, 1.3)) <= 1e-5


@pytest.mark.backend_independent
def test_auto_block_size():
    from danet_tf.models.attention import auto_block_size

    assert auto_block_size(4096) is None
    assert auto_block_size(4097) == 960
    assert auto_block_size(32768) == 128
    assert auto_block_size(16384) == 256
    assert auto_block_size(10**7) == 64


@pytest.mark.tensorflow
def test_auto_with_dynamic_shape_chunks_large_inputs(monkeypatch):
    import tensorflow as tf

    from danet_tf.models import attention

    monkeypatch.setattr(attention, "AUTO_UNCHUNKED_MAX_POSITIONS", 16)
    monkeypatch.setattr(attention, "AUTO_BLOCK_ELEMENTS", 64 * 40)
    calls = []
    original = attention.chunked_attention
    monkeypatch.setattr(attention, "chunked_attention",
                        lambda *a: calls.append(a[3]) or original(*a))
    x = np.random.randn(1, 5, 8, 16).astype("float32")
    reference, chunked = _pair("auto", x.shape)
    fn = tf.function(chunked, input_signature=[tf.TensorSpec([None, None, None, 16])])
    assert relative_error(fn(x), reference(x)) <= 1e-5
    assert calls, "the chunked branch was not traced"
    small = np.random.randn(1, 3, 4, 16).astype("float32")
    assert relative_error(fn(small), reference(small)) <= 1e-5


@pytest.mark.backend_independent
@pytest.mark.parametrize("block_size", [0, -3, "big", 2.5])
def test_bad_block_size(block_size):
    with pytest.raises(ValueError, match="block_size"):
        PositionAttention(block_size=block_size)


@pytest.mark.backend_independent
def test_block_size_config_round_trip():
    layer = PositionAttention(block_size="auto")
    assert PositionAttention.from_config(layer.get_config()).block_size == "auto"
    assert PositionAttention.from_config(
        PositionAttention(block_size=32).get_config()).block_size == 32


@pytest.mark.tensorflow
def test_chunked_pam_in_an_exported_saved_model(tmp_path):
    import tensorflow as tf

    x = np.random.randn(1, 5, 7, 16).astype("float32")
    reference, chunked = _pair(4, x.shape)
    inputs = keras.Input((None, None, 16))
    model = keras.Model(inputs, chunked(inputs))
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", model.call,
                         input_signature=[tf.TensorSpec([None, None, None, 16], tf.float32)])
    archive.write_out(str(tmp_path / "pam"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "pam"))
    assert relative_error(loaded.serve(x), reference(x)) <= 1e-5
    bigger = np.random.randn(1, 9, 6, 16).astype("float32")
    assert relative_error(loaded.serve(bigger), reference(bigger)) <= 1e-5
