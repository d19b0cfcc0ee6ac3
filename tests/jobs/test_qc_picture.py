"""QC pictures in the job (`mrcohort.jobs.qc_picture`): one PNG per participant-visit in the
store, named by the ``qc`` rows; off by configuration; a picture that cannot be written costs
nothing but the picture."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from PIL import Image

import mrcohort
from mrcohort.cohort import ParticipantVisit, discover
from mrcohort.jobs.participant import process_participant
from mrcohort.jobs.qc_picture import PICTURES_DIR, picture_path, picture_title
from mrcohort.jobs.run import run_job
from tests.builders import ukbb_zip
from tests.jobs.fakes import item_for, job_config, use_fake_segmenter, work_context


def _only_visit(folder: Path) -> ParticipantVisit:
    (pv,) = discover("ukbb", folder).pvs
    return pv


def _is_png(path: Path) -> bool:
    with Image.open(io.BytesIO(path.read_bytes())) as img:
        return img.format == "PNG" and img.size[1] == 900


def test_the_measure_stage_writes_the_picture_the_qc_rows_name(tmp_path, monkeypatch):
    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000001")
    ctx = work_context(tmp_path, model_name="demo")
    result = process_participant(item_for(_only_visit(tmp_path / "in")), ctx)
    assert result.ok, result.failure
    rel = picture_path("t", "k1", "1000001", "2_0")
    assert rel == "qc_pictures/cohort=t/model_key=k1/1000001.2_0.png"
    assert {r["picture_path"] for r in result.tables["qc"]} == {rel}
    assert _is_png(ctx.store / rel)
    assert [p.name for p in (ctx.store / rel).parent.iterdir()] == ["1000001.2_0.png"]  # no temp
    assert "picture_path" not in result.tables["organ_metrics"][0]
    assert picture_title(ctx, "1000001", "2_0") == "t 1000001 visit 2_0 — model demo"


def test_pictures_off_means_no_file_and_a_null_path(tmp_path, monkeypatch):
    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000002")
    ctx = work_context(tmp_path, qc_pictures=False)
    result = process_participant(item_for(_only_visit(tmp_path / "in")), ctx)
    assert result.ok and result.tables["qc"]
    assert {r["picture_path"] for r in result.tables["qc"]} == {None}
    assert not (ctx.store / PICTURES_DIR).exists()


def test_a_picture_that_cannot_be_written_keeps_the_metrics(tmp_path, monkeypatch, caplog):
    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000003")
    ctx = work_context(tmp_path)
    ctx.store.mkdir(parents=True)
    (ctx.store / PICTURES_DIR).write_text("a file where the pictures' folder should be")
    with caplog.at_level(logging.WARNING, logger="mrcohort.jobs.qc_picture"):
        result = process_participant(item_for(_only_visit(tmp_path / "in")), ctx)
    assert result.ok, result.failure
    assert result.ledger["outcome"] == "ok"
    assert len(result.tables["organ_metrics"]) == 40 and len(result.tables["qc"]) == 40
    assert {r["picture_path"] for r in result.tables["qc"]} == {None}
    (warning,) = [r for r in caplog.records if "no QC picture" in r.getMessage()]
    assert "1000003/2_0" in warning.getMessage() and "Error" in warning.getMessage()


def test_a_run_writes_one_picture_per_participant_visit(tmp_path, monkeypatch, client):
    """Through the Dask stages (prepare, segment, measure as separate tasks) into the store:
    the current ``qc`` rows name existing pictures, one per participant-visit."""
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    for pid in ("1000004", "1000005"):
        ukbb_zip(src, pid)
    run_job(job_config(src, store), client=client)
    qc = mrcohort.open_table("qc", store, columns=["participant_id", "picture_path"])
    paths = qc.groupby("participant_id")["picture_path"].unique()
    assert sorted(paths.index) == ["1000004", "1000005"]
    assert all(len(p) == 1 and _is_png(store / p[0]) for p in paths)
    pngs = sorted(p.name for p in (store / PICTURES_DIR).rglob("*") if p.is_file())
    assert pngs == ["1000004.2_0.png", "1000005.2_0.png"]


def test_a_picture_write_cut_short_leaves_a_temp_file_recovery_removes(tmp_path) -> None:
    """A worker killed while writing a picture leaves ``.tmp-*`` beside it: the next run's
    recovery deletes it (pictures are written where the flush's temp-file sweep looks)."""
    from mrcohort.jobs.flush import recover

    store = tmp_path / "store"
    folder = (store / picture_path("t", "k1", "1000001", "2_0")).parent
    folder.mkdir(parents=True)
    (folder / ".tmp-1000001.2_0.png-abc.tmp").write_bytes(b"half a picture")
    (folder / "1000001.2_0.png").write_bytes(b"a picture")
    recover(store)
    assert [p.name for p in folder.iterdir()] == ["1000001.2_0.png"]
