"""`python -m benchmarks.ablation --quick`'s plumbing, in process on tiny sizes: the
backbone is pretrained, one run starts from it and scores, one head is
measured, and the tables are built from them (the full ablation is a
benchmark, not a test)."""

import os

import keras
import numpy as np
import pytest

from benchmarks import (
    ablation,
    ablation_backbone,
    ablation_config,
    ablation_figure,
    ablation_table,
)
from danet_tf.data.synthetic import make_split

pytestmark = pytest.mark.slow


def test_every_head_and_task_makes_a_valid_run_config(tmp_path):
    classes = {"context": (3, "synthetic_context"), "marker": (4, "synthetic_marker"),
               "textures": (6, "synthetic")}
    for head in ablation.HEADS:
        for task in ablation_config.TASKS:
            config = ablation_config.run_config(head, task, 2, str(tmp_path), quick=False)
            assert config.model.head == head and config.data.seed == 2
            assert config.data.synthetic_task == task
            assert config.train.epochs * config.train.steps_per_epoch == ablation_config.STEPS
            assert config.model.backbone_weights == ablation_config.backbone_path(str(tmp_path))
            assert config.model.backbone == "resnet18" and config.model.output_stride == 8
            assert (config.train.learning_rate, config.train.head_lr_multiplier) == (0.01, 10.0)
            assert tuple(config.data.crop_size) == tuple(config.data.synthetic_image_size) \
                == (64, 128)  # whole scenes: a crop could cut a twin or a marker away
            assert (config.data.num_classes, config.data.name) == classes[task]
    pretrain = ablation_backbone.pretrain_config(str(tmp_path), quick=False)
    assert pretrain.model.head == "fcn" and pretrain.data.synthetic_task == "textures"
    assert pretrain.data.seed == ablation_backbone.PRETRAIN_SEED != 0  # not the control's scenes


def test_pretraining_keeps_the_best_epochs_backbone_and_stops_when_flat(tmp_path):
    inputs = keras.Input((2,))
    backbone = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)], name="backbone")
    model = keras.Model(inputs, backbone(inputs))
    path = str(tmp_path / "backbone.weights.h5")
    stop = ablation_backbone.StopWhenFlat(path, patience=2)
    stop.set_model(model)
    kernels = []
    for epoch, score in enumerate([0.1, 0.3, 0.2, 0.25, 0.9]):
        backbone.layers[0].kernel.assign(np.full((2, 1), float(epoch), "float32"))
        kernels.append(float(epoch))
        stop.on_epoch_end(epoch, {"loss": 1.0, "val_miou": score})
        if getattr(model, "stop_training", False):
            break
    assert stop.curve == [0.1, 0.3, 0.2, 0.25] and stop.best_epoch == 2
    backbone.load_weights(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(backbone.layers[0].kernel),
                                  np.full((2, 1), kernels[1]))


def test_the_figures_count_mass_on_the_far_cue():
    _, masks = make_split(20, seed=1, height=64, width=128, task="marker")
    truth = next(m for m in masks if (m[:, 64:] == 1).any())
    (region, point, marker), (background, corner, same) = ablation_figure.points("marker", truth)
    assert (region, background) == ("region", "background")
    assert truth[point] >= 2 and point[1] < 64 and truth[corner] == 0 and corner[1] < 64
    np.testing.assert_array_equal(marker, truth == 1)
    _, masks = make_split(20, seed=1, height=64, width=128, task="context")
    truth = next(m for m in masks if {1, 2} <= set(np.unique(m[:, :64])))
    points = ablation_figure.points("context", truth)
    assert [(label, truth[p]) for label, p, _ in points] == [("twin", 1), ("lone", 2)]
    assert not points[0][2][:, :64].any() and (points[0][2] == (truth[:, :] > 0)
                                               & (np.arange(128) >= 64)).all()


def test_quick_run_pretrains_scores_measures_and_tabulates(tmp_path):
    record = ablation_backbone.pretrain_backbone(str(tmp_path), quick=True)
    assert os.path.isfile(ablation_config.backbone_path(str(tmp_path)))
    assert len(record["val_miou_per_epoch"]) == 2 and record["best_epoch"] in (1, 2)
    assert record["best_miou"] == max(record["val_miou_per_epoch"])
    result = ablation.train_one("danet", "marker", 0, str(tmp_path), quick=True)
    assert result["steps"] == 3
    assert len(result["per_class_iou"]) == 4
    assert result["miou"] == pytest.approx(np.nanmean(
        [np.nan if v is None else v for v in result["per_class_iou"]]))
    assert set(result["gammas"]) == {"pam", "cam"}
    masses = ablation_figure.attention_figure(str(tmp_path), "marker",
                                              str(tmp_path / "figure.png"))
    assert set(masses) == {"region", "background", "uniform"}
    assert all(0.0 <= m <= 1.0 for m in masses.values()) and masses["uniform"] > 0
    assert (tmp_path / "figure.png").stat().st_size > 10_000
    measure = ablation.measure_head("fcn", size=64, repeats=1)
    assert measure["params"] > measure["head_params"] > 0
    assert measure["gflops"] > 0 and measure["latency_s"] > 0
    second = {**result, "miou": result["miou"] + 0.1}
    fcn = {**result, "miou": result["miou"] - 0.02, "gammas": {}}
    results = {("danet", "marker", 0): result, ("danet", "marker", 1): second,
               ("fcn", "marker", 0): fcn, ("fcn", "textures", 0): result}
    text = ablation_table.table(results, {"fcn": measure}, seeds=(0, 1))
    marker = text.split("marker:")[1].splitlines()
    danet = next(line for line in marker if line.startswith("| danet "))
    mean, std = 100 * (result["miou"] + 0.05), 100 * 0.1 / np.sqrt(2)  # sample std
    assert f"| {mean:.1f} ± {std:.1f} | {100 * 0.07:+.1f} |" in danet
    fcn_row = next(line for line in text.splitlines() if line.startswith("| fcn "))
    assert f"{measure['gflops']:.1f}" in fcn_row and f"{100 * result['miou']:.1f} |" in fcn_row
    assert "region_of_checkers IoU %" in text and "twin IoU %" in text


def test_graph_flops_counts_only_the_ops_the_outputs_need():
    import tensorflow as tf

    @tf.function
    def forward(x):
        tf.matmul(x, tf.ones((8, 16)))  # in the graph, read by nothing
        return tf.nn.relu(tf.matmul(x, tf.ones((8, 3))))

    concrete = forward.get_concrete_function(tf.TensorSpec((4, 8), tf.float32))
    assert ablation.graph_flops(concrete) == 2 * 4 * 8 * 3  # multiply-add = 2


def test_mean_std_formula():
    assert ablation_table.mean_std([0.5, 0.7]) == f"60.0 ± {100 * np.sqrt(0.02):.1f}"
    assert ablation_table.mean_std([None, 0.25]) == "25.0"
    assert ablation_table.mean_std([]) == "—"
    assert ablation_table.mean_std([0.1, 0.3], 1.0, 3) == f"{0.2:.3f} ± {np.sqrt(0.02):.3f}"
