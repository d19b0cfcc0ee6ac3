"""Tests for mrcohort.cohort.layouts.nako: visit folders discovered, DICOM / image files read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort.layouts import discover, load_layout
from mrcohort.cohort.load import load_visit
from mrcohort.cohort.stitch import stitch_channels
from mrcohort.phantoms import write_nako_participant


def test_discovery_rejects_bad_folders_and_stray_files(tmp_path: Path, mini_nako) -> None:
    root = tmp_path / "nako"
    write_nako_participant(mini_nako, root, fmt="nifti", haste=False)
    write_nako_participant(mini_nako, root, visit="2", fmt="nifti", haste=False)
    (root / "p 1" / "1").mkdir(parents=True)
    (root / mini_nako.participant_id / "v.1").mkdir()
    (root / "stray.txt").write_text("x")
    (root / ".hidden").mkdir()
    pvs, rejected = discover("nako", root)
    pid = mini_nako.participant_id
    assert [(pv.participant_id, pv.visit) for pv in pvs] == [(pid, "1"), (pid, "2")]
    assert pvs[0].source == root / pid / "1" and pvs[0].root == root
    by_code = {r.code: r for r in rejected}
    assert sorted(by_code) == ["BAD_PARTICIPANT_ID", "BAD_VISIT", "UNRECOGNISED_FILE"]
    assert by_code["BAD_PARTICIPANT_ID"].participant_id == ""  # never taken from a bad name
    assert by_code["BAD_VISIT"].participant_id == pid
    assert "'v.1'" in by_code["BAD_VISIT"].message


@pytest.mark.parametrize("fmt", [pytest.param("dicom", marks=pytest.mark.slow), "nifti"])
def test_read_and_stitch(tmp_path: Path, mini_nako, fmt: str) -> None:
    p = mini_nako
    root = tmp_path / "nako"
    write_nako_participant(p, root, fmt=fmt)
    (pv,) = discover("nako", root).pvs
    visit = load_visit(pv)
    assert sorted(visit.sequences) == ["dixon", "t2haste"] and not visit.errors
    stations = [s for ch in visit.sequences["dixon"].values() for s in ch]
    assert {s.format for s in stations} == {fmt}
    assert all(s.source.startswith(f"{p.participant_id}/1/") for s in stations)
    stitched = stitch_channels(visit.images("dixon"))
    ref = p.reference["in"]
    got = sitk.Resample(stitched["in"], ref, sitk.Transform(), sitk.sitkLinear, 0.0)
    err = sitk.GetArrayFromImage(got) - sitk.GetArrayFromImage(ref)
    noise = 1000.0 / 20.0
    assert np.sqrt(np.mean(err**2)) < 1.5 * noise  # stations back in their places
    t2 = stitch_channels(visit.images("t2haste"))["t2"]
    assert t2.GetSpacing()[2] == pytest.approx(2 * ref.GetSpacing()[2], abs=1e-4)


def test_folder_layout_without_visit_level(tmp_path: Path, mini_nako) -> None:
    root = tmp_path / "flat"
    write_nako_participant(mini_nako, root, fmt="nifti", haste=False)
    inner = root / mini_nako.participant_id / "1"
    for f in inner.iterdir():
        f.rename(inner.parent / f.name)
    inner.rmdir()
    settings = tmp_path / "layouts.yaml"
    settings.write_text(
        "nako:\n"
        "  folders: '{participant_id}'\n"
        "  default_visit: baseline\n"
        "  series:\n"
        "    - {pattern: '(?i)_in_', sequence: dixon, channel: in}\n"
        "    - {pattern: '(?i)_opp_', sequence: dixon, channel: opp}\n"
        "    - {pattern: '(?i)_w_', sequence: dixon, channel: w}\n"
        "    - {pattern: '(?i)_f_', sequence: dixon, channel: f}\n"
    )
    config = load_layout("nako", settings)
    (pv,) = discover("nako", root, config=config).pvs
    assert pv.visit == "baseline"
    dixon = load_visit(pv, config=config).images("dixon")
    assert [len(v) for v in dixon.values()] == [4] * 4
