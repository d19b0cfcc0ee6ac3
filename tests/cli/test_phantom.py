"""``mrcohort phantom`` (mrcohort.cli.phantom): layouts, and ``nifti`` as a hidden alias."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mrcohort.cli import app
from mrcohort.cli.common import Layout
from mrcohort.cli.phantom import parse_layout

runner = CliRunner()


def test_parse_layout() -> None:
    assert parse_layout("nifti") is Layout.manifest
    assert [parse_layout(v.value) for v in Layout] == list(Layout)
    with pytest.raises(Exception, match="not one of ukbb, nako, manifest"):
        parse_layout("dicom")


@pytest.mark.parametrize("layout", ["manifest", "nifti"])
def test_manifest_layout_and_its_old_name(tmp_path: Path, layout: str) -> None:
    out = tmp_path / layout
    args = ["phantom", "--out", str(out), "--layout", layout, "--participants", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "(manifest, mini)" in result.stdout
    manifest = pd.read_csv(out / "manifest.csv", dtype=str)
    assert set(manifest["channel"]) == {"in", "opp", "w", "f"}
    assert all((out / p).is_file() for p in manifest["path"])


def test_help_hides_the_old_layout_name() -> None:
    text = runner.invoke(app, ["phantom", "--help"]).stdout
    assert "<ukbb|nako|manifest>" in text and "nifti" not in text


def test_unknown_layout_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["phantom", "--out", str(tmp_path), "--layout", "dicom"])
    assert result.exit_code == 2 and "not one of ukbb, nako, manifest" in result.output
