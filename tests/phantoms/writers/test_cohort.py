"""Whole phantom cohorts (mrcohort.phantoms.writers.cohort)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mrcohort.phantoms import PRESETS, write_cohort, write_participant


def test_nifti_cohort_with_manifest(tmp_path):
    write_cohort(tmp_path, layout="nifti", participants=1, seed=1, preset="mini")
    manifest = pd.read_csv(tmp_path / "manifest.csv", dtype={"participant_id": str})
    assert len(manifest) == 4 * PRESETS["mini"].n_stations
    assert set(manifest["channel"]) == {"in", "opp", "w", "f"}
    for path in manifest["path"]:
        assert (tmp_path / path).is_file()
    truth = pd.read_csv(tmp_path / "truth.csv", dtype={"participant_id": str})
    assert set(truth["participant_id"]) == {"1000001"}
    for name in ("labels", "body_comp", "in", "opp", "w", "f"):
        assert (tmp_path / "truth" / "1000001" / f"{name}.nii.gz").is_file()
    assert (tmp_path / "truth_body_comp.csv").is_file()
    phenotypes = pd.read_csv(tmp_path / "phenotypes.csv", dtype={"participant_id": str})
    assert phenotypes["participant_id"].tolist() == ["1000001"]
    meta = json.loads((tmp_path / "phantom.json").read_text())
    assert meta["layout"] == "nifti" and meta["seed"] == 1


def test_unknown_layout_is_refused_before_writing(tmp_path, participant):
    with pytest.raises(ValueError, match="unknown layout"):
        write_participant(participant, tmp_path, layout="png")
    assert not any(tmp_path.iterdir())
