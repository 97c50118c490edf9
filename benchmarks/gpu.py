"""DANet on a GPU: this project on Keras' JAX backend next to the PyTorch reference.

    python -m benchmarks.gpu [--tiny] [--repeats 10] [--out benchmarks/results/gpu.json]

Runs on a CUDA machine that has JAX and PyTorch but no TensorFlow (the
project and Keras installed as pure-Python wheels): `danet_tf`'s model core
imports no TensorFlow. DANet-101 (multi-grid, 19 classes), each case in its
own process (clean peak memory), median of `--repeats` after a warm-up:
- forward, batch 1 at 1024x2048 (chunked "auto" and unchunked attention) and
  batch 8 at 512x512;
- one SGD training step, batch 8 of 768x768 crops, float32 and mixed bfloat16
  (PyTorch: bfloat16 autocast), the three DANet losses.
The PyTorch model is the test reference (`danet_tf/testing/torch_danet.py`).
`--tiny` shrinks every size (a CPU smoke run of the plumbing; its numbers
mean nothing).
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")  # before Keras: the GPU machines have no TensorFlow

from danet_tf.files import write_text

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CASES = [  # (name, framework, kind, batch, height, width, option)
    ("forward 1x1024x2048 unchunked", "jax", "forward", 1, 1024, 2048, None),
    ("forward 1x1024x2048 chunked", "jax", "forward", 1, 1024, 2048, "auto"),
    ("forward 1x1024x2048", "torch", "forward", 1, 1024, 2048, None),
    ("forward 8x512x512", "jax", "forward", 8, 512, 512, None),
    ("forward 8x512x512", "torch", "forward", 8, 512, 512, None),
    ("train step 8x768x768 float32", "jax", "train", 8, 768, 768, "float32"),
    ("train step 8x768x768 float32", "torch", "train", 8, 768, 768, "float32"),
    ("train step 8x768x768 mixed bfloat16", "jax", "train", 8, 768, 768, "mixed_bfloat16"),
    ("train step 8x768x768 bfloat16 autocast", "torch", "train", 8, 768, 768, "mixed_bfloat16"),
]
TINY_SIZES = {1024: 64, 2048: 96, 512: 64, 768: 64}


def median_seconds(step, repeats):
    step()  # warm-up: compilation, autotuning, allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def run_jax(kind, batch, height, width, option, repeats):
    import jax
    import keras
    import numpy as np

    from danet_tf import DANet

    if kind == "train" and option == "mixed_bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    block = option if kind == "forward" else None
    model = DANet(19, backbone="resnet101", multi_grid=True, attention_block_size=block)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch, height, width, 3)).astype("float32")
    if kind == "forward":
        net = model.inference_model()
        forward = jax.jit(lambda t, n, x: net.stateless_call(t, n, x, training=False)[0])
        trainable = [v.value for v in net.trainable_variables]
        fixed = [v.value for v in net.non_trainable_variables]
        x = jax.device_put(images)
        seconds = median_seconds(lambda: forward(trainable, fixed, x).block_until_ready(), repeats)
    else:
        from danet_tf.models.losses import SegmentationCrossEntropy

        labels = rng.integers(0, 19, (batch, height, width)).astype("int32")
        loss = SegmentationCrossEntropy()
        model.compile(optimizer=keras.optimizers.SGD(0.003, momentum=0.9),
                      loss={k: loss for k in ("logits", "pam_logits", "cam_logits")},
                      jit_compile=True)
        targets = {k: labels for k in ("logits", "pam_logits", "cam_logits")}
        seconds = median_seconds(lambda: model.train_on_batch(images, targets), repeats)
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return {"seconds": seconds, "peak_gib": peak / 2**30 if peak else None,
            "device": f"{device.platform}: {getattr(device, 'device_kind', device)}"}


def run_torch(kind, batch, height, width, option, repeats):
    import torch

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    model, images = _torch_reference(device, batch, height, width)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    make_step = _torch_forward_step if kind == "forward" else _torch_train_step
    step = make_step(model, images, option, sync)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds = median_seconds(step, repeats)
    peak = torch.cuda.max_memory_allocated() if cuda else None
    name = torch.cuda.get_device_name() if cuda else "cpu"
    return {"seconds": seconds, "peak_gib": peak / 2**30 if peak else None, "device": name}


def _torch_reference(device, batch, height, width):
    """The PyTorch reference DANet-101 (multi-grid, 19 classes, seeded random
    weights) on `device`, and a batch of random images there."""
    import torch

    from danet_tf.testing.torch_danet import DANet, randomize

    # JAX's default float32 precision on NVIDIA GPUs is TF32 for matmuls and
    # convolutions; PyTorch's is TF32 for cuDNN convolutions only. Same
    # arithmetic on both sides: TF32 matmuls for PyTorch too.
    torch.set_float32_matmul_precision("high")
    model = randomize(DANet(19, layers=(3, 4, 23, 3), multi_grid=(4, 8, 16))).to(device)
    return model, torch.randn(batch, 3, height, width, device=device)


def _torch_forward_step(model, images, option, sync):
    """One timed inference forward (`option`: the attention chunking, which
    the reference does not have)."""
    import torch

    model.eval()

    def step():
        with torch.no_grad():
            model(images)[0]
        sync()
    return step


def _torch_train_step(model, images, option, sync):
    """One timed SGD step on the three DANet losses, in bfloat16 autocast
    when `option` is `mixed_bfloat16`."""
    import torch
    import torch.nn.functional as F

    model.train()
    batch, _, height, width = images.shape
    labels = torch.randint(0, 19, (batch, height, width), device=images.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.003, momentum=0.9, weight_decay=1e-4)
    autocast = torch.autocast(images.device.type, dtype=torch.bfloat16,
                              enabled=option == "mixed_bfloat16")

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            outputs = model(images)
            loss = sum(F.cross_entropy(o.float(), labels, ignore_index=255) for o in outputs)
        loss.backward()
        optimizer.step()
        sync()
    return step


def run_case(index, tiny, repeats):
    name, framework, kind, batch, height, width, option = CASES[index]
    if tiny:
        batch, height, width = min(batch, 2), TINY_SIZES[height], TINY_SIZES[width]
    runner = run_jax if framework == "jax" else run_torch
    return runner(kind, batch, height, width, option, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a CPU smoke run")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "gpu.json"))
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)  # one case, in a child
    args = parser.parse_args()
    if args.case is not None:
        print("RESULT " + json.dumps(run_case(args.case, args.tiny, args.repeats)))
        return
    if args.tiny:
        print("--tiny: every size shrunk to a few dozen pixels, a smoke run of the plumbing; "
              "these numbers mean nothing.\n")
    print("float32 is TF32 matmuls and convolutions on both sides (JAX's default; PyTorch set "
          "to match)")
    print("| case | implementation | median s | peak GPU memory GiB | device |")
    print("|---|---|---|---|---|", flush=True)
    results = []
    for index, (name, framework, *_) in enumerate(CASES):
        command = [sys.executable, "-m", "benchmarks.gpu", "--case", str(index),
                   "--repeats", str(args.repeats)]
        proc = subprocess.run(command + (["--tiny"] if args.tiny else []), capture_output=True,
                              text=True, env={**os.environ, "KERAS_BACKEND": "jax"})
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        result = json.loads(line[7:]) if line else {"error": proc.stderr[-400:]}
        results.append({"case": name, "framework": framework, **result})
        if line:
            peak = "n/a" if result["peak_gib"] is None else f"{result['peak_gib']:.2f}"
            implementation = ("Keras 3 / JAX (danet_tf)" if framework == "jax"
                              else "PyTorch reference")
            print(f"| {name} | {implementation} "
                  f"| {result['seconds']:.4f} | {peak} | {result['device']} |", flush=True)
        else:
            print(f"| {name} | {framework} | failed | | {result['error'][-120:]!r} |", flush=True)
        write_text(args.out, json.dumps(results, indent=2))  # kept case by case


if __name__ == "__main__":
    main()
