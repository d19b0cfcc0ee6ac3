"""Biomarkers on real images from ../shared/data (skipped with a reason when absent).

- TotalSegmentator's example label maps (MR ``total_mr`` and CT ``total``): volumes after
  mapping by name equal SimpleITK's independent voxel counting to 1e-6 relative.
- QMRITools' lower-leg fat and water images: Dixon FF inside a body mask lies in [0, 1],
  subcutaneous fat > 0.7 and muscle < 0.2. Regions are chosen by geometry only, never by
  fat fraction: body = (F + W) above Otsu's threshold, holes filled per slice;
  subcutaneous fat = body voxels 3 to 6 mm below the skin (the outer 3 mm are skin and
  partial volume; the layer is ~5-8 mm thick in these calves); muscle = body voxels more
  than 20 mm below the skin (the calf core, mostly muscle; the tibia's fatty marrow lies
  close to the anterior surface). Depth is the anisotropic Euclidean distance to the
  outside of the body (edt, 1.5 x 1.5 x 6 mm voxels).
"""

from __future__ import annotations

import edt
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from mrcohort.biomarkers.fat_fraction import dixon_fat_fraction, fat_fraction_stats
from mrcohort.biomarkers.participant import measure_participant
from mrcohort.biomarkers.volume import label_volumes
from mrcohort.io.images import spacing_zyx
from mrcohort.labels import MRSEG_IDS
from mrcohort.labels.catalogues import LABEL_MAPS, TOTALSEG_TO_MRSEG, to_mrseg
from tests.conftest import SHARED_DATA

TOTALSEG = SHARED_DATA / "totalsegmentator"
QMRI = SHARED_DATA / "qmritools"

pytestmark = pytest.mark.shared_data

needs_totalseg = pytest.mark.skipif(
    not TOTALSEG.is_dir(), reason=f"{TOTALSEG} not present (needs ../shared/data)"
)
needs_qmri = pytest.mark.skipif(
    not QMRI.is_dir(), reason=f"{QMRI} not present (needs ../shared/data)"
)


def _sitk_ml(img: sitk.Image) -> dict[int, float]:
    """Physical size (ml) of every label, by SimpleITK's LabelShapeStatistics."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(img)
    return {int(lid): stats.GetPhysicalSize(lid) / 1000.0 for lid in stats.GetLabels()}


@needs_totalseg
@pytest.mark.parametrize(
    ("name", "source"), [("example_seg_mr", "totalseg_mr"), ("example_seg", "totalseg")]
)
def test_real_mask_volumes_equal_simpleitk(name: str, source: str) -> None:
    img = sitk.ReadImage(str(TOTALSEG / f"{name}.nii.gz"))
    itk_ml = _sitk_ml(img)  # on the source ids
    mapped = to_mrseg(sitk.GetArrayFromImage(img), source)
    recs = label_volumes(mapped.labels, spacing_mm=spacing_zyx(img))
    table = LABEL_MAPS[source]
    assert table is not None
    expected: dict[int, float] = {}
    for sid, ml in itk_ml.items():
        mrseg = TOTALSEG_TO_MRSEG.get(table[sid])
        if mrseg is not None:
            expected[MRSEG_IDS[mrseg]] = expected.get(MRSEG_IDS[mrseg], 0.0) + ml
        else:
            assert mapped.unmapped[table[sid]] > 0  # reported, not dropped
    assert len(expected) >= 15
    for rec in recs:
        if rec.label_id in expected:
            assert rec.volume_ml == pytest.approx(expected[rec.label_id], rel=1e-6)
        else:
            assert rec.is_empty and rec.volume_ml == 0.0


@needs_totalseg
def test_real_mr_mask_hand_picked_classes() -> None:
    """A few classes checked by their total_mr ids, independent of the shipped tables."""
    img = sitk.ReadImage(str(TOTALSEG / "example_seg_mr.nii.gz"))
    itk_ml = _sitk_ml(img)
    recs = {
        r.label_name: r
        for r in label_volumes(
            to_mrseg(sitk.GetArrayFromImage(img), "totalseg_mr").labels,
            spacing_mm=spacing_zyx(img),
        )
    }
    # README of ../shared/data: 1 spleen, 3 kidney_left, 5 liver, 19 vertebrae, 23 aorta
    for name, sid in [
        ("spleen", 1),
        ("left_kidney", 3),
        ("liver", 5),
        ("spine", 19),
        ("aorta", 23),
    ]:
        assert recs[name].volume_ml == pytest.approx(itk_ml[sid], rel=1e-6)


@needs_totalseg
def test_full_measure_runs_on_real_masks() -> None:
    img = sitk.ReadImage(str(TOTALSEG / "example_seg_mr.nii.gz"))
    mapped = to_mrseg(sitk.GetArrayFromImage(img), "totalseg_mr")
    m = measure_participant(mapped.labels, spacing_mm=spacing_zyx(img))
    assert m.fat_fractions is None
    aorta = next(r for r in m.connectivity if r.label_name == "aorta")
    assert aorta.n_components_26 >= 1
    liver_qc = next(r for r in m.qc if r.label_name == "liver")
    assert liver_qc.present and liver_qc.truncated  # the crop cuts the liver


@pytest.fixture(scope="module")
def legs() -> dict[str, np.ndarray]:
    fat_img = sitk.ReadImage(str(QMRI / "fat.nii.gz"))
    water_img = sitk.ReadImage(str(QMRI / "water.nii.gz"))
    fat = sitk.GetArrayFromImage(fat_img).astype(np.float64)
    water = sitk.GetArrayFromImage(water_img).astype(np.float64)
    spacing = spacing_zyx(fat_img)
    total = fat + water
    body = total > threshold_otsu(total)
    body = np.stack([ndi.binary_fill_holes(s) for s in body])
    depth = edt.edt(body, anisotropy=spacing, black_border=False)
    regions = np.zeros(body.shape, np.uint8)
    # Label ids are stand-ins (fat_fraction_stats is label-agnostic): 42 is not an
    # MRSegmentator id, so use 12 (heart) for subcutaneous fat and 36 (a muscle) for muscle.
    regions[body & (depth > 3.0) & (depth <= 6.0)] = 12
    regions[body & (depth > 20.0)] = 36
    return {"fat": fat, "water": water, "body": body, "regions": regions, "spacing": spacing}


@needs_qmri
def test_real_leg_dixon_ff_in_unit_interval_inside_body(legs: dict[str, np.ndarray]) -> None:
    ff = dixon_fat_fraction(legs["fat"], legs["water"])
    inside = ff[legs["body"]]
    assert inside.size > 100_000
    finite = np.isfinite(inside)
    # FF is undefined (NaN) only where F + W = 0: filled holes such as cortical bone.
    total = (legs["fat"] + legs["water"])[legs["body"]]
    assert np.array_equal(~finite, total <= 0)
    assert finite.mean() > 0.9  # ~4% are zero-signal cortical bone and tendons
    assert inside[finite].min() >= 0.0 and inside[finite].max() <= 1.0


@needs_qmri
def test_real_leg_subcutaneous_fat_and_muscle(legs: dict[str, np.ndarray]) -> None:
    recs = {
        r.label_id: r
        for r in fat_fraction_stats(
            legs["regions"],
            fat=legs["fat"],
            water=legs["water"],
            spacing_mm=tuple(legs["spacing"]),
            label_ids=[12, 36],
            erosion_mm=0.0,
        )
    }
    subcut, muscle = recs[12], recs[36]
    assert subcut.ff_n_vox > 10_000 and muscle.ff_n_vox > 50_000
    assert subcut.ff_median > 0.7, subcut
    assert muscle.ff_median < 0.2, muscle
    assert not muscle.swap_suspected
