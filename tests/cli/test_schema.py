"""The config's schema: fields that name attention modules or weigh losses."""

import pytest

from danet_tf.cli.schema import validate_config
from danet_tf.config import load_config


@pytest.mark.parametrize("overrides, message", [
    (["model.head=fcn", "train.frozen_gammas=[cam]"],
     "train.frozen_gammas must be empty: model.head=fcn has no attention module"),
    (["model.head=pam", "train.frozen_gammas=[cam]"], "train.frozen_gammas must be one of pam."),
    (["train.main_losses=average"], "train.main_losses must be one of sum, mean"),
])
def test_a_field_the_model_cannot_honour_is_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        validate_config(load_config(overrides=overrides))


def test_both_gammas_of_danet_and_a_loss_weight_pass():
    config = load_config(overrides=["train.frozen_gammas=[pam, cam]",
                                    "train.main_losses=mean"])
    assert tuple(validate_config(config).train.frozen_gammas) == ("pam", "cam")
