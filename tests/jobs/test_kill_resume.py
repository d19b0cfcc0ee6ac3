"""Kill a cohort job with SIGKILL part-way, run it again, and get the store an uninterrupted run
writes: every row once, no temp files, nothing left to do.

The real kills run `tests.jobs.kill_driver` as a subprocess (its Dask cluster is thread-based
inside it, so ``SIGKILL`` takes driver and workers down together) and kill it after the ledger
holds ``k`` committed flushes: a random moment later, or as soon as the next flush has written
its journal entry (inside that flush; where exactly is left to chance). The crash states a
flush can leave (data files without their ledger file; a committed flush whose superseded rows
are not yet removed; one removed halfway) are also produced directly, in process, by making the
real `Flusher` fail at that point, and the next run must roll back or finish them.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import mrcohort.jobs.flush as flush_module
from mrcohort.jobs.flush import Flusher
from mrcohort.jobs.run import run_job
from mrcohort.schemas.store import query, read_table
from tests.jobs.fakes import job_config, thread_client, use_fake_segmenter
from tests.jobs.store_checks import (
    UNIQUE_KEYS,
    assert_no_duplicates,
    assert_no_temp_files,
    assert_same_tables,
    journal_entries,
    ledger_files,
    write_cohort_folder,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: Good participants of the test cohort, plus one broken zip.
GOOD = [str(1000001 + i) for i in range(8)]
BAD = "1000099"
N_INPUTS = len(GOOD) + 1
#: Seconds per fake segmenter call in the killed runs (two worker threads): about 1.6 s of work.
DELAY_S = 0.4
TIMEOUT_S = 40.0


# --- helpers -------------------------------------------------------------------------------


def _driver(
    source: Path, store: Path, log: Path, delay: float = 0.0, flush_pause: float = 0.0
) -> subprocess.Popen:
    """Start `tests.jobs.kill_driver` in its own session (its process group = its pid)."""
    cmd = [sys.executable, "-m", "tests.jobs.kill_driver", str(source), str(store)]
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [*cmd, "--delay", str(delay), "--flush-pause", str(flush_pause)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _run_to_end(source: Path, store: Path, log: Path) -> str:
    """Run the driver to completion; return what it printed (the plan line)."""
    start = log.stat().st_size if log.exists() else 0
    proc = _driver(source, store, log)
    rc = proc.wait(timeout=120)
    with open(log, "rb") as fh:
        fh.seek(start)
        text = fh.read().decode(errors="replace")
    assert rc == 0, f"driver failed (rc {rc}):\n{text[-4000:]}"
    return text


def _open_flush(store: Path) -> bool:
    """A flush has its journal entry on disk and has not committed its ledger file yet (the
    entry of a flush that just committed is about to be removed: it does not count)."""
    committed = {p.name[len("part-") : -len(".parquet")] for p in ledger_files(store)}
    return any(p.stem not in committed for p in journal_entries(store))


def _kill_at(source: Path, store: Path, log: Path, k: int, *, in_flush: bool) -> list[str]:
    """Start the driver and SIGKILL its process group once the ledger holds ``k`` files:
    ``in_flush``: as soon as the next flush has written its journal entry (so inside that
    flush: its data files partly written, its ledger file not yet), else a random moment up
    to one segmenter call later (inside a flush or between two). Return the flushes it
    interrupted (journal entries left)."""
    jitter = 0.0 if in_flush else random.Random(f"{store}-{k}").uniform(0.0, DELAY_S)
    proc = _driver(source, store, log, delay=DELAY_S, flush_pause=0.5 if in_flush else 0.0)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(ledger_files(store)) < k or (in_flush and not _open_flush(store)):
            if proc.poll() is not None:
                pytest.fail(
                    f"driver ended (rc {proc.returncode}) before it could be killed:\n"
                    + log.read_text(errors="replace")[-4000:]
                )
            if time.monotonic() > deadline:
                pytest.fail(f"no {k} ledger files after {TIMEOUT_S} s")
            time.sleep(0.002 if in_flush else 0.01)
        time.sleep(jitter)
        assert proc.poll() is None, "the run ended before it could be killed; raise DELAY_S"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    interrupted = [p.stem for p in journal_entries(store)]
    held = len(ledger_files(store))
    print(f"killed {jitter:.2f} s after {k} flushes, {held} committed; interrupted {interrupted}")
    assert k <= held < N_INPUTS, f"killed with {held} ledger files"
    return interrupted


def _assert_no_duplicates(store: Path) -> None:
    assert_no_duplicates(store)
    fails = read_table(store, "failures").to_pandas()
    assert list(fails["participant_id"]) == [BAD] and list(fails["code"]) == ["NOT_A_ZIP"]


def _latest_ledger(store: Path) -> pd.DataFrame:
    glob = (Path(store, "ledger") / "**" / "part-*.parquet").as_posix()
    return (
        query(
            store,
            "SELECT slot, arg_max(outcome, computed_at) AS outcome, "
            "arg_max(code, computed_at) AS code, count(*) AS n FROM"
            f" read_parquet('{glob}', hive_partitioning = true) GROUP BY slot",
        )
        .to_pandas()
        .set_index("slot")
    )


def _assert_ledger_done(store: Path) -> None:
    latest = _latest_ledger(store)
    assert set(latest.index) == {f"{p}/2_0" for p in [*GOOD, BAD]}
    assert (latest.loc[[f"{p}/2_0" for p in GOOD], "outcome"] == "ok").all(), latest
    assert latest.loc[f"{BAD}/2_0", "code"] == "NOT_A_ZIP"


def _store_files(store: Path) -> dict[str, int]:
    """Every file outside ``runs/`` (and the lock file) with its modification time."""
    return {
        p.relative_to(store).as_posix(): p.stat().st_mtime_ns
        for p in Path(store).rglob("*")
        if p.is_file() and p.parts[len(Path(store).parts)] != "runs" and p.name != ".mrcohort.lock"
    }


def _runs_files(store: Path) -> set[str]:
    return {p.relative_to(store).as_posix() for p in Path(store, "runs").rglob("*") if p.is_file()}


def _assert_finished(store: Path, reference: Path) -> None:
    assert_same_tables(store, reference)
    _assert_no_duplicates(store)
    assert_no_temp_files(store)
    _assert_ledger_done(store)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(source folder, reference store written by one uninterrupted run)."""
    root = tmp_path_factory.mktemp("kill")
    source = root / "in"
    write_cohort_folder(source, GOOD, [BAD])
    reference = root / "reference"
    out = _run_to_end(source, reference, root / "reference.log")
    assert f"{N_INPUTS} to segment, 0 to measure only, 0 up to date" in out
    assert len(ledger_files(reference)) == N_INPUTS
    _assert_no_duplicates(reference)
    assert_no_temp_files(reference)
    _assert_ledger_done(reference)
    return source, reference


# --- real kills ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kills",
    [[(1, False)], [(3, True)], [(2, False), (6, True)]],
    ids=["k1", "k3-in-flush", "k2-then-k6-in-flush"],
)
def test_sigkill_then_resume_equals_uninterrupted_run(cohort, tmp_path, monkeypatch, kills):
    """SIGKILL after ``k`` committed flushes, or inside the flush after them (twice for the
    last case: the resumed run is killed too), then a run to the end: the reference tables,
    each row once, no temp files, every input done; one more run has nothing to do and
    writes no data file."""
    source, reference = cohort
    store, log = tmp_path / "store", tmp_path / "driver.log"
    for k, in_flush in kills:
        interrupted = _kill_at(source, store, log, k, in_flush=in_flush)
        if in_flush:
            assert interrupted, "the kill missed the flush"
    held = len(ledger_files(store))
    out = _run_to_end(source, store, log)
    # committed flushes count as done; whatever the kill interrupted is redone
    assert f"{N_INPUTS - held} to segment, 0 to measure only, {held} up to date" in out
    _assert_finished(store, reference)

    # one more run (in process: quicker, and the same job) has nothing to do
    use_fake_segmenter(monkeypatch)
    before, runs_before = _store_files(store), _runs_files(store)
    summary = _run(source, store)
    assert summary.plan == f"0 to segment, 0 to measure only, {N_INPUTS} up to date"
    assert summary.files == [] and summary.recovered == []
    assert _store_files(store) == before, "a no-op run wrote or changed store files"
    new = _runs_files(store) - runs_before
    assert len([p for p in new if p.endswith(".parquet")]) == 1, new  # its runs row
    assert all(p.startswith("runs/") for p in new)


# --- crash states of a flush, produced in process ------------------------------------------


class Crash(BaseException):
    """Stands for the process dying: nothing in the job catches it."""


def _run(source: Path, store: Path, **overrides: object):
    client = thread_client()
    try:
        return run_job(job_config(source, store, **overrides), client=client)
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def _crash_on_ledger_write(monkeypatch: pytest.MonkeyPatch, flush_no: int) -> None:
    """The ``flush_no``-th flush dies after its data files, before its ledger file, the way a
    kill does: no code runs after it (so the in-process rollback of a failed flush is off)."""
    real = Flusher._write
    monkeypatch.setattr(flush_module, "_roll_back", lambda *args: None)

    def write(self, name, rows, flush_id):
        if name == "ledger" and self.n_flushes == flush_no + 1:
            raise Crash(f"before commit of {flush_id}")
        return real(self, name, rows, flush_id)

    monkeypatch.setattr(Flusher, "_write", write)


def _crash_in_finish(monkeypatch: pytest.MonkeyPatch, flush_no: int, *, drops: int) -> None:
    """The ``flush_no``-th flush dies after its commit, having removed ``drops`` of the
    superseded files' rows (0: none)."""
    calls = {"flush": 0, "drop": 0}
    real_finish, real_drop = flush_module._finish, flush_module._drop_slots

    def drop(path, slots, store):
        if calls["flush"] == flush_no + 1:
            if calls["drop"] >= drops:
                raise Crash(f"in cleanup, after {drops} files")
            calls["drop"] += 1
        return real_drop(path, slots, store)

    def finish(store, entry):
        calls["flush"] += 1
        if calls["flush"] == flush_no + 1 and drops == 0:
            raise Crash("after commit")
        return real_finish(store, entry)

    monkeypatch.setattr(flush_module, "_finish", finish)
    monkeypatch.setattr(flush_module, "_drop_slots", drop)


def test_crash_before_commit_is_rolled_back(cohort, tmp_path, monkeypatch):
    """First run dies between the data files and the ledger file of its 4th flush: the next
    run deletes that flush's data files and processes the rest."""
    source, reference = cohort
    use_fake_segmenter(monkeypatch)
    store = tmp_path / "store"
    with monkeypatch.context() as m:
        _crash_on_ledger_write(m, flush_no=3)
        with pytest.raises(Crash):
            _run(source, store)
    (entry,) = journal_entries(store)
    fid = entry.stem
    assert [p.parent.parent.parent.name for p in store.glob(f"*/*/*/part-{fid}.parquet")]
    assert not list(store.glob(f"ledger/*/*/part-{fid}.parquet"))
    assert len(ledger_files(store)) == 3

    summary = _run(source, store)
    assert f"rolled back flush {fid}" in summary.recovered
    assert not list(store.glob(f"*/*/*/part-{fid}.parquet"))
    assert summary.plan.startswith(f"{N_INPUTS - 3} to segment")
    _assert_finished(store, reference)


@pytest.mark.parametrize("drops", [0, 1], ids=["before-cleanup", "mid-cleanup"])
def test_crash_after_commit_is_finished(cohort, tmp_path, monkeypatch, drops):
    """A forced re-run (every input again, superseding the first run's rows) dies after the
    commit of its 3rd flush, before or during the removal of the rows it supersedes: the
    store briefly holds those slots twice; the next run finishes the flush and is the
    reference again with nothing left to do but nothing lost either."""
    source, reference = cohort
    use_fake_segmenter(monkeypatch)
    store = tmp_path / "store"
    _run(source, store)
    with monkeypatch.context() as m:
        _crash_in_finish(m, flush_no=2, drops=drops)
        with pytest.raises(Crash):
            _run(source, store, **{"run.force": True})
    (entry,) = journal_entries(store)
    fid = entry.stem
    assert list(store.glob(f"ledger/*/*/part-{fid}.parquet"))
    qc = read_table(store, "qc").to_pandas()
    assert qc.duplicated(UNIQUE_KEYS["qc"]).any()  # superseded rows not removed yet

    summary = _run(source, store)
    assert f"finished flush {fid}" in summary.recovered
    assert summary.plan == f"0 to segment, 0 to measure only, {N_INPUTS} up to date"
    _assert_finished(store, reference)
