"""TotalSegmentator label maps onto MRSegmentator ids, by name."""

from __future__ import annotations

import numpy as np
import pytest

from mrcohort.labels import MRSEG_IDS
from mrcohort.labels.catalogues import (
    LABEL_MAPS,
    TOTALSEG_CT_CLASSES,
    TOTALSEG_MR_CLASSES,
    TOTALSEG_TO_MRSEG,
    source_to_mrseg_ids,
    to_mrseg,
)

# From ../shared/data/README.md (total_mr ids of the example label map): an independent copy.
README_TOTAL_MR = {
    1: "spleen",
    2: "kidney_right",
    3: "kidney_left",
    5: "liver",
    12: "esophagus",
    19: "vertebrae",
    22: "heart",
    23: "aorta",
    26: "iliac_artery_left",
    27: "iliac_artery_right",
    28: "iliac_vena_left",
    29: "iliac_vena_right",
    40: "gluteus_maximus_left",
    46: "autochthon_left",
    49: "iliopsoas_right",
    50: "brain",
}


def test_static_tables_match_the_readme_and_sizes() -> None:
    assert len(TOTALSEG_MR_CLASSES) == 50 and len(TOTALSEG_CT_CLASSES) == 117
    for sid, name in README_TOTAL_MR.items():
        assert TOTALSEG_MR_CLASSES[sid] == name
    assert TOTALSEG_CT_CLASSES[5] == "liver" and TOTALSEG_CT_CLASSES[52] == "aorta"
    assert sorted(TOTALSEG_CT_CLASSES) == list(range(1, 118))


def test_every_mapping_target_is_an_mrseg_name_and_every_source_exists() -> None:
    assert set(TOTALSEG_TO_MRSEG.values()) <= set(MRSEG_IDS)
    known = set(TOTALSEG_MR_CLASSES.values()) | set(TOTALSEG_CT_CLASSES.values())
    assert set(TOTALSEG_TO_MRSEG) <= known


@pytest.mark.parametrize("source", ["totalseg_mr", "totalseg"])
def test_all_40_mrseg_classes_reachable(source: str) -> None:
    reached = set(source_to_mrseg_ids(source).values())
    assert reached == set(range(1, 41))


def test_specific_mappings() -> None:
    mr = source_to_mrseg_ids("totalseg_mr")
    assert mr[2] == MRSEG_IDS["right_kidney"]
    assert mr[26] == 16 and mr[27] == 17  # iliac arteries
    assert mr[19] == MRSEG_IDS["spine"]
    ct = source_to_mrseg_ids("totalseg")
    lobes = [k for k, v in TOTALSEG_CT_CLASSES.items() if v.startswith("lung_")]
    assert {ct[k] for k in lobes} == {MRSEG_IDS["left_lung"], MRSEG_IDS["right_lung"]}
    assert ct[26] == MRSEG_IDS["sacrum"]  # vertebrae_S1


def test_to_mrseg_maps_merges_and_reports_unmapped() -> None:
    arr = np.array([[[0, 1, 10, 11, 17, 17, 50, 99]]], dtype=np.uint8)
    out = to_mrseg(arr, "totalseg_mr")
    assert out.labels.dtype == np.uint8
    assert out.labels.tolist() == [[[0, 1, 10, 11, 0, 0, 0, 0]]]
    assert out.unmapped == {"prostate": 2, "brain": 1, "id_99": 1}
    ct = to_mrseg(np.array([[[10, 11, 12, 13, 14]]], dtype=np.int16), "totalseg")
    assert ct.labels.tolist() == [[[10, 10, 11, 11, 11]]] and ct.unmapped == {}


def test_mrsegmentator_is_identity_and_reports_foreign_ids() -> None:
    arr = np.arange(0, 45, dtype=np.uint16).reshape(1, 5, 9)
    out = to_mrseg(arr, "mrsegmentator")
    assert out.labels.ravel().tolist() == [*range(41), 0, 0, 0, 0]
    assert out.unmapped == {"id_41": 1, "id_42": 1, "id_43": 1, "id_44": 1}


def test_errors() -> None:
    with pytest.raises(ValueError, match="unknown label map"):
        to_mrseg(np.zeros((1, 1, 1), np.uint8), "nnunet")
    with pytest.raises(ValueError, match="integer"):
        to_mrseg(np.zeros((1, 1, 1)), "totalseg")
    with pytest.raises(ValueError, match="non-negative"):
        to_mrseg(np.full((1, 1, 1), -1, np.int16), "totalseg")
    assert set(LABEL_MAPS) == {"mrsegmentator", "totalseg_mr", "totalseg"}
