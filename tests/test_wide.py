"""The wide table (`mrcohort.wide_table`, ``mrcohort export --wide``): one row per
participant-visit, equal to an independent pandas pivot of the long current rows; absent
structures null, never 0; the data dictionary beside the export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import mrcohort
from mrcohort.cli import app
from mrcohort.devtools.synthetic_store import write_synthetic_store
from mrcohort.jobs.run import run_job
from tests.builders import ukbb_zip
from tests.jobs.fakes import FAKE_LABEL, job_config, use_fake_segmenter

_ORGAN = ("volume_ml", "ff_median", "ff_mean", "ff_p25", "ff_p75")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """40 participant-visits with vessels and tortuosity; label 3 (left kidney) empty."""
    store = tmp_path_factory.mktemp("wide") / "store"
    write_synthetic_store(store, 40, flush_every=7, empty_labels=(3, 16))
    return store


def _pivot(long: pd.DataFrame, metrics: tuple[str, ...], empty: pd.Series) -> pd.DataFrame:
    """The independent implementation: pandas pivot, empty labels blanked."""
    long = long.copy()
    long.loc[empty, list(metrics)] = np.nan
    wide = long.pivot_table(index="participant_id", columns="label_name", values=list(metrics),
                            aggfunc="first", dropna=False)  # fmt: skip
    wide.columns = [f"{label}_{metric}" for metric, label in wide.columns]
    return wide


def test_wide_equals_a_pandas_pivot_of_the_current_rows(synthetic: Path) -> None:
    wide = mrcohort.wide_table(synthetic).set_index("participant_id")
    organ = mrcohort.open_table("organ_metrics", synthetic)
    assert len(wide) == 40 and wide.index.is_unique
    expected = _pivot(organ, _ORGAN, organ["is_empty"])
    for col in expected.columns:
        np.testing.assert_allclose(
            wide[col].astype(float), expected.loc[wide.index, col].astype(float), err_msg=col
        )
    vessels = mrcohort.open_table("vessel_metrics", synthetic)
    ti = _pivot(vessels, ("tortuosity_index",), vessels["largest_component_fraction"].isna())
    right = wide["right_iliac_artery_tortuosity_index"].astype(float)
    np.testing.assert_allclose(right, ti.loc[wide.index, "right_iliac_artery_tortuosity_index"])
    assert right.notna().all()


def test_absent_structures_are_null_never_zero(synthetic: Path) -> None:
    wide = mrcohort.wide_table(synthetic)
    for metric in _ORGAN:
        assert wide[f"left_kidney_{metric}"].isna().all()
    assert wide["left_iliac_artery_n_components_26"].isna().all()  # empty vessel: not 0
    assert wide["left_iliac_artery_tortuosity_index"].isna().all()
    assert (wide["aorta_n_components_26"] == 1).all()
    assert str(wide["aorta_n_components_26"].dtype) == "Int32"  # nullable, not float
    assert "aorta_tortuosity_index" not in wide  # measured for the iliac arteries only
    assert (~wide["qc_pass"]).all()  # the empty kidney is flagged missing
    assert set(wide["qc_flags"]) == {"left_kidney:missing;left_iliac_artery:missing"}


def test_sequences_are_chosen_not_mixed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_synthetic_store(store, 3, sequences=("dixon", "t2haste"))
    with pytest.raises(ValueError, match="several sequences"):
        mrcohort.wide_table(store)
    one = mrcohort.wide_table(store, sequence="t2haste", to="arrow")
    assert one.num_rows == 3 and set(one.column("sequence").to_pylist()) == {"t2haste"}
    assert one.schema.field("liver_volume_ml").metadata[b"unit"] == b"ml"


def test_wide_from_a_job_run_names_the_model(tmp_path, monkeypatch, client) -> None:
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    for pid in ("1000001", "1000002"):
        ukbb_zip(src, pid)
    run_job(job_config(src, store), client=client)
    wide = mrcohort.wide_table(store, model="demo")
    organ = mrcohort.open_table("organ_metrics", store)
    liver = organ[organ["label_id"] == FAKE_LABEL].set_index("participant_id")["volume_ml"]
    assert list(wide["model_name"]) == ["demo", "demo"]
    assert wide.set_index("participant_id")["liver_volume_ml"].equals(
        liver.loc[["1000001", "1000002"]].rename("liver_volume_ml")
    )
    assert wide["spleen_volume_ml"].isna().all()  # the fake model paints the liver only
    assert len(mrcohort.wide_table(store, model="another")) == 0


def test_export_writes_the_table_and_its_dictionary(synthetic: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "wide.parquet"
    done = runner.invoke(app, ["export", "--store", str(synthetic), "--wide", "--out", str(out)])
    assert done.exit_code == 0, done.output
    table = pq.read_table(out)
    sidecar = pd.read_csv(tmp_path / "wide.dictionary.csv")
    assert list(sidecar["column"]) == table.column_names and table.num_rows == 40
    liver = sidecar.set_index("column").loc["liver_volume_ml"]
    assert (liver["unit"], liver["source_table"], liver["label"]) == (
        "ml",
        "organ_metrics",
        "liver",
    )
    assert table.schema.field("liver_ff_median").metadata[b"unit"] == b"1"
    csv = tmp_path / "wide.csv"
    assert runner.invoke(app, ["export", "--store", str(synthetic), "--wide", "--out",
                               str(csv)]).exit_code == 0  # fmt: skip
    back = pd.read_csv(csv)
    assert back["left_kidney_volume_ml"].isna().all() and len(back) == 40  # empty cell, not 0
    long = tmp_path / "qc.csv"
    assert runner.invoke(app, ["export", "--store", str(synthetic), "--table", "qc", "--out",
                               str(long)]).exit_code == 0  # fmt: skip
    assert len(pd.read_csv(long)) == 40 * 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wide", "--table", "qc"], "exactly one of --wide and --table"),
        ([], "exactly one of --wide and --table"),
        (["--wide", "--out-format"], "No such option"),
        (["--table", "nope"], "unknown table"),
    ],
)
def test_export_refuses_bad_arguments(synthetic: Path, tmp_path: Path, args, message) -> None:
    out = ["--out", str(tmp_path / "x.parquet")]
    done = CliRunner().invoke(app, ["export", "--store", str(synthetic), *out, *args])
    assert done.exit_code == 2 and message in done.output, done.output
    assert not (tmp_path / "x.parquet").exists()


def test_export_refuses_a_bad_file_name_and_a_missing_store(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["export", "--store", str(tmp_path), "--wide", "--out", "w.xlsx"])
    assert bad.exit_code == 2 and "must end in .parquet or .csv" in bad.stderr
    gone = runner.invoke(
        app, ["export", "--store", str(tmp_path / "no"), "--wide", "--out", "w.csv"]
    )
    assert gone.exit_code == 2 and "does not exist" in gone.stderr
