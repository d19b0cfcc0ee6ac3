"""Label maps: MRSegmentator's and the body-composition classes, maps read from dataset.json."""

from __future__ import annotations

import pytest

from mrcohort.labels import (
    BODY_COMP_LABEL_MAP,
    BODY_COMP_LABELS,
    ILIAC_ARTERY_NAMES,
    MRSEG_IDS,
    MRSEG_LABEL_MAP,
    MRSEG_LABELS,
    VESSEL_NAMES,
    LabelGroup,
    LabelMap,
    UnsupportedLabelMap,
    group_of,
)

BODY_COMP_DATASET = {
    "channel_names": {"0": "MR"},
    "labels": {"background": 0} | {lab.name: lab.id for lab in BODY_COMP_LABELS.values()},
    "numTraining": 1,
    "file_ending": ".nii.gz",
}


def test_dataset_json_label_maps_are_recognised():
    mrseg = {"labels": {"background": 0} | {lab.name: lab.id for lab in MRSEG_LABELS.values()}}
    assert LabelMap.from_dataset_json(mrseg) is MRSEG_LABEL_MAP
    assert LabelMap.from_dataset_json(BODY_COMP_DATASET) is BODY_COMP_LABEL_MAP
    custom = LabelMap.from_dataset_json({"labels": {"background": 0, "liver": 1, "tumour": 7}})
    assert custom.name == "custom"
    assert custom.ids() == (1, 7)
    assert (custom[1].group, custom[7].group) == (LabelGroup.ORGAN, LabelGroup.OTHER)
    assert custom.id_of("tumour") == 7 and custom.id_of("spleen") is None


def test_body_comp_groups():
    assert BODY_COMP_LABEL_MAP.ids(LabelGroup.ADIPOSE) == (1, 2, 9, 10)
    assert BODY_COMP_LABEL_MAP.ids(LabelGroup.MUSCLE) == (3, 4, 5, 6, 7, 8)


def test_region_based_and_ignore_labels():
    with pytest.raises(UnsupportedLabelMap):
        LabelMap.from_dataset_json(
            {
                "labels": {"background": 0, "whole": [1, 2], "core": [2]},
                "regions_class_order": [1, 2],
            }
        )
    lm = LabelMap.from_dataset_json({"labels": {"background": 0, "liver": 1, "ignore": 2}})
    assert lm.ids() == (1,)  # nnU-Net's ignore label is not a class


@pytest.mark.parametrize(
    "labels",
    [
        {"background": 0, "a": 1, "b": 1},
        {"background": 0, "a": "one"},
        {"background": 0},
        {},
    ],
)
def test_bad_dataset_json_label_maps_are_errors(labels):
    with pytest.raises(ValueError):
        LabelMap.from_dataset_json({"labels": labels})


def test_label_maps_pickle():
    import pickle

    assert pickle.loads(pickle.dumps(BODY_COMP_LABEL_MAP)) is BODY_COMP_LABEL_MAP
    custom = LabelMap.from_dataset_json({"labels": {"background": 0, "x": 3}})
    back = pickle.loads(pickle.dumps(custom))
    assert back.name == "custom" and back[3].name == "x"


def test_mrsegmentator_map_lookups():
    assert MRSEG_LABEL_MAP[5].name == "liver" and MRSEG_LABEL_MAP[5] is MRSEG_LABELS[5]
    assert MRSEG_LABEL_MAP.ids() == tuple(range(1, 41))
    assert MRSEG_LABEL_MAP.ids(LabelGroup.VESSEL) == tuple(range(13, 20))
    assert MRSEG_LABEL_MAP.ids_of(VESSEL_NAMES) == MRSEG_LABEL_MAP.ids(LabelGroup.VESSEL)
    assert MRSEG_LABEL_MAP.ids_of(ILIAC_ARTERY_NAMES) == (16, 17)
    assert MRSEG_LABEL_MAP.ids_of(["liver", "no_such_class", "spleen"]) == (5, 1)
    assert {MRSEG_IDS[n] for n in VESSEL_NAMES} == set(range(13, 20))
    assert group_of("subcutaneous_fat") is LabelGroup.ADIPOSE
    assert group_of("tumour") is LabelGroup.OTHER
    assert 0 not in MRSEG_LABEL_MAP and 40 in MRSEG_LABEL_MAP
