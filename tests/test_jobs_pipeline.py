"""The per-participant pipeline and the batch runner, without the real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort.records import ParticipantVisit, Rejected
from mrcohort.jobs import participant as pipeline
from mrcohort.jobs.participant import JobConfig, MeasureParams, measure_rows, process_participant
from mrcohort.jobs.run import run_cohort
from mrcohort.labels import MRSEG_LABEL_MAP, MRSEG_LABELS
from mrcohort.schemas.store import read_table


def _group(pid: str, path: Path) -> ParticipantVisit:
    return ParticipantVisit("ukbb", pid, "2_0", path, path.parent)


def _cfg(tmp_path: Path) -> JobConfig:
    return JobConfig(cohort="t", store=tmp_path / "store", model="unused", model_key="k1")


def test_not_a_zip_is_an_ingest_failure_row(tmp_path):
    bad = tmp_path / "1000001_20201_2_0.zip"
    bad.write_bytes(b"nope")
    result = process_participant(_group("1000001", bad), _cfg(tmp_path))
    assert result.organ_rows == []
    assert result.failure is not None
    assert (result.failure["stage"], result.failure["code"]) == ("ingest", "NOT_A_ZIP")
    assert result.failure["input_sha256"] is not None  # the bytes were hashed


class _FakeSegmenter:
    model_key = "k1"
    label_map = MRSEG_LABEL_MAP

    def segment(self, image: sitk.Image) -> sitk.Image:
        arr = (sitk.GetArrayFromImage(image) > 0).astype(np.uint8) * 5
        out = sitk.GetImageFromArray(arr)
        out.CopyInformation(image)
        return out


def _one_station_zip(tmp_path: Path, pid: str) -> Path:
    from mrcohort.phantoms.writers.ukbb import write_ukbb_zip

    rng = np.random.default_rng(0)
    stations = {}
    for ch in ("in", "opp", "w", "f"):
        imgs = []
        for k in range(2):
            img = sitk.GetImageFromArray(rng.uniform(10, 100, (6, 8, 9)).astype(np.float32))
            img.SetSpacing((2.0, 2.0, 3.0))
            img.SetOrigin((0.0, 0.0, k * 12.0))
            imgs.append(img)
        stations[ch] = imgs
    return write_ukbb_zip(tmp_path / f"{pid}_20201_2_0.zip", participant_id=pid, stations=stations)


def test_unexpected_error_keeps_its_stage(tmp_path, monkeypatch):
    zip_path = _one_station_zip(tmp_path, "1000002")
    import mrcohort.segmentation.predictor as predictor

    monkeypatch.setattr(predictor, "get_segmenter", lambda *a, **k: _FakeSegmenter())

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(pipeline, "measure_rows", broken)
    result = process_participant(_group("1000002", zip_path), _cfg(tmp_path))
    assert result.failure is not None
    assert result.failure["stage"] == "measure"
    assert result.failure["code"] == "UNEXPECTED_ERROR"
    assert "ZeroDivisionError: boom" in result.failure["message"]


def test_batch_on_dask_writes_rows_and_failures(tmp_path, monkeypatch):
    """Thread-based LocalCluster: a good and a bad participant, one table each."""
    from distributed import Client, LocalCluster

    import mrcohort.segmentation.predictor as predictor

    monkeypatch.setattr(predictor, "get_segmenter", lambda *a, **k: _FakeSegmenter())
    good = _one_station_zip(tmp_path, "1000003")
    bad = tmp_path / "1000004_20201_2_0.zip"
    bad.write_bytes(b"")
    tasks = [_group("1000003", good), _group("1000004", bad)]
    cfg = _cfg(tmp_path)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        summary = run_cohort(
            cfg,
            tasks,
            client=client,
            rejected=[Rejected(tmp_path / "junk.zip", "UNRECOGNISED_FILE", "bad name")],
        )
    assert summary.n_ok == 1 and summary.n_failed == 2
    rows = read_table(cfg.store, "organ_metrics").to_pandas()
    assert len(rows) == len(MRSEG_LABELS)
    liver = rows[rows["label_id"] == 5].iloc[0]
    # two 6-slice stations 12 mm apart stitch to 10 slices; the fake model labels them all
    assert liver["volume_ml"] == pytest.approx(10 * 8 * 9 * (2.0 * 2.0 * 3.0) / 1000)
    fails = read_table(cfg.store, "failures").to_pandas()
    codes = dict(zip(fails["participant_id"], fails["code"], strict=True))
    assert codes == {"1000004": "NOT_A_ZIP", "": "UNRECOGNISED_FILE"}
    # the segmentation was stored content-addressed under the model key
    assert list((cfg.store / "segmentations" / "k1").glob("*.nii.gz"))


def test_measure_rows_cover_every_label_with_units():
    labels = np.zeros((10, 12, 14), np.uint8)
    labels[2:8, 3:9, 4:10] = 5
    water = np.full(labels.shape, 900.0)
    fat = np.full(labels.shape, 100.0)
    rows = measure_rows(
        labels,
        {"w": water, "f": fat, "in": water + fat},
        spacing_mm=(3.0, 2.0, 2.0),
        params=MeasureParams(erosion_mm=0.0),
    )
    assert [r["label_id"] for r in rows] == list(MRSEG_LABELS)
    liver = rows[4]
    assert liver["volume_ml"] == pytest.approx(6 * 6 * 6 * 12 / 1000)
    assert liver["ff_median"] == pytest.approx(0.1)
    assert liver["label_group"] == "organ"
