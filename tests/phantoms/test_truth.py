"""Truth rows (mrcohort.phantoms.truth)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrcohort.labels import BODY_COMP_LABELS, MRSEG_IDS
from mrcohort.phantoms import make_participant
from mrcohort.phantoms.anatomy import make_anatomy
from mrcohort.phantoms.shapes import Ellipsoid
from mrcohort.phantoms.truth import BODY_COMP_TRUTH_COLUMNS, TRUTH_COLUMNS


def test_truth_volume_matches_analytic_ellipsoid():
    """The bladder touches no other solid: its supersampled volume equals 4/3 pi abc."""
    anatomy = make_anatomy(np.random.default_rng([7, 0]))
    bladder = dict(anatomy.solids)[MRSEG_IDS["urinary_bladder"]]
    assert isinstance(bladder, Ellipsoid)
    a, b, c = bladder.semi_axes
    analytic_ml = 4.0 / 3.0 * math.pi * a * b * c / 1000.0
    p = make_participant(7, 0, "mini")
    row = next(r for r in p.truth if r["label_id"] == MRSEG_IDS["urinary_bladder"])
    assert row["volume_ml"] == pytest.approx(analytic_ml, rel=0.01)


def test_iliac_truth_tortuosity(participant):
    rows = [r for r in participant.truth if r["label_id"] in (16, 17)]
    assert len(rows) == 2
    for r in rows:
        assert r["tortuosity_index"] == pytest.approx(
            r["centerline_length_mm"] / r["chord_length_mm"]
        )
        assert 1.0 < r["tortuosity_index"] < 1.8


def test_rows_have_the_table_columns(participant):
    assert all(tuple(r) == TRUTH_COLUMNS for r in participant.truth)
    assert all(tuple(r) == BODY_COMP_TRUTH_COLUMNS for r in participant.body_comp_truth)
    assert len(participant.body_comp_truth) == len(BODY_COMP_LABELS)
    fat = {r["label_name"]: r for r in participant.body_comp_truth}
    assert fat["abdominal_subcutaneous_fat"]["volume_ml"] > 0
    assert math.isnan(fat["visceral_fat"]["fat_fraction"])
