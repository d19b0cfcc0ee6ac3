"""What a store must look like after any crash and the run that follows it, shared by the
kill-and-resume and fault-injection tests: the reference run's tables (same keys, same
values), no duplicated key, no temporary file, a consistent ledger."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mrcohort.io.files import sha256_file
from mrcohort.jobs.flush import DATA_TABLES, journal_dir
from mrcohort.jobs.participant import segmentation_path
from mrcohort.jobs.scratch import scratch_root
from mrcohort.schemas.store import read_table

#: Columns that differ between two runs of the same inputs.
VOLATILE = ["computed_at", "run_id"]
#: Tables compared with the reference, and the key that must be unique in each.
UNIQUE_KEYS = {
    "organ_metrics": ["participant_id", "visit", "label_id", "model_key", "measure_key"],
    "vessel_metrics": ["participant_id", "visit", "label_id", "model_key", "measure_key"],
    "qc": ["participant_id", "visit", "label_id", "model_key", "measure_key"],
    "failures": ["slot", "model_key", "measure_key"],
    "scans": ["participant_id", "visit", "sequence", "channel", "station"],
}


def ledger_files(store: Path) -> list[Path]:
    """The ledger's files: one per committed flush (or compacted group of flushes)."""
    return sorted(Path(store, "ledger").rglob("part-*.parquet"))


def journal_entries(store: Path) -> list[Path]:
    """Journal entries (not the temp file of one being written): flushes not finished."""
    return sorted(p for p in journal_dir(store).glob("*.json") if not p.name.startswith("."))


def write_cohort_folder(source: Path, good: Sequence[str], bad: Sequence[str]) -> None:
    """UK Biobank zips of the ``good`` participants and a broken zip (``NOT_A_ZIP``) for each
    of the ``bad`` ones."""
    from tests.builders import ukbb_zip

    for pid in good:
        ukbb_zip(source, pid)
    for pid in bad:
        (source / f"{pid}_20201_2_0.zip").write_bytes(b"not a zip " * 20)


def _hashable(value: object) -> object:
    """List cells (``direction``, ``qc_flags``) as text, so that frames sort."""
    return repr(list(value)) if isinstance(value, (list, tuple, np.ndarray)) else value


def frame(store: Path, table: str, *, measure_key: str | None = None) -> pd.DataFrame:
    """One table without its run-specific columns, sorted (only ``measure_key``'s rows)."""
    df = read_table(store, table).to_pandas()
    if measure_key is not None and "measure_key" in df.columns:
        df = df[df["measure_key"] == measure_key]
    df = df.drop(columns=VOLATILE)
    for col in df.select_dtypes(include="object").columns:
        df[col] = df[col].map(_hashable)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def assert_same_tables(store: Path, reference: Path, *, measure_key: str | None = None) -> None:
    """Every table compared has the reference's rows, values and all (``measure_key``: of
    that measurement only; ``scans`` belong to none and are compared whole)."""
    for table in UNIQUE_KEYS:
        got = frame(store, table, measure_key=measure_key)
        want = frame(reference, table, measure_key=measure_key)
        assert len(got) == len(want), f"{table}: {len(got)} rows, reference {len(want)}"
        pd.testing.assert_frame_equal(got, want, obj=table)


def assert_no_duplicates(store: Path) -> None:
    for table, key in UNIQUE_KEYS.items():
        df = read_table(store, table).to_pandas()
        dup = df[df.duplicated(key, keep=False)]
        assert dup.empty, f"{table}: duplicated {key}:\n{dup[key]}"


def assert_no_temp_files(store: Path) -> None:
    """No staging or temp file, no journal entry, no scratch left by any run."""
    staging = Path(store, ".staging")
    assert not staging.exists() or not any(staging.iterdir()), list(staging.iterdir())
    temp = [p.relative_to(store) for p in Path(store).rglob(".tmp-*")]
    assert not temp, f"temp files left: {temp}"
    journal = journal_dir(store)
    assert not journal.exists() or not any(journal.iterdir()), list(journal.iterdir())
    scratch = scratch_root(store, None)
    left = list(scratch.rglob("*")) if scratch.exists() else []
    assert not left, f"scratch left: {left[:5]}"


def ledger(store: Path) -> pd.DataFrame:
    return read_table(store, "ledger").to_pandas()


def assert_ledger_consistent(
    store: Path,
    *,
    good: Sequence[str],
    bad: dict[str, str],
    attempts_per_slot: int | None = 1,
) -> None:
    """The ledger says every input is done as it should be and agrees with the files:

    - the latest attempt of every good slot is ``ok``, of every bad one its failure code;
    - each slot has ``attempts_per_slot`` ledger rows per measurement (None: any number);
    - every data file belongs to a committed flush (its ledger file exists), no failures row
      is left of a slot whose latest attempt is ok;
    - each ok attempt's segmentation is in the store and hashes to what the ledger recorded.
    """
    df = ledger(store).sort_values("computed_at")
    slots = {f"{p}/2_0" for p in good} | {f"{p}/2_0" for p in bad}
    assert set(df["slot"]) == slots, sorted(set(df["slot"]) ^ slots)
    latest = df.groupby(["slot", "measure_key"]).tail(1).set_index("slot")
    for pid in good:
        rows = latest.loc[[f"{pid}/2_0"]]
        assert (rows["outcome"] == "ok").all(), rows[["outcome", "code"]]
    for pid, code in bad.items():
        assert set(latest.loc[[f"{pid}/2_0"], "code"]) == {code}
    if attempts_per_slot is not None:
        counts = df.groupby(["slot", "measure_key"]).size()
        assert (counts == attempts_per_slot).all(), counts[counts != attempts_per_slot]
    committed = {p.name for p in Path(store, "ledger").rglob("part-*.parquet")}
    for table in DATA_TABLES:
        orphans = [
            p.relative_to(store)
            for p in Path(store, table).rglob("part-*.parquet")
            if p.name not in committed
        ]
        assert not orphans, f"data files of no committed flush: {orphans}"
    failed_slots = set(read_table(store, "failures").to_pandas()["slot"].str.split("|").str[0])
    ok_slots = set(latest.index[latest["outcome"] == "ok"])
    assert not failed_slots & ok_slots, f"failures rows of ok slots: {failed_slots & ok_slots}"
    for row in latest[latest["outcome"] == "ok"].itertuples():
        path = segmentation_path(store, row.model_key, row.input_sha256)
        assert path.is_file(), f"{row.Index}: no segmentation {path}"
        assert sha256_file(path) == row.segmentation_sha256, f"{row.Index}: {path} changed"


def assert_recovered(
    store: Path,
    reference: Path,
    *,
    good: Sequence[str],
    bad: dict[str, str],
    attempts_per_slot: int | None = 1,
    measure_key: str | None = None,
) -> None:
    """Everything a store must be after a crash and the run that follows it."""
    assert_same_tables(store, reference, measure_key=measure_key)
    assert_no_duplicates(store)
    assert_no_temp_files(store)
    assert_ledger_consistent(store, good=good, bad=bad, attempts_per_slot=attempts_per_slot)
