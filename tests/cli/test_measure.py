"""``mrcohort measure`` (mrcohort.cli.measure) on files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from mrcohort.biomarkers.participant import measure_participant
from mrcohort.cli import app
from mrcohort.cli.measure import output_paths
from mrcohort.phantoms import fixtures
from mrcohort.schemas.tables import SCHEMAS
from tests.builders import nifti

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
TOTALSEG = SHARED_DATA / "totalsegmentator"
runner = CliRunner()


def _write(arr: np.ndarray, spacing_zyx: tuple[float, float, float], path: Path) -> Path:
    return nifti(path, arr, spacing_mm=tuple(reversed(spacing_zyx)))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("measure")
    ph = fixtures.golden_phantom(1)
    return {
        "seg": _write(ph.labels, ph.spacing_mm, folder / "p001_seg.nii.gz"),
        "fat": _write(ph.fat, ph.spacing_mm, folder / "fat.nii.gz"),
        "water": _write(ph.water, ph.spacing_mm, folder / "water.nii.gz"),
        "in": _write(ph.in_phase, ph.spacing_mm, folder / "in.nii.gz"),
    }


def _dixon_args(files: dict[str, Path]) -> list[str]:
    return [
        "measure",
        "--seg",
        str(files["seg"]),
        "--fat",
        str(files["fat"]),
        "--water",
        str(files["water"]),
        "--in-phase",
        str(files["in"]),
    ]


def test_json_rows_have_the_table_columns_and_the_measured_values(files: dict[str, Path]) -> None:
    result = runner.invoke(app, [*_dixon_args(files), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert list(payload) == ["organ_metrics", "vessel_metrics", "qc"]
    for name, rows in payload.items():
        assert rows and all(list(r) == SCHEMAS[name].names for r in rows), name
    ph = fixtures.golden_phantom(1)
    direct = measure_participant(
        ph.labels, spacing_mm=ph.spacing_mm, fat=ph.fat, water=ph.water, in_phase=ph.in_phase
    )
    organ = {r["label_name"]: r for r in payload["organ_metrics"]}
    ff = {r.label_name: r for r in direct.fat_fractions or ()}
    assert organ["liver"]["ff_median"] == pytest.approx(ff["liver"].ff_median, rel=1e-12)
    assert organ["liver"]["participant_id"] == "p001_seg"
    assert organ["liver"]["sequence"] == "dixon"
    assert organ["gallbladder"]["ff_median"] is None  # NaN -> null
    vessels = {r["label_name"]: r for r in payload["vessel_metrics"]}
    tort = {r.label_name: r for r in direct.tortuosity}
    assert vessels["left_iliac_artery"]["tortuosity_index"] == pytest.approx(
        tort["left_iliac_artery"].tortuosity_index, rel=1e-9
    )
    qc = {r["label_name"]: r for r in payload["qc"]}
    assert qc["aorta"]["qc_flags"] == "fragmented"


def test_out_writes_three_parquet_files_with_declared_schemas(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "res" / "p001.parquet"
    result = runner.invoke(app, [*_dixon_args(files), "--out", str(out), "--cohort", "study"])
    assert result.exit_code == 0, result.output
    paths = output_paths(out)
    assert paths["organ_metrics"] == out
    assert paths["qc"] == tmp_path / "res" / "p001.qc.parquet"
    for name, path in paths.items():
        table = pq.read_table(path)
        assert table.schema.equals(SCHEMAS[name], check_metadata=False), name
        assert set(table.column("cohort").to_pylist()) == {"study"}


def test_without_images_only_geometry(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["measure", "--seg", str(files["seg"]), "--json"])
    assert result.exit_code == 0, result.output
    organ = json.loads(result.stdout)["organ_metrics"]
    assert all(r["ff_median"] is None for r in organ)
    assert {r["sequence"] for r in organ} == {"other"}


def test_plain_summary(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["measure", "--seg", str(files["seg"])])
    assert result.exit_code == 0, result.output
    assert "liver" in result.stdout and "left_iliac_artery: TI 1.2" in result.stdout


def test_errors(files: dict[str, Path], tmp_path: Path) -> None:
    other = fixtures.golden_phantom(2)  # NAKO grid: another shape and spacing
    wrong = _write(other.fat, other.spacing_mm, tmp_path / "wrong.nii.gz")
    args = [
        "measure",
        "--seg",
        str(files["seg"]),
        "--fat",
        str(wrong),
        "--water",
        str(files["water"]),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "GRID_MISMATCH" in result.output
    result = runner.invoke(app, ["measure", "--seg", str(tmp_path / "nope.nii.gz")])
    assert result.exit_code == 2 and "FILE_NOT_FOUND" in result.output
    result = runner.invoke(app, ["measure", "--seg", str(files["seg"]), "--fat", str(files["fat"])])
    assert result.exit_code == 2 and "MISSING_CHANNEL" in result.output
    both = ["measure", "--seg", str(files["seg"]), "--json", "--out", str(tmp_path / "x.parquet")]
    assert runner.invoke(app, both).exit_code == 2
    assert (
        runner.invoke(app, ["measure", "--seg", str(files["seg"]), "--out", "x.csv"]).exit_code == 2
    )
    bad_id = ["measure", "--seg", str(files["seg"]), "--participant-id", "a/b"]
    result = runner.invoke(app, bad_id)
    assert result.exit_code == 2 and "BAD_PARTICIPANT_ID" in result.output


def test_participant_id_from_the_file_name_must_be_an_id(
    files: dict[str, Path], tmp_path: Path
) -> None:
    dotted = tmp_path / "sub.01.nii.gz"
    shutil.copyfile(files["seg"], dotted)
    result = runner.invoke(app, ["measure", "--seg", str(dotted), "--json"])
    assert result.exit_code == 2
    assert "from the --seg file name" in result.stderr and "--participant-id" in result.stderr
    named = ["measure", "--seg", str(dotted), "--participant-id", "sub01", "--json"]
    result = runner.invoke(app, named)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["qc"][0]["participant_id"] == "sub01"


def test_float_label_maps_must_hold_integers(tmp_path: Path) -> None:
    labels = np.zeros((6, 6, 6), np.float32)
    labels[2:4, 2:4, 2:4] = 5.0
    ok = _write(labels, (3.0, 2.0, 2.0), tmp_path / "ok.nii.gz")
    result = runner.invoke(app, ["measure", "--seg", str(ok), "--json"])
    assert result.exit_code == 0, result.output
    labels[0, 0, 0] = 0.5
    bad = _write(labels, (3.0, 2.0, 2.0), tmp_path / "bad.nii.gz")
    result = runner.invoke(app, ["measure", "--seg", str(bad), "--json"])
    assert result.exit_code == 2 and "BAD_LABELS" in result.output


@pytest.mark.shared_data
@pytest.mark.skipif(not TOTALSEG.is_dir(), reason=f"{TOTALSEG} not present (needs ../shared/data)")
def test_totalsegmentator_mr_mask_by_name() -> None:
    seg = TOTALSEG / "example_seg_mr.nii.gz"
    result = runner.invoke(app, ["measure", "--seg", str(seg), "--labels", "totalseg_mr", "--json"])
    assert result.exit_code == 0, result.output
    assert "intervertebral_discs" in result.stderr and "spinal_cord" in result.stderr
    organ = {r["label_name"]: r for r in json.loads(result.stdout)["organ_metrics"]}
    img = sitk.ReadImage(str(seg))
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(img)
    assert organ["liver"]["volume_ml"] == pytest.approx(stats.GetPhysicalSize(5) / 1000, rel=1e-6)
    assert organ["liver"]["model_key"] == "external-totalseg_mr"
