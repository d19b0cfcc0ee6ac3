"""The stages as separate steps: the hand-off through the scratch area and the worker's
cache, a measure on a worker that does not hold the stitched images, the scratch cleaned."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort import discover
from mrcohort.jobs import stages
from mrcohort.jobs.participant import ParticipantResult
from mrcohort.jobs.scratch import CACHE, PreparedCache, read_channel, write_channel
from tests.builders import ukbb_zip
from tests.jobs.fakes import item_for, use_fake_segmenter, work_context


def _image(shape=(5, 6, 7), value: float = 1.0) -> sitk.Image:
    img = sitk.GetImageFromArray(np.full(shape, value, np.float32))
    img.SetSpacing((2.232142857142857, 2.2321428, 3.0000001))
    img.SetOrigin((-250.12345678901, 17.1, -1030.000001))
    c, s = 0.9998476951563913, 0.01745240643728351  # 1 degree about x
    img.SetDirection((1, 0, 0, 0, c, -s, 0, s, c))
    return img


def test_a_channel_comes_back_bit_for_bit_with_its_exact_geometry(tmp_path: Path) -> None:
    img = _image()
    arr = sitk.GetArrayFromImage(img)
    arr[1, 2, 3] = 7.5
    img2 = sitk.GetImageFromArray(arr)
    img2.CopyInformation(img)
    write_channel(tmp_path, "in", img2)
    back = read_channel(tmp_path, "in")
    assert np.array_equal(sitk.GetArrayFromImage(back), arr)
    assert back.GetSpacing() == img.GetSpacing() and back.GetOrigin() == img.GetOrigin()
    assert back.GetDirection() == img.GetDirection()


def test_the_cache_drops_the_least_recently_used_beyond_its_bytes() -> None:
    one = 5 * 6 * 7 * 4  # bytes of one float32 image
    cache = PreparedCache(max_bytes=2 * one)
    for key in "abc":
        cache.put(key, {"in": _image()})
        if key == "b":
            assert cache.get("a") is not None  # a is now the most recently used
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None


def test_measure_elsewhere_reads_again_and_equals_measure_here(tmp_path, monkeypatch) -> None:
    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000002")
    (pv,) = discover("ukbb", tmp_path / "in").pvs
    ctx = work_context(tmp_path)
    results = []
    for elsewhere in (False, True):
        item = item_for(pv)
        prepared = stages.prepare(item, ctx)
        assert isinstance(prepared, stages.Prepared) and prepared.needs_segment
        assert (Path(prepared.scratch) / "in.npy").is_file()
        segmented = stages.segment(prepared, ctx)
        assert isinstance(segmented, stages.Segmented)
        if elsewhere:  # the measuring worker never saw the stitched images
            CACHE.pop(prepared.scratch)
        result = stages.measure(prepared, segmented, ctx)
        assert result.failure is None, result.failure
        assert not Path(prepared.scratch).exists() and CACHE.get(prepared.scratch) is None
        results.append(result)
    here, there = results
    for table in ("organ_metrics", "vessel_metrics", "qc"):
        drop = ("computed_at",)
        rows = [[{k: v for k, v in r.items() if k not in drop} for r in res.tables[table]]
                for res in (here, there)]  # fmt: skip
        assert rows[0] == rows[1], table
    assert there.ledger["seconds_ingest"] > 0 and there.ledger["action"] == "segment"


def test_segment_without_its_image_is_one_retryable_failure(tmp_path, monkeypatch) -> None:
    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000003")
    (pv,) = discover("ukbb", tmp_path / "in").pvs
    ctx = work_context(tmp_path)
    prepared = stages.prepare(item_for(pv), ctx)
    assert isinstance(prepared, stages.Prepared)
    stages.discard(prepared)  # the scratch area was cleaned under the run
    result = stages.segment(prepared, ctx)
    assert isinstance(result, ParticipantResult) and result.failure is not None
    assert (result.failure["stage"], result.failure["code"]) == ("segment", "SCRATCH_MISSING")
    assert result.ledger["retryable"] is True


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="a tmpfs store needs root (mount)"
)
def test_a_full_disk_under_segment_is_one_retryable_disk_full_row(tmp_path, monkeypatch) -> None:
    """A real ENOSPC: the store is a small tmpfs, filled up after prepare; the segmentation
    cannot be written: ``DISK_FULL`` naming the file, retried by the next run, nothing left."""
    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000003")
    (pv,) = discover("ukbb", tmp_path / "in").pvs
    ctx = work_context(tmp_path)
    ctx.store.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(ctx.store)], check=True)
    try:
        prepared = stages.prepare(item_for(pv), ctx)
        assert isinstance(prepared, stages.Prepared)
        with open(ctx.store / "filler", "wb") as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
        result = stages.segment(prepared, ctx)
        assert isinstance(result, ParticipantResult) and result.failure is not None
        assert (result.failure["stage"], result.failure["code"]) == ("segment", "DISK_FULL")
        assert "segmentations/" in str(result.failure["message"])
        assert result.ledger["retryable"] is True
        assert not list((ctx.store / "segmentations").rglob("*.nii.gz"))
        assert not [p for p in (ctx.store / "scratch").rglob("*") if p.is_file()]
    finally:
        subprocess.run(["umount", "-l", str(ctx.store)], check=False)
