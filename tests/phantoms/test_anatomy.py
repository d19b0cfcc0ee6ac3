"""A participant's anatomy (mrcohort.phantoms.anatomy), seen through a rendered participant."""

from __future__ import annotations

import cc3d
import numpy as np
from SimpleITK import GetArrayFromImage as voxels

from mrcohort.labels import MRSEG_IDS, MRSEG_LABEL_MAP, VESSEL_NAMES
from mrcohort.phantoms import make_participant
from mrcohort.phantoms.anatomy import SOFT_TISSUE, SUBCUT_FAT, make_anatomy

REQUIRED = [
    "liver",
    "spleen",
    "right_kidney",
    "left_kidney",
    "heart",
    "left_lung",
    "right_lung",
    "urinary_bladder",
    "spine",
    "aorta",
    "inferior_vena_cava",
    "left_iliac_artery",
    "right_iliac_artery",
    "left_iliac_vena",
    "right_iliac_vena",
    "portal_vein_and_splenic_vein",
    "left_autochthonous_muscle",
    "right_autochthonous_muscle",
    "left_iliopsoas_muscle",
    "right_iliopsoas_muscle",
    "left_gluteus_maximus",
    "right_gluteus_maximus",
]


def test_required_structures_present_with_their_ids(participant):
    present = set(np.unique(voxels(participant.labels)).tolist())
    truth_ids = {r["label_id"] for r in participant.truth}
    for name in REQUIRED:
        assert MRSEG_IDS[name] in present, name
        assert MRSEG_IDS[name] in truth_ids, name


def test_left_is_patient_left():
    """LPS: +x is patient left, so left organs have larger x than right ones."""
    p = make_participant(0, 0, "mini")
    lab = voxels(p.labels)
    origin_x, sx = p.labels.GetOrigin()[0], p.labels.GetSpacing()[0]
    for left, right in (("left_kidney", "right_kidney"), ("left_lung", "right_lung")):
        xl = np.argwhere(lab == MRSEG_IDS[left])[:, 2].mean() * sx + origin_x
        xr = np.argwhere(lab == MRSEG_IDS[right])[:, 2].mean() * sx + origin_x
        assert xl > 0 > xr
    liver_x = np.argwhere(lab == MRSEG_IDS["liver"])[:, 2].mean() * sx + origin_x
    assert liver_x < 0  # liver on the patient's right


def test_vessels_are_single_components(participant):
    lab = voxels(participant.labels)
    for vid in MRSEG_LABEL_MAP.ids_of(VESSEL_NAMES):
        _, n = cc3d.connected_components(lab == vid, connectivity=26, return_N=True)
        assert n == 1, vid


def test_body_is_fat_wrapped_soft_tissue():
    body = make_anatomy(np.random.default_rng([5, 0])).body
    z = np.full(3, 700.0)
    x = np.array([0.0, body.torso_semi[0] - 1.0, body.torso_semi[0] + 1.0])
    assert body.codes(x, np.zeros(3), z).tolist() == [SOFT_TISSUE, SUBCUT_FAT, 0]


def test_anatomy_is_drawn_from_the_stream():
    a = make_anatomy(np.random.default_rng([1, 2]))
    b = make_anatomy(np.random.default_rng([1, 2]))
    assert a.body == b.body and a.tissues == b.tissues
    assert make_anatomy(np.random.default_rng([1, 3])).body != a.body
