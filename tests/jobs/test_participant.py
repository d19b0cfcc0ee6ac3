"""One participant-visit through every stage (ingest, stitch, segment, measure) in a job."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mrcohort.cohort import ParticipantVisit, discover
from mrcohort.io.files import sha256_file
from mrcohort.jobs import participant
from mrcohort.jobs.ledger import Action
from mrcohort.jobs.participant import process_participant, segmentation_path
from mrcohort.labels import BODY_COMP_LABELS, MRSEG_LABEL_MAP, LabelGroup
from tests.builders import N_STATIONS, ukbb_zip
from tests.jobs.fakes import FAKE_LABEL, item_for, use_fake_segmenter, work_context


def _only_visit(folder: Path) -> ParticipantVisit:
    (pv,) = discover("ukbb", folder).pvs
    return pv


def test_not_a_zip_is_an_ingest_failure_row(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "1000001_20201_2_0.zip").write_bytes(b"nope")
    result = process_participant(item_for(_only_visit(tmp_path / "in")), work_context(tmp_path))
    assert set(result.tables) == {"failures"}
    assert result.failure is not None and result.tables["failures"] == [result.failure]
    assert (result.failure["stage"], result.failure["code"]) == ("ingest", "NOT_A_ZIP")
    assert result.failure["input_sha256"] is not None  # the bytes were hashed
    assert result.failure["model_key"] == "k1" and result.failure["measure_key"] == "m1"
    led = result.ledger
    assert (led["outcome"], led["stage"], led["code"]) == ("failed", "ingest", "NOT_A_ZIP")
    assert led["retryable"] is False  # caused by the input: not retried


def test_rows_of_every_table_carry_keys_and_provenance(tmp_path, monkeypatch):
    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000002")
    ctx = work_context(tmp_path)
    result = process_participant(item_for(_only_visit(tmp_path / "in")), ctx)
    assert result.failure is None, result.failure
    led = result.ledger
    assert {k for k in led if k.startswith("seconds_") and led[k] is not None} == {
        "seconds_ingest",
        "seconds_stitch",
        "seconds_segment",
        "seconds_measure",
    }
    organ, qc = result.tables["organ_metrics"], result.tables["qc"]
    assert [r["label_id"] for r in organ] == list(MRSEG_LABEL_MAP.ids())
    assert [r["label_id"] for r in qc] == list(MRSEG_LABEL_MAP.ids())
    vessels = MRSEG_LABEL_MAP.ids(LabelGroup.VESSEL)
    assert [r["label_id"] for r in result.tables["vessel_metrics"]] == list(vessels)
    for name in ("organ_metrics", "vessel_metrics", "qc"):
        for row in result.tables[name]:
            assert (row["cohort"], row["participant_id"], row["visit"]) == ("t", "1000002", "2_0")
            assert row["model_key"] == "k1" and row["measure_key"] == "m1"
            assert row["params_hash"] == ctx.measure.params_hash() and row["run_id"] == "r1"
    sha = organ[0]["input_sha256"]
    path = segmentation_path(ctx.store, ctx.model_key, sha)
    assert path.is_file()  # stored content-addressed, its hash in the ledger
    assert led["segmentation_sha256"] == sha256_file(path) and led["input_sha256"] == sha
    assert led["wrote_scans"] and len(result.tables["scans"]) == 4 * N_STATIONS
    liver = next(r for r in organ if r["label_id"] == FAKE_LABEL)
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
    result = process_participant(item_for(_only_visit(tmp_path / "in")), work_context(tmp_path))
    assert result.failure is not None
    assert result.ledger["retryable"] is True  # a bug, not the input: retried next run
    assert result.failure["stage"] == "measure"
    assert result.failure["code"] == "UNEXPECTED_ERROR"
    assert "ZeroDivisionError: boom" in result.failure["message"]


@pytest.mark.slow
def test_job_with_the_body_comp_model_measures_the_phantoms_fat(tmp_path):
    """The whole job with ``--model demo --body-comp``: rows named by the model's classes,
    volumes and fat fractions of the phantom's fat compartments close to its truth."""
    from mrcohort.jobs.run import work_context as resolve
    from mrcohort.phantoms import write_cohort
    from tests.jobs.fakes import job_config

    src = write_cohort(tmp_path / "cohort", participants=1, seed=3)
    pvs, rejected = discover("ukbb", src)
    assert len(pvs) == 1 and not rejected
    cfg = job_config(src, tmp_path / "store", **{"model.body_comp": True})
    ctx = resolve(cfg, run_id="r1")
    result = process_participant(item_for(pvs[0]), ctx)
    assert result.failure is None, result.failure
    organ = result.tables["organ_metrics"]
    names = [r["label_name"] for r in organ]
    assert names == [BODY_COMP_LABELS[i].name for i in sorted(BODY_COMP_LABELS)]
    assert {r["model_key"] for r in organ} == {ctx.model_key}
    assert result.tables["vessel_metrics"] == []
    assert len(result.tables["qc"]) == 10
    rows = {r["label_name"]: r for r in organ}
    with open(src / "truth_body_comp.csv") as fh:
        truth = {r["label_name"]: r for r in csv.DictReader(fh)}
    for name in ("subcutaneous_fat", "abdominal_subcutaneous_fat", "gluteofemoral_fat"):
        t_ml, t_ff = float(truth[name]["volume_ml"]), float(truth[name]["fat_fraction"])
        assert rows[name]["volume_ml"] == pytest.approx(t_ml, rel=0.1)
        assert rows[name]["ff_median"] == pytest.approx(t_ff, abs=0.03)


def test_measure_only_uses_the_stored_segmentation(tmp_path, monkeypatch):
    """MEASURE: the segmenter is never called when the stored file has the ledger's hash; a
    changed (truncated) file is detected by its hash and segmented again."""
    fake = use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000004")
    pv = _only_visit(tmp_path / "in")
    ctx = work_context(tmp_path)
    first = process_participant(item_for(pv), ctx)
    assert fake.calls == 1
    led = first.ledger
    again = item_for(
        pv,
        Action.MEASURE,
        known_sha256=led["input_sha256"],
        segmentation_sha256=led["segmentation_sha256"],
        scans_sha256=led["input_sha256"],
    )
    second = process_participant(again, work_context(tmp_path, measure_key="m2"))
    assert fake.calls == 1, "measure-only must not segment"
    assert second.ok and "scans" not in second.tables  # scans of this input already stored
    assert second.tables["organ_metrics"] == [
        {**r, "measure_key": "m2", "computed_at": s["computed_at"]}
        for r, s in zip(first.tables["organ_metrics"], second.tables["organ_metrics"], strict=True)
    ]
    path = segmentation_path(ctx.store, ctx.model_key, led["input_sha256"])
    path.write_bytes(path.read_bytes()[:100])  # truncated on disk
    third = process_participant(again, work_context(tmp_path, measure_key="m3"))
    assert fake.calls == 2 and third.ok
    assert third.ledger["segmentation_sha256"] == led["segmentation_sha256"]


def test_a_zip_is_hashed_once(tmp_path, monkeypatch):
    """The zip's hash is known before reading and handed to the loader, not computed twice."""
    import mrcohort.cohort.layouts.ukbb as ukbb_layout

    use_fake_segmenter(monkeypatch)
    zip_path = ukbb_zip(tmp_path / "in", "1000005")
    hashed: list[Path] = []
    real = ukbb_layout.sha256_file
    for module in (ukbb_layout, participant):  # every place that may hash in this stage
        monkeypatch.setattr(module, "sha256_file", lambda p: hashed.append(Path(p)) or real(p))
    result = process_participant(item_for(_only_visit(tmp_path / "in")), work_context(tmp_path))
    assert result.ok and [p for p in hashed if p.suffix == ".zip"] == [zip_path]
    assert result.ledger["input_sha256"] == real(zip_path)
