"""``mrcohort segment`` (mrcohort.cli.segment): files and folders of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import typer
from typer.testing import CliRunner

from mrcohort.cli import app
from mrcohort.cli.segment import expand_folders
from tests.builders import nifti

runner = CliRunner()


def _image(path: Path) -> Path:
    arr = np.random.default_rng(0).uniform(0, 100, (12, 16, 20)).astype(np.float32)
    return nifti(path, arr)


def test_a_folder_means_every_image_file_in_it_sorted(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    for name in ("b.nii.gz", "a.mha", "c.nrrd", "d.nii"):
        _image(folder / name)
    (folder / "notes.txt").write_text("not an image")
    _image(folder / "deeper" / "e.nii.gz")  # not recursive
    single = _image(tmp_path / "z.nii.gz")
    got = expand_folders([single, folder])
    assert got == [single, *(folder / n for n in ("a.mha", "b.nii.gz", "c.nrrd", "d.nii"))]


def test_a_folder_without_images_and_a_missing_path_fail(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(typer.Exit):
        expand_folders([empty])
    result = runner.invoke(app, ["segment", "--out", str(tmp_path / "o"), str(empty)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: folder") and len(result.stderr.splitlines()) == 1
    result = runner.invoke(app, ["segment", "--out", str(tmp_path / "o"), str(tmp_path / "x")])
    assert result.exit_code == 2 and "not found" in result.stderr


def test_names_that_would_clash_fail_before_the_model_loads(tmp_path: Path) -> None:
    a = _image(tmp_path / "one" / "scan.nii.gz")
    b = _image(tmp_path / "two" / "scan.mha")
    result = runner.invoke(
        app, ["segment", "--model", "nope", "--out", str(tmp_path), str(a), str(b)]
    )
    assert result.exit_code == 2 and "scan_seg.nii.gz" in result.stderr


@pytest.mark.slow
def test_segment_a_folder_with_the_demo_model(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    for name in ("a.nii.gz", "b.mha"):
        _image(folder / name)
    out = tmp_path / "out"
    args = ["segment", "--model", "demo", "--fast", "--cpu", "--out", str(out), str(folder)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 2 segmentations" in result.stdout
    for name in ("a", "b"):
        seg = sitk.ReadImage(str(out / f"{name}_seg.nii.gz"))
        assert seg.GetSize() == (20, 16, 12)
