"""``mrcohort ingest`` and ``mrcohort stitch`` (mrcohort.cli.cohort)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from mrcohort.cli import app
from mrcohort.schemas.store import read_table
from tests.builders import nifti, stations_dict, ukbb_zip

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
QMRI = SHARED_DATA / "qmritools"
runner = CliRunner()


def volume() -> np.ndarray:
    z, y, x = np.mgrid[0:40, 0:12, 0:14].astype(float)
    return (100 + 20 * np.sin(x / 3) + 15 * np.cos(y / 4) + 10 * np.sin(z / 5)).astype(np.float32)


def write_stations(folder: Path, cuts=((0, 16), (12, 28), (24, 40))) -> list[Path]:
    """Station files cut along z from ``volume()``; overlaps of 4 slices."""
    return [
        nifti(folder / f"station{i}.nii.gz", volume()[lo:hi], z0=3.0 * lo)
        for i, (lo, hi) in enumerate(cuts)
    ]


def test_stitch_command_any_order(tmp_path: Path) -> None:
    paths = write_stations(tmp_path / "in")
    out = tmp_path / "out.nii.gz"
    result = runner.invoke(app, ["stitch", "--out", str(out), *map(str, paths[::-1])])
    assert result.exit_code == 0, result.output
    img = sitk.ReadImage(str(out))
    assert img.GetSize() == (14, 12, 40)
    np.testing.assert_allclose(sitk.GetArrayFromImage(img), volume(), atol=1e-3)
    assert "3 stations" in result.stdout


def test_stitch_command_like_and_spacing(tmp_path: Path) -> None:
    paths = write_stations(tmp_path / "in")
    like = tmp_path / "like.nii.gz"
    grid = sitk.Image((7, 6, 20), sitk.sitkFloat32)
    grid.SetSpacing((4.0, 4.0, 6.0))
    sitk.WriteImage(grid, str(like))
    out = tmp_path / "out.nii.gz"
    result = runner.invoke(
        app, ["stitch", "--out", str(out), "--like", str(like), *map(str, paths)]
    )
    assert result.exit_code == 0, result.output
    img = sitk.ReadImage(str(out))
    assert (img.GetSize(), img.GetSpacing()) == (grid.GetSize(), grid.GetSpacing())

    out2 = tmp_path / "out2.nii.gz"
    result = runner.invoke(
        app, ["stitch", "--out", str(out2), "--spacing", "1,1,1.5", *map(str, paths)]
    )
    assert result.exit_code == 0, result.output
    assert sitk.ReadImage(str(out2)).GetSpacing() == (1.0, 1.0, 1.5)
    bad = runner.invoke(app, ["stitch", "--out", str(out2), "--spacing", "1,1", str(paths[0])])
    assert bad.exit_code == 2 and "--spacing" in bad.output


def test_stitch_command_errors(tmp_path: Path) -> None:
    paths = write_stations(tmp_path / "in", cuts=((0, 12), (28, 40)))
    out = tmp_path / "out.nii.gz"
    result = runner.invoke(app, ["stitch", "--out", str(out), *map(str, paths)])
    assert result.exit_code == 2 and "STATION_GAP" in result.output and not out.exists()
    result = runner.invoke(app, ["stitch", "--out", str(out), "--allow-gaps", *map(str, paths)])
    assert result.exit_code == 0
    result = runner.invoke(app, ["stitch", "--out", str(out), str(tmp_path / "none.nii.gz")])
    assert result.exit_code == 2 and "FILE_NOT_FOUND" in result.output


@pytest.mark.shared_data
@pytest.mark.skipif(not QMRI.is_dir(), reason=f"{QMRI} not present (needs ../shared/data)")
def test_stitch_command_join_stations(tmp_path: Path) -> None:
    paths = [str(QMRI / f"Join_{i}.nii.gz") for i in (3, 7, 1, 5, 2, 6, 4)]
    out = tmp_path / "legs.nii.gz"
    result = runner.invoke(app, ["stitch", "--out", str(out), *paths])
    assert result.exit_code == 0, result.output
    assert result.output.count("overlap 5 slices") == 6
    assert "Join_1.nii.gz -> Join_2.nii.gz" in result.output
    assert sitk.ReadImage(str(out)).GetSize() == (320, 320, 187)


def _ingest_args(src: Path) -> list[str]:
    return ["ingest", "--layout", "ukbb", "--source", str(src), "--cohort", "uk"]


def test_ingest_command(tmp_path: Path) -> None:
    src = tmp_path / "src"
    ukbb_zip(src, "1000001", stations=stations_dict(2))
    (src / "1000002_20201_2_0.zip").write_text("junk")
    store = tmp_path / "store"
    result = runner.invoke(app, [*_ingest_args(src), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "1 of 2 participant-visits read, 8 scans rows" in result.stdout
    assert "1000002/2_0 [ingest] NOT_A_ZIP" in result.stderr
    assert read_table(store, "scans").num_rows == 8
    missing = runner.invoke(app, [*_ingest_args(tmp_path / "nope"), "--store", str(store)])
    assert missing.exit_code == 2 and "FILE_NOT_FOUND" in missing.output


def test_ingest_out_is_a_hidden_alias_of_store(tmp_path: Path) -> None:
    src = tmp_path / "src"
    ukbb_zip(src, "1000001", stations=stations_dict(2))
    store = tmp_path / "store"
    result = runner.invoke(app, [*_ingest_args(src), "--out", str(store)])
    assert result.exit_code == 0, result.output
    assert read_table(store, "scans").num_rows == 8
    assert "--out" not in runner.invoke(app, ["ingest", "--help"]).stdout
    both = runner.invoke(app, [*_ingest_args(src), "--out", str(store), "--store", str(store)])
    assert both.exit_code == 2 and "give one of them" in both.stderr
    neither = runner.invoke(app, _ingest_args(src))
    assert neither.exit_code == 2 and "missing option --store" in neither.stderr


def test_ingest_refuses_a_bad_cohort_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    ukbb_zip(src, "1000001", stations=stations_dict(2))
    args = ["ingest", "--layout", "ukbb", "--source", str(src), "--cohort", "a/b"]
    result = runner.invoke(app, [*args, "--store", str(tmp_path / "store")])
    assert result.exit_code == 2 and "cohort name 'a/b'" in result.stderr
