"""One participant-visit through every stage (ingest, stitch, segment, measure) in a job."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mrcohort.cohort import ParticipantVisit, discover
from mrcohort.jobs import participant
from mrcohort.jobs.participant import process_participant, segmentation_path
from mrcohort.labels import BODY_COMP_LABELS, MRSEG_LABEL_MAP, LabelGroup
from tests.builders import N_STATIONS, ukbb_zip
from tests.jobs.fakes import FAKE_LABEL, job_config, use_fake_segmenter


def _only_visit(folder: Path) -> ParticipantVisit:
    (pv,) = discover("ukbb", folder).pvs
    return pv


def test_not_a_zip_is_an_ingest_failure_row(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "1000001_20201_2_0.zip").write_bytes(b"nope")
    result = process_participant(_only_visit(tmp_path / "in"), job_config(tmp_path))
    assert result.organ_rows == [] and result.qc_rows == []
    assert result.failure is not None
    assert (result.failure["stage"], result.failure["code"]) == ("ingest", "NOT_A_ZIP")
    assert result.failure["input_sha256"] is not None  # the bytes were hashed
    assert result.failure["model_key"] == "k1"


def test_rows_of_every_table_carry_keys_and_provenance(tmp_path, monkeypatch):
    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000002")
    cfg = job_config(tmp_path)
    result = process_participant(_only_visit(tmp_path / "in"), cfg)
    assert result.failure is None, result.failure
    assert set(result.seconds) == {"ingest", "stitch", "segment", "measure"}
    assert [r["label_id"] for r in result.organ_rows] == list(MRSEG_LABEL_MAP.ids())
    assert [r["label_id"] for r in result.qc_rows] == list(MRSEG_LABEL_MAP.ids())
    vessels = MRSEG_LABEL_MAP.ids(LabelGroup.VESSEL)
    assert [r["label_id"] for r in result.vessel_rows] == list(vessels)
    for row in (*result.organ_rows, *result.vessel_rows, *result.qc_rows):
        assert (row["cohort"], row["participant_id"], row["visit"]) == ("t", "1000002", "2_0")
        assert row["model_key"] == "k1" and row["params_hash"] == cfg.measure.params_hash()
    sha = result.organ_rows[0]["input_sha256"]
    assert segmentation_path(cfg, sha).is_file()  # stored content-addressed
    liver = next(r for r in result.organ_rows if r["label_id"] == FAKE_LABEL)
    # the builders' stations: 4 slices of 5 x 6 voxels (2.2 x 2.2 x 3 mm), one shared slice
    n_vox = (N_STATIONS * 3 + 1) * 5 * 6
    assert liver["n_vox"] == n_vox
    assert liver["volume_ml"] == pytest.approx(n_vox * 2.2 * 2.2 * 3.0 / 1000)
    assert 0.0 <= liver["ff_median"] <= 1.0 and liver["touches_border"]


def test_unexpected_error_keeps_its_stage(tmp_path, monkeypatch):
    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000003")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(participant, "measure_participant", broken)
    result = process_participant(_only_visit(tmp_path / "in"), job_config(tmp_path))
    assert result.failure is not None
    assert result.failure["stage"] == "measure"
    assert result.failure["code"] == "UNEXPECTED_ERROR"
    assert "ZeroDivisionError: boom" in result.failure["message"]


@pytest.mark.slow
def test_job_with_the_body_comp_model_measures_the_phantoms_fat(tmp_path):
    """The whole job with ``--model demo --body-comp``: rows named by the model's classes,
    volumes and fat fractions of the phantom's fat compartments close to its truth."""
    from mrcohort.jobs.participant import JobConfig
    from mrcohort.jobs.run import resolve_model_key
    from mrcohort.phantoms import write_cohort
    from mrcohort.segmentation.model import resolve_model_folder

    src = write_cohort(tmp_path / "cohort", participants=1, seed=3)
    pvs, rejected = discover("ukbb", src)
    assert len(pvs) == 1 and not rejected
    model = str(resolve_model_folder("demo", variant="body_comp"))
    cfg = resolve_model_key(JobConfig(cohort="bc", store=tmp_path / "store", model=model))
    result = process_participant(pvs[0], cfg)
    assert result.failure is None, result.failure
    names = [r["label_name"] for r in result.organ_rows]
    assert names == [BODY_COMP_LABELS[i].name for i in sorted(BODY_COMP_LABELS)]
    assert {r["model_key"] for r in result.organ_rows} == {cfg.model_key}
    assert result.vessel_rows == []
    assert len(result.qc_rows) == 10
    rows = {r["label_name"]: r for r in result.organ_rows}
    with open(src / "truth_body_comp.csv") as fh:
        truth = {r["label_name"]: r for r in csv.DictReader(fh)}
    for name in ("subcutaneous_fat", "abdominal_subcutaneous_fat", "gluteofemoral_fat"):
        t_ml, t_ff = float(truth[name]["volume_ml"]), float(truth[name]["fat_fraction"])
        assert rows[name]["volume_ml"] == pytest.approx(t_ml, rel=0.1)
        assert rows[name]["ff_median"] == pytest.approx(t_ff, abs=0.03)
