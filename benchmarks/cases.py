"""One benchmark case per process (so peak memory does not mix between cases).

    python -m benchmarks.cases CASE JSON_ARGS

Prints one JSON line: the case's numbers plus `peak_rss_mb` of this process.
"""

import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks.official import CASES as OFFICIAL_CASES
from benchmarks.timing import median_time


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pam(channels, height, width, block_size, repeats):
    import tensorflow as tf

    from danet_tf.models.attention import PositionAttention

    layer = PositionAttention(block_size=block_size)
    x = tf.random.normal((1, height, width, channels))
    layer.build(x.shape)
    layer.gamma.assign([0.5])
    fn = tf.function(lambda x: layer(x))
    baseline = peak_rss_mb()
    seconds, times = median_time(lambda: fn(x)[0, 0, 0, 0].numpy(), repeats)
    return {"median_s": seconds, "times_s": times, "rss_before_mb": baseline}


def current_rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def danet_forward(height, width, block_size, repeats, backbone="resnet101", fold=True):
    """Whole-image inference of the deployed graph: BN folded into the convs.

    The folded graph is built (random weights) and the unfolded model
    dropped before measuring, as a serving process loads an exported model;
    folding a trained model is a one-off export step whose transient (two
    copies of the weights) is not inference memory.
    The logits stay a tensor: fetching one element waits for the result
    without a NumPy copy of the whole `(1, H, W, 19)` output (160 MB at
    1024x2048), which is not the model's memory either.
    """
    import gc

    import tensorflow as tf

    from danet_tf import DANet

    model = DANet(19, backbone=backbone, multi_grid=True, attention_block_size=block_size)
    net = model.inference_model(fold_batch_norm=fold)
    del model
    gc.collect()
    fn = tf.function(lambda x: net(x, training=False))
    x = tf.random.normal((1, height, width, 3))
    before = current_rss_mb()
    seconds, times = median_time(lambda: fn(x)[0, 0, 0, 0].numpy(), repeats)
    return {"median_s": seconds, "times_s": times, "rss_before_forward_mb": before,
            "bn_folded": fold}


def resnet101_floor(height, width, repeats):
    import keras
    import tensorflow as tf

    model = keras.applications.ResNet101(weights=None, include_top=False,
                                         input_shape=(height, width, 3))
    fn = tf.function(lambda x: model(x, training=False))
    x = tf.random.normal((1, height, width, 3))
    seconds, times = median_time(lambda: fn(x)[0, 0, 0, 0].numpy(), repeats)
    return {"median_s": seconds, "times_s": times}


def matmul_peak(size, repeats):
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    fn = tf.function(lambda: tf.matmul(a, b))
    seconds, _ = median_time(lambda: fn().numpy(), repeats)
    return {"median_s": seconds, "gflops": 2 * size**3 / seconds / 1e9}


def danet_flops(height, width, backbone="resnet101"):
    """Multiply-adds x 2 of convs and attention matmuls, from layer shapes."""
    import keras

    from danet_tf import DANet

    model = DANet(19, backbone=backbone, multi_grid=True, input_shape=(height, width, 3))
    flops = 0

    def visit(layer):
        nonlocal flops
        if isinstance(layer, keras.Model):
            for sub in layer.layers:
                visit(sub)
            return
        if isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape
            kh, kw, cin, cout = layer.kernel.shape
            flops += 2 * kh * kw * cin * cout * out[1] * out[2]

    for layer in model.layers:
        visit(layer)
    features = model.get_layer("backbone").output["layer4"].shape
    n, c = features[1] * features[2], 512
    head_convs = 2 * 9 * 2048 * c * n * 2 + 2 * 9 * c * c * n * 2 + 3 * 2 * c * 19 * n
    pam_convs = 2 * n * c * (c // 8) * 2 + 2 * n * c * c
    attention = 2 * n * n * (c // 8) + 2 * n * n * c + 2 * n * c * c * 2
    return {"flops": flops + head_convs + pam_convs + attention,
            "attention_flops": attention, "backbone_flops": flops}


def train_step(crop, batch, mode, repeats):
    import keras

    if mode == "mixed_precision":
        keras.mixed_precision.set_global_policy("mixed_float16")
    from danet_tf.config import load_config
    from danet_tf.train.trainer import build_metrics, build_model, compile_model

    config = load_config(overrides=["model.backbone=resnet101", "data.num_classes=19",
                                    f"train.jit={str(mode == 'xla').lower()}"])
    model = build_model(config)
    compile_model(config, model, build_metrics(config))
    x = np.random.normal(size=(batch, crop, crop, 3)).astype("float32")
    y = np.random.randint(0, 19, (batch, crop, crop))
    labels = {k: y for k in ("logits", "pam_logits", "cam_logits")}
    model.train_on_batch(x, labels)
    seconds, times = median_time(lambda: model.train_on_batch(x, labels), repeats, warmup=1)
    return {"median_s": seconds, "images_per_s": batch / seconds, "times_s": times}


def pipeline(augment, batches, preset="quickstart"):
    """Input-pipeline throughput of a preset (synthetic data: no disk I/O)."""
    from danet_tf.config import load_config
    from danet_tf.data.pipeline import build_eval_dataset, build_train_dataset

    data = load_config(preset).data
    if augment:
        ds = build_train_dataset(data)
    else:
        ds = build_eval_dataset(data, batch_size=data.batch_size).repeat()
    iterator = iter(ds)
    next(iterator)
    start = time.perf_counter()
    images = 0
    for _ in range(batches):
        images += int(next(iterator)[0].shape[0])
    seconds = time.perf_counter() - start
    return {"images_per_s": images / seconds, "batches": batches}


def quickstart_step(repeats):
    """Train-step throughput of the quick-start model (what the pipeline feeds)."""
    from danet_tf.config import load_config
    from danet_tf.train.trainer import build_metrics, build_model, compile_model

    config = load_config("quickstart")
    model = build_model(config)
    compile_model(config, model, build_metrics(config))
    batch, (h, w) = config.data.batch_size, config.data.crop_size
    x = np.random.normal(size=(batch, h, w, 3)).astype("float32")
    y = np.random.randint(0, config.data.num_classes, (batch, h, w))
    labels = {k: y for k in ("logits", "pam_logits", "cam_logits")}
    model.train_on_batch(x, labels)
    seconds, times = median_time(lambda: model.train_on_batch(x, labels), repeats)
    return {"median_s": seconds, "images_per_s": batch / seconds}


CASES = {"pipeline": pipeline, "quickstart_step": quickstart_step, "pam": pam,
         "danet_forward": danet_forward, "resnet101_floor": resnet101_floor,
         "matmul_peak": matmul_peak, "danet_flops": danet_flops, "train_step": train_step,
         **OFFICIAL_CASES}

if __name__ == "__main__":
    name, kwargs = sys.argv[1], json.loads(sys.argv[2])
    result = CASES[name](**kwargs)
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))
