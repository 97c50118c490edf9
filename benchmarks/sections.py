"""The CPU suite's sections: each runs its cases (one process each) into
`results` and returns its markdown tables."""

from benchmarks.runner import fmt, run_case


def _repeats(args):
    """Timed runs per case: fewer with `--quick`."""
    return 2 if args.quick else 3


def pipeline_section(args, results):
    with_aug = run_case("pipeline", augment=True, batches=100)
    without = run_case("pipeline", augment=False, batches=100)
    step = run_case("quickstart_step", repeats=5)
    results["pipeline"] = {"augmented": with_aug, "not_augmented": without, "train_step": step}
    return [
        "### Input pipeline vs train step (quickstart preset: batch 8, 128x128)\n\n"
        "| what | images/s |\n|---|---|\n"
        "| tf.data with augmentation (scale, crop, flip, normalise) | "
        f"{fmt(with_aug.get('images_per_s'), 1)} |\n"
        f"| tf.data without augmentation | {fmt(without.get('images_per_s'), 1)} |\n"
        f"| DANet quick-start train step | {fmt(step.get('images_per_s'), 1)} |"]


def pam_section(args, results):
    repeats = _repeats(args)
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
    return ["### PAM alone (C = 512, batch 1, float32)\n\n" + "\n".join(rows)]


def forward_section(args, results):
    repeats = _repeats(args)
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
    return [
        "### DANet-101 (multi-grid, 19 classes) whole-image inference, batch 1, BN folded\n\n"
        + "\n".join(rows),
        "### BatchNorm folding, DANet-101 512x512 unchunked\n\n"
        "| | median s | peak MB |\n|---|---|---|\n"
        f"| BN layers kept | {fmt(unfolded.get('median_s'))} | "
        f"{fmt(unfolded.get('peak_rss_mb'), 0)} |\n"
        f"| BN folded into the convs | {fmt(folded.get('median_s'))} | "
        f"{fmt(folded.get('peak_rss_mb'), 0)} |"]


def flops_section(args, results):
    repeats = _repeats(args)
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
    return [
        "### FLOPs and efficiency at 512x512\n\n| quantity | value |\n|---|---|\n"
        f"| DANet-101 GFLOPs (2 x MACs of convs and attention) | {flops['flops'] / 1e9:.1f} |\n"
        f"| of which the attention matmuls | {flops['attention_flops'] / 1e9:.1f} |\n"
        f"| DANet-101 forward median s | {forward['median_s']:.3f} |\n"
        f"| achieved GFLOP/s | {achieved:.1f} |\n"
        f"| float32 matmul peak (4096^3) GFLOP/s | {peak['gflops']:.1f} |\n"
        f"| fraction of peak | {achieved / peak['gflops']:.0%} |\n"
        f"| keras.applications ResNet101 (OS 32) forward median s | {floor['median_s']:.3f} |"]


def train_section(args, results):
    repeats = _repeats(args)
    rows = ["| mode | step s (median) | images/s |", "|---|---|---|"]
    results["train"] = {}
    for mode in ("default", "mixed_precision", "xla"):
        r = run_case("train_step", crop=128, batch=2, mode=mode, repeats=repeats + 2)
        results["train"][mode] = r
        rows.append(f"| {mode} | {fmt(r.get('median_s'))} | {fmt(r.get('images_per_s'), 2)} |"
                    if "error" not in r else f"| {mode} | failed: {r['error'][-80:]!r} | |")
    return ["### DANet-101 train step, batch 2 at 128x128\n\n" + "\n".join(rows)]
