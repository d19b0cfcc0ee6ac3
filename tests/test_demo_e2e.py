"""End to end: `mrcohort demo` on a small phantom cohort with bad zips mixed in."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pydicom
import pytest

from mrcohort.labels import MRSEG_LABELS
from mrcohort.phantoms import make_participant
from mrcohort.phantoms.writers.ukbb import write_ukbb_zip
from mrcohort.schemas.store import read_table
from mrcohort.schemas.tables import schema

pytestmark = pytest.mark.slow

N_GOOD = 2
BAD = {
    "1000101_20201_2_0.zip": "NOT_A_ZIP",
    "1000102_20201_2_0.zip": "EMPTY_ZIP",
    "1000103_20201_2_0.zip": "MISSING_CHANNEL",
}


def _write_bad_zips(folder: Path) -> None:
    (folder / "1000101_20201_2_0.zip").write_bytes(b"this is not a zip file")
    with zipfile.ZipFile(folder / "1000102_20201_2_0.zip", "w"):
        pass
    # a complete zip, rewritten without its fat (F) series
    p = make_participant(99, 0, "mini")
    full = write_ukbb_zip(
        folder / "tmp" / "full.zip", participant_id="1000103", stations=p.stations
    )
    with zipfile.ZipFile(full) as src:
        members = {name: src.read(name) for name in src.namelist()}
    dropped = {
        name
        for name, data in members.items()
        if name.endswith(".dcm")
        and pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SeriesDescription.endswith(
            "_F"
        )
    }
    # keep the manifest consistent with the files, so the missing channel is the only fault
    manifest = members["manifest.csv"].decode().splitlines(keepends=True)
    members["manifest.csv"] = "".join(
        line for line in manifest if not any(d in line for d in dropped)
    ).encode()
    with zipfile.ZipFile(folder / "1000103_20201_2_0.zip", "w") as dst:
        for name, data in members.items():
            if name not in dropped:
                dst.writestr(name, data)
    full.unlink()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("demo")
    _write_bad_zips(out)  # `demo` adds the good participants beside them
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrcohort.cli",
            "demo",
            "--out",
            str(out),
            "--participants",
            str(N_GOOD),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return out, proc


def test_demo_exits_zero_with_warning_line(demo_run):
    _, proc = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"WARNING: {len(BAD)} participants failed" in proc.stderr


def test_organ_metrics_schema_and_one_row_per_participant_label(demo_run):
    out, _ = demo_run
    files = list((out / "tables" / "organ_metrics").rglob("*.parquet"))
    assert files and all("cohort=demo" in str(f) for f in files)
    table = read_table(out / "tables", "organ_metrics")
    assert table.schema.equals(schema("organ_metrics"), check_metadata=False)
    # the files themselves hold the declared columns (less the hive partition keys)
    raw = ds.dataset(files, format="parquet").schema
    declared = schema("organ_metrics")
    for name in raw.names:
        assert raw.field(name).type == declared.field(name).type, name
    df = table.to_pandas()
    assert len(df) == N_GOOD * len(MRSEG_LABELS)
    assert not df.duplicated(["participant_id", "visit", "label_id"]).any()
    assert set(df["participant_id"]) == {"1000001", "1000002"}
    assert df["model_key"].nunique() == 1 and df["input_sha256"].str.len().eq(64).all()


def test_liver_volume_and_fat_fraction_within_10_percent(demo_run):
    out, _ = demo_run
    df = read_table(out / "tables", "organ_metrics").to_pandas()
    truth = pd.read_csv(out / "truth.csv", dtype={"participant_id": str})
    m = df.merge(truth, on=["participant_id", "label_id"], suffixes=("", "_true"))
    liver = m[m["label_name"] == "liver"]
    assert len(liver) == N_GOOD
    for _, r in liver.iterrows():
        assert r["volume_ml"] == pytest.approx(r["volume_ml_true"], rel=0.10)
        assert r["ff_median"] == pytest.approx(r["fat_fraction"], rel=0.10)


def test_bad_zips_are_failure_rows_with_codes(demo_run):
    out, _ = demo_run
    fails = read_table(out / "tables", "failures").to_pandas()
    got = dict(zip(fails["participant_id"], fails["code"], strict=True))
    assert got == {name.split("_")[0]: code for name, code in BAD.items()}
    assert (fails["stage"] == "ingest").all()
    assert fails["message"].str.len().gt(0).all()


def test_notebook_runs_against_the_demo_tables(demo_run, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    out, _ = demo_run
    nb_path = Path(__file__).resolve().parents[1] / "notebooks" / "01_query_tables.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    os.environ["MRCOHORT_STORE"] = str(out / "tables")
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        del os.environ["MRCOHORT_STORE"]
    assert (out / "tables" / "liver_ff_hist.png").is_file()
