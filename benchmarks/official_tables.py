"""The tables of `run.py --only official` and `--only multiscale`: this project's
deployment paths next to the official PyTorch DANet on the same weights."""

import os
import tempfile

import numpy as np

from benchmarks.runner import fmt, run_case

# (row label, case, arguments): the deployment paths of `run.py --only official`.
OFFICIAL_ROWS = [
    ("official PyTorch float32 (flush-to-zero)", "official", {"precision": "float32"}),
    ("official PyTorch bfloat16 autocast", "official", {"precision": "bfloat16"}),
    ("Keras float32 (.keras, BN folded)", "official_deployed",
     {"path": "danet_chunked.keras", "precision": "float32"}),
    ("Keras bfloat16", "official_deployed",
     {"path": "danet_chunked.keras", "precision": "bfloat16"}),
    ("SavedModel (TF Serving graph)", "official_deployed",
     {"path": "saved_model/1", "precision": "float32"}),
    ("OpenVINO f32", "official_deployed", {"path": "openvino/danet.xml", "precision": "float32"}),
    ("OpenVINO bf16", "official_deployed", {"path": "openvino/danet.xml", "precision": "bfloat16"}),
    ("OpenVINO bf16, chunked graph", "official_deployed",
     {"path": "openvino_chunked/danet.xml", "precision": "bfloat16"}),
    ("TFLite fp32 (LiteRT)", "official_tflite", {"mode": "fp32"}),
    ("OpenVINO int8, ignore_matmul", "official_deployed",
     {"path": "openvino/danet_int8_ignore_matmul.xml", "precision": "float32"}),
    ("OpenVINO int8, transformer", "official_deployed",
     {"path": "openvino/danet_int8_transformer.xml", "precision": "float32"}),
    ("OpenVINO int8, ignore_matmul, bf16 elsewhere", "official_deployed",
     {"path": "openvino/danet_int8_ignore_matmul.xml", "precision": "bfloat16"}),
    ("TFLite int8 (LiteRT, XNNPACK)", "official_tflite", {"mode": "int8"}),
]


def int8_rows(flags):
    """`run.py --only int8`: the int8 paths next to the float32 ones they
    replace, and on a CPU with AMX-BF16 the bfloat16 ones too (there they
    compete for the fastest path)."""
    bfloat16 = "amx_bf16" in flags
    return [row for row in OFFICIAL_ROWS if "SavedModel" not in row[0]
            and (bfloat16 or ("bf16" not in row[0] and "bfloat16" not in row[0]))]


def last_line(error):
    """The last line of a case's error (its exception and message)."""
    return error.strip().splitlines()[-1][:200] if error.strip() else "no message"


def agreement(workdir, case, reference):
    """Fraction of pixels whose class equals the reference case's."""
    try:
        a = np.load(os.path.join(workdir, f"pred_{case}.npy"))
        b = np.load(os.path.join(workdir, f"pred_{reference}.npy"))
    except OSError:
        return None
    return float(np.mean(a == b))


def measure_row(workdir, made, case, kwargs, height, width, repeats):
    """One row's case in its own process (cached under `workdir/results`);
    a TFLite model the prepare step did not make (`made`, its paths or
    reasons) gives its reason as the row's error."""
    tag = f"{height}x{width}"
    key = "_".join([case, *map(str, kwargs.values()), tag]).replace("/", "_")
    kwargs = dict(kwargs)
    if case == "official_tflite":
        mode = kwargs.pop("mode")
        tflite = made.get(f"tflite_{mode}_{tag}", "not made by the prepare step")
        if not tflite.endswith(".tflite"):
            return {"error": tflite, "prediction": key}
        kwargs = {"path": f"tflite/danet_{tag}_{mode}.tflite", **kwargs}
    extra = {"case": key} if case != "official" else {}
    r = run_case(case, timeout=7200, cache=os.path.join(workdir, "results", f"{key}.json"),
                 workdir=workdir, height=height, width=width, repeats=repeats, **kwargs, **extra)
    r["prediction"] = f"official_{kwargs['precision']}_{tag}" if case == "official" else key
    return r


def official_section(workdir, quick, rows=None, multiscale=True):
    """Every deployment path (`rows`, default `OFFICIAL_ROWS`) next to the
    official PyTorch DANet-101 (same weights, same input, batch 1, all
    cores), then multi-scale + flip sliding-window evaluation of one
    1024x2048 image."""
    rows_to_run = rows or OFFICIAL_ROWS
    sizes = [(512, 512)] if quick else [(512, 512), (1024, 2048)]
    workdir, made = prepare_official(workdir, sizes)
    results, tables = {"workdir": workdir, "sizes": {}}, []
    for height, width in sizes:
        tag = f"{height}x{width}"
        repeats = (2 if quick else 3) if height * width <= 512 * 512 else 1
        rows, measured = [], {}
        measured = {label: measure_row(workdir, made, case, kwargs, height, width, repeats)
                    for label, case, kwargs in rows_to_run}
        results["sizes"][tag] = measured
        tables.append(size_table(workdir, measured, height, width))
    if multiscale and not quick:
        results["multiscale"], table = official_multiscale_section(workdir)
        tables.append(table)
    return results, tables


def size_table(workdir, measured, height, width):
    """The table of one size: time, memory and agreement of each path."""
    base = measured[OFFICIAL_ROWS[0][0]]
    keras_f32 = measured[OFFICIAL_ROWS[2][0]]["prediction"]
    rows = []
    for name, r in measured.items():
        if "error" in r:
            rows.append(f"| {name} | failed: {last_line(r['error'])} | | | |")
            continue
        ratio = r["median_s"] / base["median_s"] if "median_s" in base else None
        rss_ratio = r["peak_rss_mb"] / base["peak_rss_mb"] if "peak_rss_mb" in base else None
        rows.append(f"| {name} | {fmt(r['median_s'], 2)} | {fmt(ratio, 2)} | "
                    f"{fmt(r['peak_rss_mb'], 0)} ({fmt(rss_ratio, 2)}x) | "
                    f"{fmt(agreement(workdir, r['prediction'], keras_f32), 4)} |")
    return (f"### DANet-101 (multi-grid, 19 classes) at {height}x{width}, batch 1, "
            f"{os.cpu_count()} threads: this project next to the official PyTorch model\n\n"
            "| path | median s | x official float32 | peak RSS MB (x official) "
            "| argmax agreement with Keras float32 |\n|---|---|---|---|---|\n" + "\n".join(rows))


# The best deployable path's time x official float32 that each CPU class should
# reach at 512x512 (issue floors); 1024x2048: 0.5 on any class.
INT8_FLOORS = {"AMX-INT8": 0.2, "AVX-512 VNNI": 0.4, "AVX2": 0.6}


def int8_verdict(sizes, int8_class):
    """Lines: the fastest path of this project at each size, its ratio to
    the official float32 model and the floor of this CPU's class."""
    lines = []
    for tag, measured in sizes.items():
        base = measured[OFFICIAL_ROWS[0][0]].get("median_s")
        timed = {name: r["median_s"] for name, r in measured.items()
                 if "median_s" in r and not name.startswith("official")}
        if not base or not timed:
            continue
        name = min(timed, key=timed.get)
        floor = 0.5 if tag != "512x512" else INT8_FLOORS.get(int8_class)
        verdict = "no floor for this class" if floor is None else (
            f"floor {floor}: {'met' if timed[name] / base <= floor else 'NOT met'}")
        lines.append(f"- {tag}: fastest is {name}, {timed[name] / base:.2f}x the official "
                     f"float32 model ({int8_class}; {verdict})")
    return lines


def prepare_official(workdir, sizes):
    """Converts the official model into every format under `workdir` (a new
    temporary directory when None) for `sizes` `[(H, W)]`; returns `workdir`
    and what the prepare step made (`{name: path or why not}`)."""
    workdir = workdir or tempfile.mkdtemp(prefix="danet_official_")
    prepared = run_case("official_prepare", timeout=7200, workdir=workdir,
                        cache=os.path.join(workdir, "results", "prepare.json"),
                        sizes=[list(s) for s in sizes])
    if "error" in prepared:
        raise RuntimeError(f"official_prepare failed: {prepared['error']}")
    return workdir, prepared["paths"]


def official_multiscale_section(workdir, height=1024, width=2048, crop=768,
                                scales=(0.75, 1.0, 1.25)):
    """The official `MultiEvalModule` procedure (PyTorch, one window and flip
    per call) next to `Segmenter` (batched) on this project's formats."""
    common = {"workdir": workdir, "height": height, "width": width, "crop": crop,
              "scales": list(scales), "flip": True}
    cache = os.path.join(workdir, "results", "{}.json")
    measured = {"official MultiEvalModule, PyTorch float32": run_case(
        "official_multiscale", timeout=7200, cache=cache.format("official_multiscale"), **common)}
    for label, path, precision in (("Keras float32", "danet_chunked.keras", "float32"),
                                   ("OpenVINO f32", "openvino/danet.xml", "float32"),
                                   ("OpenVINO bf16", "openvino/danet.xml", "bfloat16")):
        case = f"segmenter_{precision}_{path}".replace("/", "_")
        r = run_case("official_segmenter_multiscale", timeout=7200, cache=cache.format(case),
                     path=path, precision=precision, batch_size=4, case=case, **common)
        r["prediction"] = case
        measured[f"Segmenter (batch 4), {label}"] = r
    base = measured["official MultiEvalModule, PyTorch float32"]
    base["prediction"] = "official_multiscale"
    rows = []
    for name, r in measured.items():
        if "error" in r:
            rows.append(f"| {name} | failed: {last_line(r['error'])} | | | |")
            continue
        rows.append(f"| {name} | {fmt(r['seconds'], 1)} | {fmt(r['seconds'] / base['seconds'], 2)}"
                    f" | {fmt(r['peak_rss_mb'], 0)} | "
                    f"{fmt(agreement(workdir, r['prediction'], 'official_multiscale'), 4)} |")
    table = (f"### Multi-scale ({', '.join(map(str, scales))}) + flip sliding-window evaluation, "
             f"one {height}x{width} image, crop {crop}, stride 2/3\n\n"
             "| procedure | seconds | x official | peak RSS MB "
             "| class maps equal to official |\n|---|---|---|---|---|\n" + "\n".join(rows))
    return measured, table


