"""Cases for `run.py --only official`: every deployment path of this project
next to the official PyTorch DANet, on the same weights.

The official model is the test suite's PyTorch DANet
(`danet_tf/testing/torch_danet.py`: the module names and formulas of
junfu1115/DANet) — DANet-101, multi-grid, 19 classes — with seeded random
weights, BN statistics and attention scales. `prepare` converts those weights
into this project's DANet once and writes every format; each timed case then
only loads its model, in its own process (`cases.py`), and saves its class
map next to the models so that `run.py` can compare it with Keras float32.
"""

import importlib.util
import os
import time

import numpy as np

from benchmarks.timing import median_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES, LAYERS, MULTI_GRID = 19, (3, 4, 23, 3), (1, 2, 4)
# Random weights give logits of +-440 (std 140) at 512x512, and exp() of those
# overflows float32 in the multi-scale fusion of both implementations (inf,
# then NaN after averaging); the classifiers are scaled to a trained model's
# logit range (std ~3.5).
LOGIT_SCALE = 1 / 40


def _reference(name):
    """`danet_tf/testing/<name>.py` loaded by its path: importing it as
    `danet_tf.testing` would run the package's `__init__` and load Keras and
    TensorFlow into the official model's process (its memory is measured)."""
    path = os.path.join(ROOT, "danet_tf", "testing", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_input(workdir, height, width):
    """The same synthetic scene for every case: `inputs_HxW.npz` with the uint8
    image, its normalised `(1, H, W, 3)` float32 and the black pad value
    (written here so that the official cases import nothing of this project)."""
    from danet_tf.data.synthetic import make_scene
    from danet_tf.models.preprocessing import BLACK, normalize

    image, _ = make_scene(np.random.default_rng(7), height, width, max_objects=12)
    np.savez(os.path.join(workdir, f"inputs_{height}x{width}.npz"), image=image,
             x=np.asarray(normalize(image), np.float32)[None],
             black=np.asarray(BLACK))


def _input(workdir, height, width, key="x"):
    return np.load(os.path.join(workdir, f"inputs_{height}x{width}.npz"))[key]


def _save_prediction(workdir, case, logits):
    np.save(os.path.join(workdir, f"pred_{case}.npy"),
            np.argmax(np.asarray(logits, np.float32), axis=-1).astype(np.uint8))


# int8 calibration: synthetic scenes (other seeds than the timed input), per size.
CALIBRATION_SCENES = {"openvino": 16, "tflite": 4}


def calibration_scenes(height, width, count):
    """`count` normalised synthetic scenes `(H, W, 3)` float32 for int8 calibration."""
    from danet_tf.data.synthetic import make_scene
    from danet_tf.models.preprocessing import normalize

    rng = np.random.default_rng(100)
    return [np.asarray(normalize(make_scene(rng, height, width, max_objects=12)[0]), np.float32)
            for _ in range(count)]


def quantize_both_schemes(xml, directory, size=(512, 512)):
    """`{"openvino_int8_<scheme>": path}`: the int8 IR of each NNCF scheme."""
    from danet_tf.deploy.quantize import SCHEMES, quantize_openvino

    calibration = calibration_scenes(*size, CALIBRATION_SCENES["openvino"])
    return {f"openvino_int8_{scheme}": quantize_openvino(
        xml, os.path.join(directory, f"danet_int8_{scheme}.xml"), calibration, scheme)
        for scheme in SCHEMES}


# TFLite's full-integer calibration runs the whole graph in float32 with the
# attention unchunked: above this many pixels one N x N map alone passes 4 GB.
TFLITE_INT8_MAX_PIXELS = 512 * 512


def tflite_models(model, workdir, sizes):
    """TFLite fp32 and full-integer int8 at each size; a failed or skipped
    conversion is reported in its row, not fatal."""
    from danet_tf.deploy.export import export_tflite

    paths = {}
    for height, width in sizes:
        tag = f"{height}x{width}"
        for mode in ("fp32", "int8"):
            if mode == "int8" and height * width > TFLITE_INT8_MAX_PIXELS:
                paths[f"tflite_int8_{tag}"] = ("skipped: TFLite int8 calibration above 512x512 "
                                               "runs the unchunked N x N attention (over 4 GB "
                                               "per map)")
                continue
            scenes = (calibration_scenes(height, width, CALIBRATION_SCENES["tflite"])
                      if mode == "int8" else None)
            try:
                paths[f"tflite_{mode}_{tag}"] = export_tflite(
                    model, os.path.join(workdir, "tflite"), f"danet_{tag}", (height, width),
                    modes=(mode,), representative_images=scenes, overwrite=True)[mode]
            except Exception as error:  # noqa: BLE001
                paths[f"tflite_{mode}_{tag}"] = f"conversion failed: {error}"[:500]
    return paths


def prepare(workdir, sizes, multiscale_size=(1024, 2048)):
    """Writes the inputs, the official weights and every format of the same model."""
    import torch

    from danet_tf import DANet
    from danet_tf.deploy.export import export_openvino, export_saved_model
    from danet_tf.models.weights import load_official_danet

    os.makedirs(workdir, exist_ok=True)
    for height, width in [*sizes, multiscale_size]:
        _write_input(workdir, height, width)
    reference = _reference("torch_danet")
    official = reference.randomize(reference.DANet(NUM_CLASSES, LAYERS, MULTI_GRID), seed=0)
    with torch.no_grad():
        for name in ("conv6", "conv7", "conv8"):
            classifier = getattr(official.head, name)[1]
            classifier.weight.mul_(LOGIT_SCALE)
            classifier.bias.mul_(LOGIT_SCALE)
    torch.save(official.state_dict(), os.path.join(workdir, "official.pth"))
    state = {k: v.numpy() for k, v in official.state_dict().items()}
    del official
    paths = {}
    for block_size, suffix in ((None, ""), ("auto", "_chunked")):
        model = DANet(NUM_CLASSES, backbone="resnet101", multi_grid=True,
                      attention_block_size=block_size)
        load_official_danet(model, state)
        paths[f"keras{suffix}"] = os.path.join(workdir, f"danet{suffix}.keras")
        model.save(paths[f"keras{suffix}"])
        paths[f"openvino{suffix}"] = export_openvino(
            model, os.path.join(workdir, f"openvino{suffix}"), "danet", overwrite=True)
        if block_size is None:
            paths.update(quantize_both_schemes(paths["openvino"], os.path.join(workdir,
                                                                                "openvino")))
        else:
            paths["saved_model"] = export_saved_model(model, workdir, "saved_model",
                                                      overwrite=True)
            paths.update(tflite_models(model, workdir, sizes))
    return {"paths": paths}


def _official_model_and_input(workdir, height, width):
    """The official PyTorch model on all cores (flush-to-zero on), in eval
    mode, and the scene as a normalised `(1, 3, H, W)` tensor."""
    import torch

    torch.set_num_threads(os.cpu_count())
    torch.set_flush_denormal(True)
    reference = _reference("torch_danet")
    model = reference.DANet(NUM_CLASSES, LAYERS, MULTI_GRID).eval()
    model.load_state_dict(torch.load(os.path.join(workdir, "official.pth")))
    x = torch.from_numpy(_input(workdir, height, width).transpose(0, 3, 1, 2).copy())
    return model, x


def official(workdir, height, width, precision, repeats):
    """The official PyTorch model: float32 (flush-to-zero on) or bfloat16
    autocast; the fused output, upsampled as the official `forward` does."""
    import torch

    model, x = _official_model_and_input(workdir, height, width)
    out = {}

    def run():
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16,
                                             enabled=precision == "bfloat16"):
            out["logits"] = model(x)[0].float()

    seconds, times = median_time(run, repeats)
    _save_prediction(workdir, f"official_{precision}_{height}x{width}",
                     out["logits"].permute(0, 2, 3, 1).numpy())
    return {"median_s": seconds, "times_s": times, "threads": torch.get_num_threads()}


def deployed(workdir, path, height, width, precision, repeats, case):
    """One of this project's formats through `load_logits_fn` (what
    `predict.py` and `evaluate.py` run): `.keras`, SavedModel or OpenVINO."""
    from danet_tf.deploy.loading import load_logits_fn

    logits_fn, _ = load_logits_fn(os.path.join(workdir, path), precision)
    x = _input(workdir, height, width)
    out = {}
    seconds, times = median_time(lambda: out.update(logits=logits_fn(x)), repeats)
    _save_prediction(workdir, case, out["logits"])
    return {"median_s": seconds, "times_s": times}


def tflite(workdir, path, height, width, repeats, case):
    """A TFLite model with the LiteRT interpreter (XNNPACK, all cores)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=os.path.join(workdir, path), num_threads=os.cpu_count())
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], _input(workdir, height, width))
    seconds, times = median_time(interpreter.invoke, repeats)
    _save_prediction(workdir, case, interpreter.get_tensor(out["index"]))
    return {"median_s": seconds, "times_s": times}


def official_multiscale(workdir, height, width, crop, scales, flip):
    """The official multi-scale (+ flip) sliding-window evaluation of one image."""
    import torch

    model, x = _official_model_and_input(workdir, height, width)
    start = time.perf_counter()
    with torch.no_grad():
        scores = _reference("official_eval").multi_eval(
            lambda img: model(img)[0], x, crop, scales, flip, max(height, width),
            _input(workdir, height, width, "black"))
    seconds = time.perf_counter() - start
    _save_prediction(workdir, "official_multiscale", scores.permute(0, 2, 3, 1).numpy())
    return {"seconds": seconds}


def segmenter_multiscale(workdir, path, precision, height, width, crop, scales, flip, batch_size,
                         case):
    """This project's `Segmenter` (batched windows and flips) on one format."""
    from danet_tf.deploy.inference import Segmenter
    from danet_tf.deploy.loading import load_logits_fn

    logits_fn, _ = load_logits_fn(os.path.join(workdir, path), precision)
    segmenter = Segmenter(logits_fn, crop_size=crop, scales=scales, flip=flip,
                          base_size=max(height, width), batch_size=batch_size)
    image = _input(workdir, height, width, "image")
    start = time.perf_counter()
    scores = segmenter.scores(image)
    seconds = time.perf_counter() - start
    _save_prediction(workdir, case, scores[None])
    return {"seconds": seconds}


CASES = {"official_prepare": prepare, "official": official, "official_deployed": deployed,
         "official_tflite": tflite, "official_multiscale": official_multiscale,
         "official_segmenter_multiscale": segmenter_multiscale}
