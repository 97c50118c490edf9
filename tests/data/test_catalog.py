"""Class names and palettes of the datasets the presets were trained on,
against mmsegmentation's own dataset classes."""

import numpy as np
import pytest

from danet_tf.data.catalog import class_names_for, palette_for
from danet_tf.testing.mmseg_reference import import_mmseg


@pytest.mark.parametrize("dataset, mmseg_class, num_classes", [
    ("cityscapes", "CityscapesDataset", 19), ("ade20k", "ADE20KDataset", 150),
    ("pascal_voc", "PascalVOCDataset", 21)])
def test_class_names_are_mmsegs(dataset, mmseg_class, num_classes):
    import_mmseg()
    import mmseg.datasets

    info = getattr(mmseg.datasets, mmseg_class).METAINFO
    assert tuple(class_names_for(dataset, num_classes)) == tuple(info["classes"])
    np.testing.assert_array_equal(palette_for(dataset, num_classes), info["palette"])
