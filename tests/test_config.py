import pytest

from danet_tf.config import load_config


def test_quickstart_is_the_default_and_overrides_apply():
    config = load_config(overrides=["train.epochs=3", "data.crop_size=[64, 96]",
                                    "model.aux_head=true", "train.learning_rate=1"])
    assert config.data.source == "synthetic"
    assert config.train.epochs == 3
    assert config.data.crop_size == (64, 96)
    assert config.model.aux_head is True
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)


@pytest.mark.parametrize("preset", ["cityscapes", "ade20k", "pascal_voc", "pascal_context",
                                    "coco_stuff", "quickstart", "context", "marker"])
def test_presets_load(preset):
    config = load_config(preset)
    assert config.data.num_classes > 1
    assert config.train.momentum == 0.9


def test_official_cityscapes_recipe():
    config = load_config("cityscapes")
    assert config.data.num_classes == 19
    assert config.model.backbone == "resnet101" and config.model.multi_grid
    assert config.train.learning_rate == 0.003 and config.data.batch_size == 8
    assert tuple(config.data.crop_size) == (768, 768)


@pytest.mark.parametrize(
    "override, message",
    [("train.epoch=3", "unknown key 'epoch'"), ("model.aux_head=maybe", "true or false"),
     ("train.epochs=2.5", "integer"), ("nonsense", "key=value")],
)
def test_bad_overrides_name_the_field(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(overrides=[override])


def test_unknown_preset_lists_presets():
    with pytest.raises(FileNotFoundError, match="quickstart"):
        load_config("nope")


@pytest.mark.parametrize("preset", ["cityscapes", "ade20k", "pascal_voc", "pascal_context",
                                    "coco_stuff", "quickstart"])
def test_every_preset_builds_its_model_and_resolves_its_weights(preset, monkeypatch):
    """Up to the download: keras.applications is replaced by a random-weight
    network of the same architecture, so no network is used."""
    import keras

    from danet_tf.train.trainer import build_model, load_pretrained_backbone

    requested = []
    for depth in (50, 101, 152):
        real = getattr(keras.applications, f"ResNet{depth}")

        def offline(*args, weights=None, _real=real, **kwargs):
            requested.append(weights)
            return _real(*args, weights=None, **kwargs)

        monkeypatch.setattr(keras.applications, f"ResNet{depth}", offline)
    config = load_config(preset)
    model = build_model(config)
    report = load_pretrained_backbone(config, model)
    if config.model.backbone_weights in (None, "none"):
        assert report == "backbone: random initialisation" and not requested
    else:
        assert requested == [config.model.backbone_weights]
        assert "layers" in report
    keras.backend.clear_session()
