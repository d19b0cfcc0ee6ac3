"""Per-participant QC flags from the biomarker records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrcohort.biomarkers.connectivity import vessel_connectivity
from mrcohort.biomarkers.fat_fraction import fat_fraction_stats
from mrcohort.biomarkers.participant import BiomarkerParams, measure_participant
from mrcohort.biomarkers.qc import (
    DEFAULT_EXPECTED_IDS,
    PLAUSIBLE_VOLUME_ML,
    QC_FLAGS,
    participant_qc,
)
from mrcohort.biomarkers.volume import label_volumes
from mrcohort.labels import MRSEG_IDS, LabelMap

SPACING = (3.0, 2.0, 2.0)  # 12 mm3 voxels


def _case() -> dict[str, object]:
    labels = np.zeros((30, 40, 40), np.uint8)
    labels[5:15, 5:20, 5:20] = MRSEG_IDS["liver"]  # 2250 vox = 27 ml: implausibly small
    labels[0:5, 25:35, 25:35] = MRSEG_IDS["spleen"]  # 500 vox = 6 ml, touches z = 0
    labels[18:26, 25:29, 5:9] = MRSEG_IDS["aorta"]
    labels[28, 25:29, 5:9] = MRSEG_IDS["aorta"]  # a second piece 2 slices further: 192 mm3
    labels[18:28, 5:15, 25:35] = MRSEG_IDS["left_iliopsoas_muscle"]
    fat = np.full(labels.shape, 10.0)
    water = np.full(labels.shape, 90.0)
    muscle = labels == MRSEG_IDS["left_iliopsoas_muscle"]
    fat[muscle], water[muscle] = 80.0, 20.0  # looks swapped
    vols = label_volumes(labels, spacing_mm=SPACING)
    ffs = fat_fraction_stats(labels, fat=fat, water=water, spacing_mm=SPACING, erosion_mm=0)
    conn = vessel_connectivity(labels, spacing_mm=SPACING, dust_mm3=100.0)
    return {"volumes": vols, "ffs": ffs, "conn": conn}


def test_flags_per_label() -> None:
    c = _case()
    recs = {
        r.label_name: r
        for r in participant_qc(c["volumes"], fat_fractions=c["ffs"], connectivity=c["conn"])
    }
    assert len(recs) == 40
    liver = recs["liver"]
    assert liver.present and not liver.missing and liver.expected
    assert (
        liver.implausible_volume
        and (liver.volume_min_ml, liver.volume_max_ml) == (PLAUSIBLE_VOLUME_ML[5])
    )
    assert liver.qc_flags == "implausible_volume" and not liver.qc_pass
    spleen = recs["spleen"]
    assert spleen.truncated and spleen.implausible_volume
    assert spleen.qc_flags == "implausible_volume,truncated"
    aorta = recs["aorta"]
    assert aorta.fragmented is True and aorta.qc_flags == "fragmented"
    assert aorta.swap_suspected is False
    muscle = recs["left_iliopsoas_muscle"]
    assert muscle.swap_suspected is True and muscle.qc_flags == "swap_suspected"
    assert math.isnan(muscle.volume_min_ml)  # muscles are not volume-checked
    kidney = recs["left_kidney"]
    assert kidney.missing and not kidney.present and kidney.qc_flags == "missing"
    assert kidney.fragmented is None  # not a vessel
    gall = recs["gallbladder"]
    assert not gall.expected and not gall.missing and gall.qc_pass and gall.qc_flags == ""
    ivc = recs["inferior_vena_cava"]
    assert ivc.missing and ivc.fragmented is False  # absent: not fragmented, but missing


def test_flag_order_is_the_documented_one() -> None:
    c = _case()
    for rec in participant_qc(c["volumes"], fat_fractions=c["ffs"], connectivity=c["conn"]):
        raised = rec.qc_flags.split(",") if rec.qc_flags else []
        assert raised == [f for f in QC_FLAGS if f in raised]
        assert rec.qc_pass is (not raised)


def test_without_dixon_swap_is_unknown_and_ranges_configurable() -> None:
    c = _case()
    recs = participant_qc(
        c["volumes"],
        expected_ids=[5],
        volume_ranges_ml={5: (20.0, 30.0)},
    )
    by_name = {r.label_name: r for r in recs}
    assert all(r.swap_suspected is None for r in recs)
    assert not by_name["liver"].implausible_volume  # 27 ml is inside [20, 30]
    assert not by_name["left_kidney"].missing  # not expected any more
    assert math.isnan(by_name["spleen"].volume_min_ml)


def test_range_bounds_are_inclusive() -> None:
    vols = label_volumes(np.full((1, 1, 10), 5, np.uint8), spacing_mm=(10.0, 10.0, 10.0))
    (liver,) = [r for r in vols if r.label_id == 5]  # exactly 10 ml
    at = {r.label_id: r for r in participant_qc(vols, volume_ranges_ml={5: (10.0, 10.0)})}
    assert not at[5].implausible_volume
    assert liver.volume_ml == pytest.approx(10.0)


def test_bad_range_rejected() -> None:
    c = _case()
    with pytest.raises(ValueError, match="volume range"):
        participant_qc(c["volumes"], volume_ranges_ml={5: (10.0, 1.0)})


def test_default_expected_set() -> None:
    assert len(DEFAULT_EXPECTED_IDS) == 39 and MRSEG_IDS["gallbladder"] not in DEFAULT_EXPECTED_IDS


def test_qc_expectations_carry_over_by_name_with_shifted_ids():
    """A custom model whose ids differ from MRSegmentator's gets MRSegmentator's QC by name."""
    lm = LabelMap.from_dataset_json(
        {"labels": {"background": 0, "gallbladder": 1, "liver": 7, "tumour": 9}}
    )
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[2:4, 2:4, 2:4] = 7  # a 'liver' of 8 voxels of 1 mm3: far below 500 ml
    vols = label_volumes(labels, spacing_mm=(1.0, 1.0, 1.0), label_map=lm)
    qc = {r.label_name: r for r in participant_qc(vols, label_map=lm)}
    assert qc["liver"].implausible_volume and (
        qc["liver"].volume_min_ml,
        qc["liver"].volume_max_ml,
    ) == (500.0, 4500.0)
    assert not qc["gallbladder"].expected  # MRSegmentator's default: gallbladder optional
    assert qc["tumour"].expected and qc["tumour"].missing  # unknown to MRSegmentator
    m = measure_participant(labels, spacing_mm=(1.0, 1.0, 1.0), label_map=lm)
    assert [r.label_name for r in m.qc] == ["gallbladder", "liver", "tumour"]
    quiet = BiomarkerParams(expect_other_classes=False)
    m = measure_participant(labels, spacing_mm=(1.0, 1.0, 1.0), label_map=lm, params=quiet)
    assert not {r.label_name: r for r in m.qc}["tumour"].expected
    with pytest.raises(ValueError, match="unknown MRSegmentator ids"):
        measure_participant(
            labels,
            spacing_mm=(1.0, 1.0, 1.0),
            label_map=lm,
            params=BiomarkerParams(expected_ids=(99,)),
        )
