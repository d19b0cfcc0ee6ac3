"""Tests for mrcohort.biomarkers._index.LabelIndex and the measures that share it: the same
voxels, boxes and results as the whole-map computations they replace."""

from __future__ import annotations

import edt
import numpy as np
import pytest

from mrcohort.biomarkers._index import LabelIndex
from mrcohort.biomarkers.centerline import bbox
from mrcohort.biomarkers.fat_fraction import _inside
from mrcohort.biomarkers.participant import measure_participant
from mrcohort.biomarkers.volume import label_volumes

SPACING = (3.0, 1.4, 2.2)


def blobs(seed: int, shape: tuple[int, int, int] = (30, 26, 34)) -> np.ndarray:
    """Sparse label map: boxes of labels 1..12 (some touching the edges), with holes."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.uint8)
    for lid in rng.choice(np.arange(1, 41), 12, replace=False):
        lo = [int(rng.integers(0, n - 3)) for n in shape]
        hi = [min(n, a + int(rng.integers(2, 12))) for a, n in zip(lo, shape, strict=True)]
        labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = lid
    labels[rng.random(shape) < 0.02] = 0
    return labels


@pytest.mark.parametrize("seed", range(5))
def test_index_finds_every_labels_voxels_and_box(seed: int) -> None:
    labels = blobs(seed)
    index = LabelIndex.of(labels)
    np.testing.assert_array_equal(index.flat, np.flatnonzero(labels))
    for lid in range(0, 45):
        mask = labels == lid
        if lid == 0:
            continue
        assert index.count(lid) == int(mask.sum())
        np.testing.assert_array_equal(index.flat[index.positions(lid)], np.flatnonzero(mask))
        assert index.label_box(lid) == bbox(mask, pad=0)
        assert index.label_box(lid, pad=2) == bbox(mask, pad=2)


def test_empty_map() -> None:
    index = LabelIndex.of(np.zeros((4, 5, 6), dtype=np.int16))
    assert index.box is None and index.count(3) == 0 and index.label_box(3) is None
    assert index.grown_box(1) is None and index.labels_box((1, 2)) is None


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("erosion", [1.0, 2.9, 4.5])
def test_erosion_on_the_labels_box_equals_the_whole_map(seed: int, erosion: float) -> None:
    labels = blobs(seed)
    if seed % 2:  # labels away from the edges too
        labels[:2], labels[-2:], labels[:, :3], labels[:, :, -3:] = 0, 0, 0, 0
    index = LabelIndex.of(labels)
    whole = edt.edt(labels, anisotropy=SPACING, parallel=1).reshape(-1)[index.flat] > erosion
    np.testing.assert_array_equal(_inside(index, labels, SPACING, erosion), whole[index.order])


def _border_reference(labels: np.ndarray, margin: int) -> set[int]:
    found: set[int] = set()
    for axis, n in enumerate(labels.shape):
        m = min(margin, n)
        for part in (slice(0, m), slice(n - m, n)):
            index = [slice(None)] * 3
            index[axis] = part
            found.update(int(v) for v in np.unique(labels[tuple(index)]))
    return found if margin else set()


@pytest.mark.parametrize("margin", [0, 1, 3])
def test_border_flags_equal_a_scan_of_the_faces(margin: int) -> None:
    labels = blobs(7)
    touching = _border_reference(labels, margin)
    for rec in label_volumes(labels, spacing_mm=SPACING, border_margin_vox=margin):
        assert rec.touches_border == (rec.label_id in touching), rec.label_id


def test_one_index_or_one_per_measure_gives_the_same_rows() -> None:
    labels = blobs(11)
    rng = np.random.default_rng(0)
    fat, water = (rng.uniform(0, 100, labels.shape) for _ in range(2))
    shared = measure_participant(labels, spacing_mm=SPACING, fat=fat, water=water).rows()
    from mrcohort.biomarkers import fat_fraction_stats, vessel_connectivity

    ffs = fat_fraction_stats(labels, fat=fat, water=water, spacing_mm=SPACING)
    conn = vessel_connectivity(labels, spacing_mm=SPACING)
    ff_cols = [(r["label_id"], r["ff_median"], r["ff_n_vox"]) for r in shared["organ_metrics"]]
    np.testing.assert_equal(ff_cols, [(r.label_id, r.ff_median, r.ff_n_vox) for r in ffs])
    assert [r["n_components_26"] for r in shared["vessel_metrics"]] == [
        r.n_components_26 for r in conn
    ]
