"""Label volumes against analytic truth and against SimpleITK."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.biomarkers.volume import VolumeRecord, label_volumes
from mrcohort.labels import MRSEG_LABEL_MAP

SPACING = (2.1, 0.9, 1.3)  # (sz, sy, sx) mm, deliberately uneven


def ellipsoid(
    shape: tuple[int, int, int],
    *,
    spacing_mm: tuple[float, float, float],
    center_mm: tuple[float, float, float],
    semi_axes_mm: tuple[float, float, float],
) -> np.ndarray:
    """Boolean ellipsoid rasterised at voxel centres (physical coordinates in mm)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    r2 = sum(
        ((g * s - c) / a) ** 2
        for g, s, c, a in zip(grids, spacing_mm, center_mm, semi_axes_mm, strict=True)
    )
    return r2 <= 1.0


def test_ellipsoid_volume_matches_analytic() -> None:
    axes = (34.0, 27.0, 22.0)
    shape = (40, 80, 50)
    center = (41.3, 35.77, 32.05)  # off-grid centre
    labels = np.zeros(shape, dtype=np.uint8)
    labels[ellipsoid(shape, spacing_mm=SPACING, center_mm=center, semi_axes_mm=axes)] = 5
    (rec,) = label_volumes(labels, spacing_mm=SPACING, label_ids=[5])
    truth_ml = 4.0 / 3.0 * math.pi * math.prod(axes) / 1000.0
    assert rec.label_id == 5
    assert rec.label_name == "liver"
    assert rec.n_vox == int((labels == 5).sum())
    assert abs(rec.volume_ml - truth_ml) / truth_ml < 0.01
    assert not rec.is_empty
    assert not rec.touches_border


def test_matches_simpleitk_on_random_label_map() -> None:
    rng = np.random.default_rng(20240601)
    labels = rng.integers(0, 41, size=(17, 23, 29), dtype=np.uint8)
    labels[labels == 7] = 0  # make one label absent
    records = label_volumes(labels, spacing_mm=SPACING)

    img = sitk.GetImageFromArray(labels)
    img.SetSpacing(tuple(reversed(SPACING)))  # SimpleITK wants (sx, sy, sz)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(img)
    itk_ml = {lid: stats.GetPhysicalSize(lid) / 1000.0 for lid in stats.GetLabels()}

    assert [r.label_id for r in records] == list(MRSEG_LABEL_MAP.ids())
    for rec in records:
        if rec.label_id == 7:
            assert rec.is_empty and rec.volume_ml == 0.0
            assert 7 not in itk_ml
            continue
        assert rec.n_vox == stats.GetNumberOfPixels(rec.label_id)
        assert rec.volume_ml == pytest.approx(itk_ml[rec.label_id], rel=1e-9)


def test_absent_labels_give_empty_rows() -> None:
    labels = np.zeros((5, 6, 7), dtype=np.uint8)
    labels[2, 2:4, 2:4] = 12
    records = label_volumes(labels, spacing_mm=(1.0, 1.0, 1.0))
    assert len(records) == 40
    by_id = {r.label_id: r for r in records}
    assert by_id[12] == VolumeRecord(12, "heart", 4, 0.004, False, False)
    empty = [r for r in records if r.label_id != 12]
    assert all(r.is_empty and r.n_vox == 0 and r.volume_ml == 0.0 for r in empty)
    assert not any(r.touches_border for r in empty)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("side", [0, -1])
def test_touches_border_each_face(axis: int, side: int) -> None:
    labels = np.zeros((6, 7, 8), dtype=np.uint8)
    labels[2:4, 2:5, 2:6] = 1  # interior
    index = [slice(2, 4), slice(2, 5), slice(2, 6)]
    index[axis] = side
    labels[tuple(index)] = 2
    recs = {r.label_id: r for r in label_volumes(labels, spacing_mm=SPACING, label_ids=[1, 2])}
    assert recs[2].touches_border
    assert not recs[1].touches_border


def test_border_margin_is_inclusive() -> None:
    labels = np.zeros((8, 8, 8), dtype=np.uint8)
    labels[1, 3:5, 3:5] = 3  # second layer from the z=0 face
    one, two = (
        label_volumes(labels, spacing_mm=SPACING, label_ids=[3], border_margin_vox=m)[0]
        for m in (1, 2)
    )
    assert not one.touches_border
    assert two.touches_border
    (off,) = label_volumes(labels, spacing_mm=SPACING, label_ids=[3], border_margin_vox=0)
    assert not off.touches_border


def test_label_ids_order_and_validation() -> None:
    labels = np.zeros((3, 3, 3), dtype=np.uint8)
    recs = label_volumes(labels, spacing_mm=SPACING, label_ids=[40, 1, 40])
    assert [r.label_id for r in recs] == [40, 1]
    with pytest.raises(ValueError, match="unknown"):
        label_volumes(labels, spacing_mm=SPACING, label_ids=[0])
    with pytest.raises(ValueError, match="3-D"):
        label_volumes(labels[0], spacing_mm=SPACING[:2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integer"):
        label_volumes(labels.astype(float), spacing_mm=SPACING)
    with pytest.raises(ValueError, match="border_margin_vox"):
        label_volumes(labels, spacing_mm=SPACING, border_margin_vox=-1)


def test_spacing_is_required_and_keyword_only() -> None:
    labels = np.zeros((3, 3, 3), dtype=np.uint8)
    with pytest.raises(TypeError):
        label_volumes(labels)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        label_volumes(labels, SPACING)  # type: ignore[misc]
