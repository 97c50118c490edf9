"""The benchmark suite: one command, markdown tables, JSON with the machine.

    python benchmarks/run.py [--quick] [--only SECTION ...] [--out benchmarks/results/latest.json]

Sections: pipeline pam forward flops train (default: all of these) and
official (this project's deployment paths next to the official PyTorch
DANet on the same weights; long: about 45 minutes on 2 cores) and
multiscale (official's last table alone: multi-scale + flip sliding-window
evaluation, about 25 minutes).
Each case runs in its own process (peak RSS per case). Times are medians of
several runs after a warm-up. --quick uses fewer repeats and skips the
largest cases.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from danet_tf.files import write_text

HERE = os.path.dirname(os.path.abspath(__file__))


def run_case(name, timeout=1800, cache=None, **kwargs):
    """Runs `cases.py name kwargs` in a fresh process; its result dict.

    With `cache` (a JSON path) a result already there for the same case and
    arguments is reused, and a new one is written there: a long benchmark
    rerun with the same `--workdir` only runs what is missing.
    """
    if cache and os.path.exists(cache):
        with open(cache) as f:
            saved = json.load(f)
        if saved.get("case") == [name, kwargs] and "error" not in saved["result"]:
            return saved["result"]
    start = time.time()
    proc = subprocess.run([sys.executable, os.path.join(HERE, "cases.py"), name,
                           json.dumps(kwargs)],
                          capture_output=True, text=True, timeout=timeout)
    line = next((stdout_line for stdout_line in proc.stdout.splitlines()
                 if stdout_line.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        result = {"error": (proc.stderr or proc.stdout)[-500:], "wall_s": time.time() - start}
    else:
        result = json.loads(line[len("RESULT "):])
    print(f"{name} {kwargs}: {result}"[:400], file=sys.stderr, flush=True)  # progress
    if cache:
        write_text(cache, json.dumps({"case": [name, kwargs], "result": result}))
    return result


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """Whether the CPU computes bfloat16 natively: `{flag: bool}`."""
    try:
        with open(cpuinfo) as f:
            flags = set(next(line for line in f if line.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        return {}
    return {flag: flag in flags for flag in ("avx512_bf16", "amx_bf16", "avx512f")}


def machine():
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "numpy": np.__version__}
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    except ImportError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
        with open("/proc/meminfo") as f:
            info["memory_kb"] = int(next(line.split()[1] for line in f
                                         if line.startswith("MemTotal")))
    except (OSError, StopIteration):
        pass
    info["flags"] = cpu_flags()
    return info


def fmt(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


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
    ("TFLite fp32 (LiteRT)", "official_tflite", {}),
]


def agreement(workdir, case, reference):
    """Fraction of pixels whose class equals the reference case's."""
    try:
        a = np.load(os.path.join(workdir, f"pred_{case}.npy"))
        b = np.load(os.path.join(workdir, f"pred_{reference}.npy"))
    except OSError:
        return None
    return float(np.mean(a == b))


def official_section(workdir, quick):
    """Every deployment path next to the official PyTorch DANet-101 (same
    weights, same input, batch 1, all cores), then multi-scale + flip
    sliding-window evaluation of one 1024x2048 image."""
    sizes = [(512, 512)] if quick else [(512, 512), (1024, 2048)]
    workdir = prepare_official(workdir, sizes)
    results, tables = {"workdir": workdir, "sizes": {}}, []
    for height, width in sizes:
        tag = f"{height}x{width}"
        repeats = (2 if quick else 3) if height * width <= 512 * 512 else 1
        rows, measured = [], {}
        for label, case, kwargs in OFFICIAL_ROWS:
            key = "_".join([case, *map(str, kwargs.values()), tag]).replace("/", "_")
            extra = ({"path": f"tflite/danet_{tag}_fp32.tflite", "case": key}
                     if case == "official_tflite" else {"case": key} if case != "official" else {})
            r = run_case(case, timeout=7200, cache=os.path.join(workdir, "results", f"{key}.json"),
                         workdir=workdir, height=height, width=width, repeats=repeats, **kwargs,
                         **extra)
            if case == "official":
                key = f"official_{kwargs['precision']}_{tag}"
            r["prediction"] = key
            measured[label] = r
        base = measured[OFFICIAL_ROWS[0][0]]
        keras_f32 = measured[OFFICIAL_ROWS[2][0]]["prediction"]
        for name, r in measured.items():
            if "error" in r:
                rows.append(f"| {name} | failed: {r['error'][-120:]!r} | | | |")
                continue
            ratio = r["median_s"] / base["median_s"] if "median_s" in base else None
            rss_ratio = (r["peak_rss_mb"] / base["peak_rss_mb"]
                         if "peak_rss_mb" in base else None)
            rows.append(f"| {name} | {fmt(r['median_s'], 2)} | {fmt(ratio, 2)} | "
                        f"{fmt(r['peak_rss_mb'], 0)} ({fmt(rss_ratio, 2)}x) | "
                        f"{fmt(agreement(workdir, r['prediction'], keras_f32), 4)} |")
        results["sizes"][tag] = measured
        tables.append(
            f"### DANet-101 (multi-grid, 19 classes) at {height}x{width}, batch 1, "
            f"{os.cpu_count()} threads: this project next to the official PyTorch model\n\n"
            "| path | median s | x official float32 | peak RSS MB (x official) "
            "| argmax agreement with Keras float32 |\n|---|---|---|---|---|\n" + "\n".join(rows))
    if not quick:
        results["multiscale"], table = official_multiscale_section(workdir)
        tables.append(table)
    return results, tables


def prepare_official(workdir, sizes):
    """Converts the official model into every format under `workdir` (a new
    temporary directory when None) for `sizes` `[(H, W)]`; returns `workdir`."""
    workdir = workdir or tempfile.mkdtemp(prefix="danet_official_")
    prepared = run_case("official_prepare", timeout=7200, workdir=workdir,
                        cache=os.path.join(workdir, "results", "prepare.json"),
                        sizes=[list(s) for s in sizes])
    if "error" in prepared:
        raise RuntimeError(f"official_prepare failed: {prepared['error']}")
    return workdir


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
            rows.append(f"| {name} | failed: {r['error'][-120:]!r} | | | |")
            continue
        rows.append(f"| {name} | {fmt(r['seconds'], 1)} | {fmt(r['seconds'] / base['seconds'], 2)}"
                    f" | {fmt(r['peak_rss_mb'], 0)} | "
                    f"{fmt(agreement(workdir, r['prediction'], 'official_multiscale'), 4)} |")
    table = (f"### Multi-scale ({', '.join(map(str, scales))}) + flip sliding-window evaluation, "
             f"one {height}x{width} image, crop {crop}, stride 2/3\n\n"
             "| procedure | seconds | x official | peak RSS MB "
             "| class maps equal to official |\n|---|---|---|---|---|\n" + "\n".join(rows))
    return measured, table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    parser.add_argument("--only", nargs="*",
                        help="sections: pipeline pam forward flops train official multiscale")
    parser.add_argument("--workdir", help="official: where the converted models go "
                                          "(default: a new temporary directory)")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 3
    sections = set(args.only or ["pipeline", "pam", "forward", "flops", "train"])
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
               "quick": args.quick}
    tables = []

    if "pipeline" in sections:
        with_aug = run_case("pipeline", augment=True, batches=100)
        without = run_case("pipeline", augment=False, batches=100)
        step = run_case("quickstart_step", repeats=5)
        results["pipeline"] = {"augmented": with_aug, "not_augmented": without, "train_step": step}
        tables.append(
            "### Input pipeline vs train step (quickstart preset: batch 8, 128x128)\n\n"
            "| what | images/s |\n|---|---|\n"
            "| tf.data with augmentation (scale, crop, flip, normalise) | "
            f"{fmt(with_aug.get('images_per_s'), 1)} |\n"
            f"| tf.data without augmentation | {fmt(without.get('images_per_s'), 1)} |\n"
            f"| DANet quick-start train step | {fmt(step.get('images_per_s'), 1)} |")

    if "pam" in sections:
        rows = ["| N (H x W) | unchunked s | chunked s | unchunked peak MB | chunked peak MB |",
                "|---|---|---|---|---|"]
        results["pam"] = []
        for h, w in [(32, 32), (64, 64), (128, 128), (128, 256)]:
            n = h * w
            full = (run_case("pam", channels=512, height=h, width=w, block_size=None,
                             repeats=repeats) if not (args.quick and n > 16384) else {})
            chunk = run_case("pam", channels=512, height=h, width=w, block_size="auto"
                             if n > 4096 else 256, repeats=repeats)
            results["pam"].append({"n": n, "unchunked": full, "chunked": chunk})
            rows.append(f"| {n} ({h}x{w}) | {fmt(full.get('median_s'))} | "
                        f"{fmt(chunk.get('median_s'))} | {fmt(full.get('peak_rss_mb'), 0)} | "
                        f"{fmt(chunk.get('peak_rss_mb'), 0)} |")
        tables.append("### PAM alone (C = 512, batch 1, float32)\n\n" + "\n".join(rows))

    if "forward" in sections:
        rows = ["| input | unchunked s | chunked s | unchunked peak MB | chunked peak MB "
                "| chunked / unchunked peak |", "|---|---|---|---|---|---|"]
        results["forward"] = []
        for h, w in [(512, 512), (1024, 1024), (1024, 2048)]:
            reps = repeats if h * w <= 1024 * 1024 else 2
            full = run_case("danet_forward", height=h, width=w, block_size=None, repeats=reps)
            chunk = run_case("danet_forward", height=h, width=w, block_size="auto", repeats=reps)
            results["forward"].append({"size": [h, w], "unchunked": full, "chunked": chunk})
            ratio = (chunk["peak_rss_mb"] / full["peak_rss_mb"]
                     if "peak_rss_mb" in full and "peak_rss_mb" in chunk else None)
            rows.append(f"| {h}x{w} | {fmt(full.get('median_s'))} | {fmt(chunk.get('median_s'))} | "
                        f"{fmt(full.get('peak_rss_mb'), 0)} | {fmt(chunk.get('peak_rss_mb'), 0)} | "
                        f"{fmt(ratio, 3)} |")
        unfolded = run_case("danet_forward", height=512, width=512, block_size=None,
                            repeats=repeats, fold=False)
        folded = results["forward"][0]["unchunked"]
        results["batch_norm_folding"] = {"kept": unfolded, "folded": folded}
        tables.append("### DANet-101 (multi-grid, 19 classes) whole-image inference, batch 1, "
                      "BN folded\n\n" + "\n".join(rows))
        tables.append(
            "### BatchNorm folding, DANet-101 512x512 unchunked\n\n"
            "| | median s | peak MB |\n|---|---|---|\n"
            f"| BN layers kept | {fmt(unfolded.get('median_s'))} | "
            f"{fmt(unfolded.get('peak_rss_mb'), 0)} |\n"
            f"| BN folded into the convs | {fmt(folded.get('median_s'))} | "
            f"{fmt(folded.get('peak_rss_mb'), 0)} |")

    if "flops" in sections:
        flops = run_case("danet_flops", height=512, width=512)
        peak = run_case("matmul_peak", size=4096, repeats=5)
        forward = next((r["unchunked"] for r in results.get("forward", [])
                        if r["size"] == [512, 512]),
                       None) or run_case("danet_forward", height=512, width=512, block_size=None,
                                         repeats=repeats)
        floor = run_case("resnet101_floor", height=512, width=512, repeats=repeats)
        achieved = flops["flops"] / forward["median_s"] / 1e9
        results["flops"] = {"danet": flops, "matmul_peak": peak, "forward_512": forward,
                            "resnet101_512": floor, "achieved_gflops": achieved}
        tables.append(
            "### FLOPs and efficiency at 512x512\n\n| quantity | value |\n|---|---|\n"
            f"| DANet-101 GFLOPs (2 x MACs of convs and attention) | {flops['flops'] / 1e9:.1f} |\n"
            f"| of which the attention matmuls | {flops['attention_flops'] / 1e9:.1f} |\n"
            f"| DANet-101 forward median s | {forward['median_s']:.3f} |\n"
            f"| achieved GFLOP/s | {achieved:.1f} |\n"
            f"| float32 matmul peak (4096^3) GFLOP/s | {peak['gflops']:.1f} |\n"
            f"| fraction of peak | {achieved / peak['gflops']:.0%} |\n"
            f"| keras.applications ResNet101 (OS 32) forward median s | {floor['median_s']:.3f} |")

    if "train" in sections:
        rows = ["| mode | step s (median) | images/s |", "|---|---|---|"]
        results["train"] = {}
        for mode in ("default", "mixed_precision", "xla"):
            r = run_case("train_step", crop=128, batch=2, mode=mode, repeats=repeats + 2)
            results["train"][mode] = r
            rows.append(f"| {mode} | {fmt(r.get('median_s'))} | {fmt(r.get('images_per_s'), 2)} |"
                        if "error" not in r else f"| {mode} | failed: {r['error'][-80:]!r} | |")
        tables.append("### DANet-101 train step, batch 2 at 128x128\n\n" + "\n".join(rows))

    if "official" in sections:
        results["official"], official_tables = official_section(args.workdir, args.quick)
        tables.extend(official_tables)
    elif "multiscale" in sections:  # `official` includes it
        workdir = prepare_official(args.workdir, [])
        results["multiscale"], table = official_multiscale_section(workdir)
        tables.append(table)

    write_text(args.out, json.dumps(results, indent=2))
    print(f"Machine: {results['machine']}")
    print(f"CPU: {results['machine'].get('cpu', '?')}; native bfloat16: "
          + ", ".join(f"{k} {'yes' if v else 'no'}"
                      for k, v in results["machine"]["flags"].items()) + "\n")
    print("\n\n".join(tables))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
