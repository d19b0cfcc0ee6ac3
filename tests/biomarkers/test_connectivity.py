"""Vessel connectivity: exact component counts on vessels cut into pieces, vs scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from mrcohort.biomarkers.connectivity import vessel_connectivity
from mrcohort.labels import BODY_COMP_LABEL_MAP, MRSEG_LABEL_MAP, VESSEL_NAMES
from mrcohort.phantoms import fixtures as synthetic


@pytest.mark.parametrize("grid", sorted(synthetic.GRIDS))
@pytest.mark.parametrize("n_pieces", [1, 2, 3])
def test_vessel_cut_into_pieces_counts_exact(grid: str, n_pieces: int) -> None:
    case = synthetic.vessel_in_pieces(n_pieces, spacing_mm=synthetic.GRIDS[grid], n_dust=3)
    (rec,) = vessel_connectivity(
        case.labels, spacing_mm=case.spacing_mm, label_ids=[13], dust_mm3=case.dust_mm3
    )
    assert rec.label_name == "aorta"
    assert (rec.n_components_26, rec.n_components_6) == (n_pieces, n_pieces)
    assert (rec.n_dust_components_26, rec.n_dust_components_6) == (3, 3)
    assert rec.is_single_component is (n_pieces == 1)
    comps, n = ndi.label(case.labels == 13, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(comps.ravel())[1:]
    assert n == n_pieces + 3
    assert rec.largest_component_fraction == pytest.approx(sizes.max() / sizes.sum(), rel=1e-12)
    assert rec.dust_mm3 == case.dust_mm3


@pytest.mark.parametrize("touch", ["corner", "edge"])
@pytest.mark.parametrize("n_blocks", [1, 2, 3])
def test_diagonal_contacts_differ_between_connectivities(touch: str, n_blocks: int) -> None:
    labels = synthetic.diagonal_chain(n_blocks, touch=touch, label_id=14)
    (rec,) = vessel_connectivity(labels, spacing_mm=(3.0, 2.2, 2.2), label_ids=[14], dust_mm3=0)
    assert rec.n_components_26 == 1
    assert rec.n_components_6 == n_blocks
    assert rec.is_single_component  # the definition uses 26-connectivity
    assert rec.largest_component_fraction == 1.0


def test_dust_threshold_is_exclusive_and_in_mm3() -> None:
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:12, 2:6, 2:6] = 15  # 160 voxels
    labels[15:17, 15, 15] = 15  # 2 voxels
    spacing = (2.0, 1.0, 1.5)  # 3 mm3 per voxel: the speck is 6 mm3
    kw = {"spacing_mm": spacing, "label_ids": [15]}
    (at,) = vessel_connectivity(labels, dust_mm3=6.0, **kw)
    assert (at.n_components_26, at.n_dust_components_26) == (2, 0)  # 6 mm3 is not < 6 mm3
    (above,) = vessel_connectivity(labels, dust_mm3=6.01, **kw)
    assert (above.n_components_26, above.n_dust_components_26) == (1, 1)
    assert above.is_single_component
    assert above.largest_component_fraction == pytest.approx(160 / 162)


def test_touching_vessels_stay_separate_and_all_labels_in_one_pass() -> None:
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[2:10, 2:5, 2:5] = 18
    labels[2:10, 5:8, 2:5] = 19  # touches 18 face to face
    labels[2:10, 9:11, 9:11] = 13
    recs = {
        r.label_id: r for r in vessel_connectivity(labels, spacing_mm=(1.0, 1.0, 1.0), dust_mm3=0)
    }
    assert list(recs) == list(MRSEG_LABEL_MAP.ids_of(VESSEL_NAMES)) == list(range(13, 20))
    for lid in (13, 18, 19):
        assert recs[lid].n_components_26 == 1 and recs[lid].is_single_component
    for lid in (14, 15, 16, 17):
        rec = recs[lid]
        assert rec.n_components_26 == rec.n_components_6 == 0 and not rec.is_single_component
        assert math.isnan(rec.largest_component_fraction)


def test_counts_match_scipy_per_label_on_random_map() -> None:
    """Independent implementation: scipy.ndimage.label, one label at a time."""
    rng = np.random.default_rng(11)
    labels = np.where(rng.random((24, 26, 28)) < 0.3, rng.integers(13, 20, (24, 26, 28)), 0)
    labels = labels.astype(np.uint8)
    recs = vessel_connectivity(labels, spacing_mm=(1.0, 1.0, 1.0), dust_mm3=0)
    for rec in recs:
        mask = labels == rec.label_id
        n26 = ndi.label(mask, structure=np.ones((3, 3, 3)))[1]
        n6 = ndi.label(mask, structure=ndi.generate_binary_structure(3, 1))[1]
        assert (rec.n_components_26, rec.n_components_6) == (n26, n6)
        assert rec.n_dust_components_26 == rec.n_dust_components_6 == 0


def test_dust_counted_separately_matches_scipy_sizes() -> None:
    rng = np.random.default_rng(5)
    labels = (rng.random((20, 22, 24)) < 0.25).astype(np.uint8) * 16
    spacing = (3.0, 2.0, 2.0)  # 12 mm3 voxels
    (rec,) = vessel_connectivity(labels, spacing_mm=spacing, label_ids=[16], dust_mm3=30.0)
    comps, n = ndi.label(labels == 16, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(comps.ravel())[1:] * 12.0
    assert rec.n_components_26 == int((sizes >= 30.0).sum())
    assert rec.n_dust_components_26 == int((sizes < 30.0).sum())
    assert rec.n_components_26 + rec.n_dust_components_26 == n


def test_validation() -> None:
    labels = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(TypeError):
        vessel_connectivity(labels)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="dust_mm3"):
        vessel_connectivity(labels, spacing_mm=(1.0, 1.0, 1.0), dust_mm3=-1.0)
    with pytest.raises(ValueError, match="unknown"):
        vessel_connectivity(labels, spacing_mm=(1.0, 1.0, 1.0), label_ids=[41])


def test_default_labels_are_the_maps_vessels() -> None:
    labels = np.zeros((8, 8, 8), np.uint8)
    spacing = (1.0, 1.0, 1.0)
    assert len(vessel_connectivity(labels, spacing_mm=spacing)) == 7
    assert vessel_connectivity(labels, spacing_mm=spacing, label_map=BODY_COMP_LABEL_MAP) == []
