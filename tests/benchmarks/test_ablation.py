"""`benchmarks/ablation.py --quick`'s plumbing, in process on tiny sizes: one
run trains and scores, one head is measured, and the table is built from them
(the full ablation is a benchmark, not a test)."""

import numpy as np
import pytest

from benchmarks import ablation

pytestmark = pytest.mark.slow


def test_every_head_and_task_makes_a_valid_run_config(tmp_path):
    for head in ablation.HEADS:
        for task in ablation.TASKS:
            config = ablation.run_config(head, task, 2, str(tmp_path), quick=False)
            assert config.model.head == head and config.data.seed == 2
            assert config.data.synthetic_task == task
            assert config.train.epochs * config.train.steps_per_epoch == 720
            assert config.model.backbone == "resnet18" and config.model.output_stride == 8
            assert tuple(config.data.crop_size) == tuple(config.data.synthetic_image_size) \
                == (64, 128)  # whole scenes: a crop could cut a twin away
            assert (config.data.num_classes, config.data.name) == (
                (3, "synthetic_context") if task == "context" else (6, "synthetic"))


def test_quick_run_scores_measures_and_tabulates(tmp_path):
    result = ablation.train_one("danet", "context", 0, str(tmp_path), quick=True)
    assert result["steps"] == 3
    assert len(result["per_class_iou"]) == 3
    assert result["miou"] == pytest.approx(np.nanmean(
        [np.nan if v is None else v for v in result["per_class_iou"]]))
    assert set(result["gammas"]) == {"sa", "sc"}
    masses = ablation.attention_figure(str(tmp_path), str(tmp_path / "figure.png"))
    assert set(masses) == {"twin", "lone"} and all(0.0 <= m <= 1.0 for m in masses.values())
    assert (tmp_path / "figure.png").stat().st_size > 10_000
    measure = ablation.measure_head("fcn", size=64, repeats=1)
    assert measure["params"] > measure["head_params"] > 0
    assert measure["gflops"] > 0 and measure["latency_s"] > 0
    second = {**result, "miou": result["miou"] + 0.1}
    results = {("danet", "context", 0): result, ("danet", "context", 1): second}
    lines = ablation.table(results, {"fcn": measure}, seeds=(0, 1)).splitlines()
    danet = next(line for line in lines if line.startswith("| danet "))
    mean, std = 100 * (result["miou"] + 0.05), 100 * 0.1 / np.sqrt(2)  # sample std
    assert f"{mean:.1f} ± {std:.1f}" in danet
    fcn = next(line for line in lines if line.startswith("| fcn "))
    assert f"{measure['gflops']:.1f}" in fcn


def test_mean_std_formula():
    assert ablation.mean_std([0.5, 0.7]) == f"60.0 ± {100 * np.sqrt(0.02):.1f}"
    assert ablation.mean_std([None, 0.25]) == "25.0"
    assert ablation.mean_std([]) == "—"
    assert ablation.mean_std([0.1, 0.3], 1.0, 3) == f"{0.2:.3f} ± {np.sqrt(0.02):.3f}"
