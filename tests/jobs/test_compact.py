"""``mrcohort compact``: the row set never changes, readers never see a row twice or missing
(a real reader process during a real compaction), a SIGKILLed compaction is finished by the
next recovery, later runs still supersede rows of compacted flushes, and a held store is
refused with its holder named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from mrcohort.cli import app
from mrcohort.devtools.synthetic_store import write_synthetic_store
from mrcohort.jobs.compact import FLUSH_TABLES, compact, journal_dir, plan_groups
from mrcohort.jobs.flush import recover
from mrcohort.jobs.lock import StoreLock
from mrcohort.jobs.run import run_job
from mrcohort.schemas.store import STAGING_DIR, read_table
from tests.builders import ukbb_zip
from tests.jobs.fakes import job_config, use_fake_segmenter

_TABLES = ("organ_metrics", "vessel_metrics", "qc", "ledger")


def _rows(store: Path) -> dict[str, pa.Table]:
    """Every table's rows, sorted, without the ledger's flush_id (which compaction renames)."""
    out = {}
    for name in _TABLES:
        table = read_table(store, name)
        if name == "ledger":
            table = table.drop_columns(["flush_id"])
        keys = [(c, "ascending") for c in ("cohort", "participant_id", "visit")]
        keys += [("label_id", "ascending")] if "label_id" in table.column_names else []
        keys += [("sequence", "ascending")] if "sequence" in table.column_names else []
        out[name] = table.sort_by(keys)
    return out


def _parts(store: Path) -> list[Path]:
    return sorted(Path(store).glob("*/cohort=*/model_key=*/part-*.parquet"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """Three cohorts of 60 participant-visits, 6 per flush: 10 flushes per cohort."""
    store = tmp_path_factory.mktemp("pristine") / "store"
    for n, cohort in enumerate(("a", "b", "c")):
        write_synthetic_store(store, 60, cohort=cohort, run_id=f"20260101T00000{n}Z-s{n}",
                              flush_every=6, seed=n)  # fmt: skip
    return store


@pytest.fixture
def store(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    subprocess.run(["cp", "-a", str(pristine), str(copy)], check=True)
    return copy


def test_groups_are_consecutive_and_at_most_the_target() -> None:
    sizes = [("a", 6), ("b", 6), ("c", 6), ("d", 20), ("e", 3), ("f", 3)]
    assert plan_groups(sizes, 12) == [["a", "b"], ["e", "f"]]  # c alone, d too big
    assert plan_groups(sizes, 1000) == [["a", "b", "c", "d", "e", "f"]]
    assert plan_groups([("a", 5)], 1000) == []


def test_compaction_keeps_every_row_and_the_ledger_names_the_merged_files(store: Path) -> None:
    before, files_before = _rows(store), _parts(store)
    summary = compact(store, target_participants=30)
    after = _rows(store)
    for name in _TABLES:
        assert after[name].equals(before[name]), name
    assert summary.flushes_merged == 30 and summary.partitions == 3
    assert len(_parts(store)) == len(files_before) // 5  # 10 flushes -> 2 files per table
    ledger = read_table(store, "ledger")
    for cohort, fid in {(r["cohort"], r["flush_id"]) for r in ledger.to_pylist()}:
        for name in _TABLES:
            part = store / name / f"cohort={cohort}" / "model_key=synthetic0001"
            assert (part / f"part-{fid}.parquet").is_file(), (name, fid)
    assert not list(journal_dir(store).glob("*")) and not list((store / STAGING_DIR).glob("*"))
    again = compact(store, target_participants=30)
    assert again.flushes_merged == 0 and _parts(store) == sorted(_parts(store))


def test_a_later_run_supersedes_rows_of_compacted_flushes(tmp_path, monkeypatch, client) -> None:
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    for pid in ("1000001", "1000002", "1000003"):
        ukbb_zip(src, pid)
    run_job(job_config(src, store), client=client)  # one flush per participant
    assert compact(store).flushes_merged == 3
    forced = run_job(job_config(src, store, **{"run.force": True}), client=client)
    assert forced.n_ok == 3
    organ = read_table(store, "organ_metrics")
    assert organ.num_rows == 3 * 40  # the compacted rows were replaced, not kept beside
    assert set(organ.column("run_id").to_pylist()) == {forced.run_id}
    assert pc.count_distinct(organ.column("participant_id")).as_py() == 3


_READER = """
import sys, time
from pathlib import Path
import duckdb, mrcohort
store, stop = sys.argv[1], Path(sys.argv[2])
seen, raw_errors, reads = set(), 0, 0
while not stop.exists():
    n = len(mrcohort.open_table("organ_metrics", store, current=False, columns=["participant_id"]))
    seen.add(n)
    try:
        raw = duckdb.sql(f"SELECT count(*), count(DISTINCT (cohort, participant_id, label_id)) "
                         f"FROM read_parquet('{store}/organ_metrics/**/*.parquet', "
                         "hive_partitioning=true)").fetchall()[0]
        seen.update(raw)
    except duckdb.Error as err:
        assert "No such file" in str(err) or "No files found" in str(err), err
        raw_errors += 1
    reads += 1
    if reads == 1:
        print("reading", flush=True)
print(sorted(seen), raw_errors, reads)
"""


def test_a_reader_during_compaction_never_sees_a_row_twice_or_missing(tmp_path: Path) -> None:
    store, stop = tmp_path / "store", tmp_path / "stop"
    for n in range(8):  # 8 cohorts x 20 flushes: 4 rounds swap 190 partition folders
        write_synthetic_store(store, 60, cohort=f"k{n}", run_id=f"20260101T00000{n}Z-s{n}",
                              flush_every=3, seed=n)  # fmt: skip
    expected = 8 * 60 * 40
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(store), str(stop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
    started = time.monotonic()
    for target in (6, 12, 30, 60):
        compact(store, target_participants=target)
    seconds = time.monotonic() - started
    stop.touch()
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    seen, _, reads = out.rsplit(" ", 2)
    assert seen == f"[{expected}]", out  # every read saw every row exactly once
    assert int(reads) > 3 and seconds > 0.5, (out, seconds)  # it really read meanwhile


def _kill_after_journal(store: Path, delay: float) -> bool:
    """Start a compaction, SIGKILL it ``delay`` s after its journal entry appears; True if it
    was killed before it finished."""
    code = (
        "import sys; from pathlib import Path; from mrcohort.jobs.compact import compact; "
        "compact(Path(sys.argv[1]), target_participants=12)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(store)])
    deadline = time.monotonic() + 60
    while not list(journal_dir(store).glob("*.json")) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait() == -signal.SIGKILL


def test_a_killed_compaction_is_finished_by_the_next_recovery(
    pristine: Path, tmp_path: Path
) -> None:
    reference = _rows(pristine)
    interrupted = 0
    for n, delay in enumerate((0.0, 0.05, 0.15, 0.3)):  # while staging, swapping, ...
        store = tmp_path / f"store{n}"
        subprocess.run(["cp", "-a", str(pristine), str(store)], check=True)
        if not _kill_after_journal(store, delay):
            continue  # it finished first
        done = recover(store)  # what every job (and `mrcohort compact`) runs first
        interrupted += any(line.startswith("finished compaction") for line in done)
        assert not list(journal_dir(store).glob("*.json"))
        assert not list((store / STAGING_DIR).glob("compact-*"))
        after = _rows(store)
        for name in _TABLES:
            assert after[name].equals(reference[name]), (delay, name)
        compact(store, target_participants=12)
        assert len(_parts(store)) == 3 * 4 * 5  # the plan is complete: 5 files per table
    assert interrupted >= 2, "the kills did not land while compactions were under way"


def test_cli_compacts_and_a_held_store_is_refused_with_its_holder(store: Path) -> None:
    runner = CliRunner()
    with StoreLock(store, run_id="20261201T000000Z-abc123"):
        busy = runner.invoke(app, ["compact", "--store", str(store)])
    assert busy.exit_code == 2
    assert "20261201T000000Z-abc123" in busy.stderr and f"pid {os.getpid()}" in busy.stderr
    done = runner.invoke(app, ["compact", "--store", str(store), "--target-participants", "60"])
    assert done.exit_code == 0, done.output
    assert "compacted 30 flushes in 3 partitions" in done.stderr
    not_a_store = runner.invoke(app, ["compact", "--store", str(store / "organ_metrics")])
    assert not_a_store.exit_code == 2 and "not a store" in not_a_store.stderr


def test_offline_compaction_keeps_the_rows(store: Path) -> None:
    before = _rows(store)
    compact(store, target_participants=1000, offline=True)
    assert len(_parts(store)) == 3 * len(FLUSH_TABLES) - 3 * 2  # no scans, no failures rows
    after = _rows(store)
    assert all(after[n].equals(before[n]) for n in _TABLES)


def test_a_run_over_many_small_files_suggests_compaction(store: Path) -> None:
    from mrcohort.jobs.compact import compaction_hint

    assert compaction_hint(store, "a", "synthetic0001", 60) is None  # 10 files: fine
    for n in range(1, 3):  # 30 files of 2 participant-visits
        write_synthetic_store(store, 20, cohort="a", run_id=f"20260102T00000{n}Z-s{n}",
                              flush_every=2, seed=10 + n)  # fmt: skip
    hint = compaction_hint(store, "a", "synthetic0001", 60)
    assert hint is not None and hint.startswith("30 small files per table: `mrcohort compact")
    assert compaction_hint(store, "a", "synthetic0001", 10_000) is None  # 30 files is fine


def test_two_models_sharing_the_scans_folder_both_keep_their_merges(
    tmp_path, monkeypatch, client
) -> None:
    """``scans`` rows of every model live in one folder (``model_key=none``): compacting two
    models' flushes at once must merge both models' scans files, and every ledger row that
    wrote scans must still name an existing scans file (later runs drop superseded rows by
    that name)."""
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    for pid in ("1000001", "1000002"):
        ukbb_zip(src, pid)
    run_job(job_config(src, store), client=client)
    for pid in ("1000003", "1000004"):
        ukbb_zip(src, pid)
    run_job(job_config(src, store, **{"model.tile_step_size": 0.8}), client=client)  # new key
    scans_before = read_table(store, "scans").sort_by("participant_id")
    summary = compact(store)
    assert summary.partitions == 2
    assert read_table(store, "scans").sort_by("participant_id").equals(scans_before)
    ledger = read_table(store, "ledger").to_pylist()
    named = {r["flush_id"] for r in ledger if r["wrote_scans"]}
    scans_dir = store / "scans" / "cohort=t" / "model_key=none"
    assert {p.name for p in scans_dir.glob("part-*.parquet")} == {
        f"part-{fid}.parquet" for fid in named
    }
