"""Small shared helpers for the tests: fake datasets written to disk, random BN
statistics, the repository's source files."""

import os

import numpy as np
from PIL import Image

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The trees held to the package's rules (layers, sizes, no path tricks).
SOURCE_TREES = ("danet_tf", "benchmarks", "tests", "training")


def python_files(trees=SOURCE_TREES):
    """The paths of every `.py` file under `trees` (folders of the repository)."""
    for tree in trees:
        for directory, _, files in os.walk(os.path.join(REPOSITORY, tree)):
            yield from (os.path.join(directory, name) for name in sorted(files)
                        if name.endswith(".py"))


def write_png(path, array, palette=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    array = np.asarray(array, np.uint8)
    image = Image.fromarray(array)
    if palette is not None:
        image = Image.new("P", (array.shape[1], array.shape[0]))
        image.putdata(array.ravel().tolist())
        image.putpalette(palette)
    image.save(path)


def random_pair(rng, height, width, num_classes):
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = rng.integers(0, num_classes, (height, width), dtype=np.uint8)
    mask[0, :3] = 255
    return image, mask


def make_folder_dataset(root, split="train", count=3, size=(20, 24), num_classes=4, seed=0):
    """root/<split>/images/*.jpg|png and root/<split>/masks/*.png; returns the arrays."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(count):
        image, mask = random_pair(rng, *size, num_classes)
        write_png(os.path.join(root, split, "images", f"img{i}.png"), image)
        write_png(os.path.join(root, split, "masks", f"img{i}.png"), mask)
        pairs.append((image, mask))
    return pairs


def backend():
    import keras

    return keras.backend.backend()


def gradients(loss_fn, inputs, variables=()):
    """`d loss_fn(*inputs) / d [*inputs, *variables]` as NumPy, on any backend.

    Args:
        loss_fn: callable of the `inputs` returning a scalar; it may read the
            Keras `variables` (e.g. by calling a layer).
        inputs: list of NumPy arrays.
        variables: list of `keras.Variable`.
    """
    import keras

    name = keras.backend.backend()
    by_backend = {"tensorflow": _tensorflow_gradients, "jax": _jax_gradients,
                  "torch": _torch_gradients}
    if name not in by_backend:
        raise NotImplementedError(name)
    grads = by_backend[name](loss_fn, inputs, list(variables))
    return [None if g is None else keras.ops.convert_to_numpy(g) for g in grads]


def _tensorflow_gradients(loss_fn, inputs, variables):
    import tensorflow as tf

    tensors = [tf.constant(x) for x in inputs]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        loss = loss_fn(*tensors)
    return tape.gradient(loss, tensors + [v.value for v in variables])


def _jax_gradients(loss_fn, inputs, variables):
    import jax
    import keras

    values = [v.value for v in variables]

    def pure(tensors, values):
        # Swap the variables' values for traced ones, as Keras'
        # `StatelessScope` does for `stateless_call`.
        mapping = list(zip(variables, values))
        with keras.StatelessScope(state_mapping=mapping):
            return loss_fn(*tensors)

    # Compiled once rather than run op by op: eager JAX differentiates a
    # whole DANet several times slower.
    grad_inputs, grad_values = jax.jit(jax.grad(pure, argnums=(0, 1)))(
        [jax.numpy.asarray(x) for x in inputs], values)
    return list(grad_inputs) + list(grad_values)


def _torch_gradients(loss_fn, inputs, variables):
    import torch

    tensors = [torch.tensor(x, requires_grad=True) for x in inputs]
    loss = loss_fn(*tensors)
    return torch.autograd.grad(loss, tensors + [v.value for v in variables], allow_unused=True)


def randomize_batch_norms(model, rng, min_variance=0.5):
    """Non-trivial BN statistics (and conv biases where there are some)."""
    from danet_tf.models.batch_norm_folding import conv_bn_pairs

    for conv, bn in conv_bn_pairs(model):
        channels = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 1.5, channels))
        bn.beta.assign(rng.normal(0.0, 0.5, channels))
        bn.moving_mean.assign(rng.normal(0.0, 0.5, channels))
        bn.moving_variance.assign(rng.uniform(min_variance, 2.0, channels))
        if conv.use_bias:
            conv.bias.assign(rng.normal(0.0, 0.5, channels))


def mmseg_layout_model(num_classes=4):
    """A small DANet with mmseg's options (deep stem, FCN auxiliary head,
    align_corners=False) and non-zero γs, so both attention branches count."""
    from danet_tf import DANet

    net = DANet(num_classes, backbone="resnet18", deep_stem=True, aux_head=True,
                align_corners=False)
    net.set_gammas(pam=0.3, cam=0.2)
    return net


def infer(model, x, training=False):
    """`model(x, training=training)` as NumPy (a dict of arrays for a dict).

    On JAX the call is compiled as one program (`jax.jit` of
    `stateless_call`, as `predict` and `fit` run a model there): eager JAX
    compiles every op for every shape, about 4x slower on a first call.
    """
    import keras

    if keras.backend.backend() != "jax":
        outputs = model(x, training=training)
    else:
        import jax

        def call(trainable, non_trainable, x):
            return model.stateless_call(trainable, non_trainable, x, training=training)[0]

        outputs = jax.jit(call)([v.value for v in model.trainable_variables],
                                [v.value for v in model.non_trainable_variables], x)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)
