"""The commands around a model: ``segment`` (files, ``--body-comp``), ``run --body-comp`` and
``measure --labels body_comp``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from mrcohort.cli import app


def test_segment_cli_writes_seg_files(tmp_path, tiny_model, mr_image):
    img_path = tmp_path / "scan.nii.gz"
    sitk.WriteImage(mr_image, str(img_path))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["segment", "--model", str(tiny_model), "--out", str(out), "--cpu", str(img_path)]
    )
    assert result.exit_code == 0, result.output
    seg = sitk.ReadImage(str(out / "scan_seg.nii.gz"))
    assert seg.GetSize() == (48, 40, 24)


def test_segment_cli_bad_image_is_one_line_error(tmp_path, tiny_model):
    flat = sitk.GetImageFromArray(np.zeros((20, 30), np.float32))  # a 2D image
    sitk.WriteImage(flat, str(tmp_path / "flat.nii.gz"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrcohort.cli",
            "segment",
            "--model",
            str(tiny_model),
            "--out",
            str(tmp_path / "o"),
            "--cpu",
            str(tmp_path / "flat.nii.gz"),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "BAD_DIMENSION" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_segment_body_comp(weights_root, tmp_path):
    img = sitk.GetImageFromArray(np.ones((16, 32, 32), np.float32))
    img.SetSpacing((3.5, 3.5, 5.0))
    sitk.WriteImage(img, str(tmp_path / "scan.nii.gz"))
    runner = CliRunner()
    args = ["segment", "--out", str(tmp_path / "out"), str(tmp_path / "scan.nii.gz")]
    ok = runner.invoke(app, [*args, "--model", str(weights_root), "--body-comp", "--cpu"])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "out" / "scan_seg.nii.gz").is_file()
    single = str(weights_root / "base")  # one model, not a weights root: no body_comp/
    bad = subprocess.run(
        [sys.executable, "-m", "mrcohort.cli", *args, "--model", single, "--body-comp"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "MODEL_NOT_FOUND" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr


def test_cli_run_body_comp_needs_a_body_comp_model(weights_root, tmp_path):
    """``run --body-comp`` resolves the weights root's body_comp/ before any work."""
    only_base = tmp_path / "only_base"
    shutil.copytree(weights_root / "base", only_base / "base")
    src = tmp_path / "empty_cohort"
    src.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrcohort.cli",
            "run",
            "--source",
            str(src),
            "--store",
            str(tmp_path / "store"),
            "--model",
            str(only_base),
            "--body-comp",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert (
        "MODEL_NOT_FOUND" in proc.stdout + proc.stderr and "body_comp/" in proc.stdout + proc.stderr
    )
    assert not (tmp_path / "store").exists()  # failed before touching the store


def test_measure_cli_body_comp_labels(phantom, tmp_path):
    seg = sitk.Image(phantom.body_comp)
    arr = sitk.GetArrayFromImage(seg)
    arr[0, 0, 0] = 77  # an id the body-composition map does not have: reported, not measured
    bad = sitk.GetImageFromArray(arr)
    bad.CopyInformation(seg)
    sitk.WriteImage(bad, str(tmp_path / "bc.nii.gz"))
    for ch, name in (("f", "fat"), ("w", "water")):
        sitk.WriteImage(phantom.reference[ch], str(tmp_path / f"{name}.nii.gz"))
    result = CliRunner().invoke(
        app,
        [
            "measure",
            "--seg",
            str(tmp_path / "bc.nii.gz"),
            "--fat",
            str(tmp_path / "fat.nii.gz"),
            "--water",
            str(tmp_path / "water.nii.gz"),
            "--labels",
            "body_comp",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "id_77" in result.output
    payload = json.loads(result.stdout)
    rows = {r["label_name"]: r for r in payload["organ_metrics"]}
    truth = {r["label_name"]: r for r in phantom.body_comp_truth}
    assert rows["gluteofemoral_fat"]["volume_ml"] == pytest.approx(
        truth["gluteofemoral_fat"]["volume_ml"], rel=0.02
    )
    # noise-free reference images: the fat fraction of pure subcutaneous fat is exact
    t_ff = truth["gluteofemoral_fat"]["fat_fraction"]
    assert rows["gluteofemoral_fat"]["ff_median"] == pytest.approx(t_ff, abs=1e-3)
    assert payload["vessel_metrics"] == []
