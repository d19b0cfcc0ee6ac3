"""Faults injected into real ``mrcohort run`` processes on the embedded multi-process cluster
(TLS scheduler in the driver, two nanny-supervised worker processes), then the run that follows:

- a worker SIGKILLed in each stage (prepare, segment, measure), after the stage's side effects
  and before its result is returned; the nanny restarts it and the task is retried;
- the driver SIGKILLed at five points of a run (and once more while the next run recovers),
  then restarted;
- a full disk in the store writer, half-way through a flush;
- a truncated segmentation in the store, found by its hash when it is next needed;
- two runs on one store at once.

After every scenario the store equals the reference run's (same keys, same values), no key is
duplicated, no temporary file is left and the ledger is consistent (`tests.jobs.store_checks`).
Faults are placed with fail points (`mrcohort.faults`): a real ``SIGKILL`` of the process that
reaches the point, or the ``OSError`` a full disk raises. The worker processes segment with the
fake model (`tests.jobs.fault_worker`, a Dask preload): the faults are the job engine's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mrcohort.faults import ENV, ENV_ONCE
from mrcohort.jobs.lock import holder
from mrcohort.schemas.store import read_table
from tests.jobs import store_checks
from tests.jobs.store_checks import assert_recovered, journal_entries, ledger_files

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
GOOD = [str(1_000_001 + i) for i in range(5)]
BAD = {"1000099": "NOT_A_ZIP"}
N_INPUTS = len(GOOD) + len(BAD)
RUN_TIMEOUT_S = 240


# --- running mrcohort ----------------------------------------------------------------------


def _write_config(path: Path, source: Path, store: Path, **sections: dict[str, object]) -> Path:
    """A job.toml: the cohort into ``store``, one flush per input, two worker processes."""
    config: dict[str, dict[str, object]] = {
        "input": {"source": str(source), "cohort": "t"},
        "store": {"path": str(store), "flush_every_participants": 1},
        "model": {"name": "demo", "device": "cpu"},
        "cluster": {"workers": 2, "memory_limit": "2GB"},
        "progress": {"interval_seconds": 3600.0},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    lines = []
    for name, values in config.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in values.items()]
    path.write_text("\n".join(lines).replace("'", '"') + "\n")
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV, ENV_ONCE)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["DASK_DISTRIBUTED__WORKER__PRELOAD"] = '["tests.jobs.fault_worker"]'
    return env | extra


def _start(config: Path, log: Path, *args: str, **env: str) -> subprocess.Popen:
    """``mrcohort run --config`` in its own session (process group = its pid)."""
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "mrcohort.cli", "run", "--config", str(config), *args],
            cwd=REPO,
            env=_env(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _finish(proc: subprocess.Popen, log: Path, start: int = 0) -> tuple[int, str]:
    """Wait for ``proc``; its exit status and what it printed since ``start`` bytes."""
    try:
        rc = proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _wait_group_gone(proc.pid)
    with open(log, "rb") as fh:
        fh.seek(start)
        return rc, fh.read().decode(errors="replace")


def _run(config: Path, log: Path, *args: str, **env: str) -> tuple[int, str]:
    start = log.stat().st_size if log.exists() else 0
    return _finish(_start(config, log, *args, **env), log, start)


def _run_ok(config: Path, log: Path, *args: str) -> str:
    rc, out = _run(config, log, *args)
    assert rc == 0, f"run failed (rc {rc}):\n{out[-4000:]}"
    return out


def _group_alive(pgid: int) -> bool:
    """A process of group ``pgid`` is running (zombies, which a container's init may never
    reap, do not count)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            return True
    return False


def _wait_group_gone(pgid: int, timeout_s: float = 60.0) -> None:
    """Every process of the run's group (its worker processes too) has ended: the workers of a
    killed driver notice it and exit on their own; none keeps writing into the store."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    pytest.fail(f"processes of the run (group {pgid}) still alive {timeout_s} s after it ended")


def _plan(out: str) -> str:
    """The plan line a run prints first (``t: 6 to segment, ...``)."""
    (line,) = [ln for ln in out.splitlines() if ln.startswith("t: ") and "to segment," in ln]
    return line


# --- the cohort and its reference run ------------------------------------------------------


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(source folder, reference store written by one run without faults)."""
    root = tmp_path_factory.mktemp("faults")
    source = root / "in"
    store_checks.write_cohort_folder(source, GOOD, list(BAD))
    reference = root / "reference"
    out = _run_ok(_write_config(root / "job.toml", source, reference), root / "ref.log")
    assert f"{N_INPUTS} to segment, 0 to measure only, 0 up to date" in _plan(out)
    assert_recovered(reference, reference, good=GOOD, bad=BAD)
    return source, reference


def _scenario(tmp_path: Path, cohort: tuple[Path, Path], **sections) -> tuple[Path, Path, Path]:
    """(config, store, log) of a scenario's runs."""
    source, _ = cohort
    store = tmp_path / "store"
    return _write_config(tmp_path / "job.toml", source, store, **sections), store, tmp_path / "log"


# --- workers killed ------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["prepare", "segment", "measure"])
def test_a_worker_killed_in_each_stage_is_replaced_and_its_task_retried(
    cohort, tmp_path, stage
) -> None:
    """The first worker to reach the end of ``stage`` is SIGKILLed there (its side effects
    done: scratch written, segmentation stored, QC picture written; its result not returned).
    The nanny starts a new worker, the task runs again, the run ends normally: the reference
    store, each input attempted once, no ``WORKER_LOST``."""
    config, store, log = _scenario(tmp_path, cohort)
    fired, workers = tmp_path / "fired", tmp_path / "workers"
    fired.mkdir()
    workers.mkdir()
    env = {
        ENV: f"stage.{stage}=kill",
        ENV_ONCE: str(fired),
        "MRCOHORT_TEST_WORKER_PIDS": str(workers),
    }
    rc, out = _run(config, log, **env)
    assert rc == 0, out[-4000:]
    killed = int((fired / f"stage.{stage}").read_text())
    started = {int(p.name) for p in workers.iterdir()}
    # the killed process was one of the run's workers, and a third one replaced it
    assert killed in started and len(started) >= 3, (killed, started)
    assert f"{len(GOOD)} processed, {len(BAD)} failed" in out
    assert_recovered(store, cohort[1], good=GOOD, bad=BAD)


# --- the driver killed, then restarted -----------------------------------------------------


def _state_at(point: str, store: Path) -> None:
    """What the store looks like right after a kill at ``point``: the kill landed there."""
    journal = journal_entries(store)
    ledgers = {p.name for p in ledger_files(store)}
    if point == "run.planned":
        assert not ledgers and not journal
    elif point == "flush.journaled":
        (entry,) = journal
        assert not list(store.glob(f"*/*/*/part-{entry.stem}.parquet"))
    elif point == "flush.data_written":
        (entry,) = journal
        assert list(store.glob(f"*/*/*/part-{entry.stem}.parquet"))
        assert f"part-{entry.stem}.parquet" not in ledgers
    elif point == "flush.committed":
        (entry,) = journal
        assert f"part-{entry.stem}.parquet" in ledgers
    elif point == "flush.rolling_back":
        (entry,) = journal  # its data files are gone, its entry not yet
        assert not list(store.glob(f"*/*/*/part-{entry.stem}.parquet"))
    elif point == "run.flushed":
        assert len(ledgers) == N_INPUTS and not journal
        assert read_table(store, "runs").num_rows == 0  # the run never said it finished


@pytest.mark.parametrize(
    "kills",
    [
        [("run.planned", 1)],
        [("flush.journaled", 3)],
        [("flush.data_written", 3)],
        [("flush.committed", 3)],
        [("run.flushed", 1)],
        [("flush.data_written", 2), ("flush.rolling_back", 1)],
    ],
    ids=lambda kills: "+".join(f"{p}@{n}" for p, n in kills),
)
def test_the_driver_killed_at_a_point_then_restarted(cohort, tmp_path, kills) -> None:
    """``mrcohort run`` SIGKILLed at each point in turn (the last case: killed again while the
    next run rolls back what the first left), then run again to the end: the reference store;
    the flushes committed before the kill count as done, nothing else does."""
    config, store, log = _scenario(tmp_path, cohort)
    for point, nth in kills:
        rc, out = _run(config, log, **{ENV: f"{point}=kill@{nth}"})
        assert rc == -signal.SIGKILL, f"not killed at {point} (rc {rc}):\n{out[-3000:]}"
        _state_at(point, store)
    committed = len(ledger_files(store))
    out = _run_ok(config, log)
    plan = f"{N_INPUTS - committed} to segment, 0 to measure only, {committed} up to date"
    assert plan in _plan(out)
    assert_recovered(store, cohort[1], good=GOOD, bad=BAD)
    assert read_table(store, "runs").to_pandas()["state"].tolist() == ["finished"]


# --- a full disk ---------------------------------------------------------------------------


def test_a_full_disk_in_the_store_writer_rolls_the_flush_back(cohort, tmp_path) -> None:
    """The second ``vessel_metrics`` file fails with ENOSPC after that flush wrote its
    ``scans`` and ``organ_metrics``: the run stops with one line naming the file, no table
    keeps a row of that flush, and the next run completes to the reference."""
    config, store, log = _scenario(tmp_path, cohort)
    rc, out = _run(config, log, **{ENV: "store.write.vessel_metrics=enospc@2"})
    assert rc == 2, out[-3000:]
    (line,) = [ln for ln in out.splitlines() if "STORE_WRITE_FAILED" in ln]
    assert "No space left on device" in line and "rolled back" in line
    path = Path(line.split("could not write ", 1)[1].split(":", 1)[0])
    assert path.parent == store / "vessel_metrics" / "cohort=t" / path.parent.name
    assert path.name.startswith("part-") and not path.exists()
    flush_id = path.stem.removeprefix("part-")
    assert not list(store.glob(f"*/*/*/part-{flush_id}.parquet")), "a table kept the flush"
    assert not journal_entries(store)
    store_checks.assert_no_temp_files(store)

    committed = len(ledger_files(store))
    out = _run_ok(config, log)
    assert f"{committed} up to date" in _plan(out)
    assert_recovered(store, cohort[1], good=GOOD, bad=BAD)


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None,
    reason="a small tmpfs as the store needs root (mount)",
)
@pytest.mark.parametrize("size", ["200k", "400k"])
def test_a_store_on_a_really_full_disk_then_space_freed(cohort, tmp_path, size) -> None:
    """No injection: the store is a tmpfs too small for the run (a real ENOSPC, wherever
    it comes first: a worker's segmentation or picture, a flush, a run file). The run says so
    in one line and stops or records ``DISK_FULL``; the filesystem is grown and the next run
    completes to the reference."""
    config, store, log = _scenario(tmp_path, cohort)
    _mount_tmpfs(store, size)
    try:
        _, out = _run(config, log)
        assert "STORE_WRITE_FAILED" in out or "DISK_FULL" in out, out[-3000:]
        assert "Traceback" not in out, out[-3000:]
        subprocess.run(["mount", "-o", "remount,size=64m", str(store)], check=True)
        _run_ok(config, log)
        assert_recovered(store, cohort[1], good=GOOD, bad=BAD, attempts_per_slot=None)
    finally:
        subprocess.run(["umount", "-l", str(store)], check=False)


# --- a truncated segmentation --------------------------------------------------------------


def test_a_truncated_segmentation_is_found_by_its_hash_and_recomputed(cohort, tmp_path) -> None:
    """New measurement parameters make every input 'measure only' (stored segmentations
    reused): the one cut in half no longer hashes to what the ledger recorded, so it is
    segmented again (never measured), the others are not; the rows equal those of the same
    change on an intact copy of the store."""
    source, reference = cohort
    changed = {"measure": {"erosion_mm": 2.0}}
    intact = tmp_path / "intact"
    shutil.copytree(reference, intact)
    _run_ok(_write_config(tmp_path / "intact.toml", source, intact, **changed), tmp_path / "i.log")

    config, store, log = _scenario(tmp_path, cohort, **changed)
    shutil.copytree(reference, store)
    ok = store_checks.ledger(store).query("outcome == 'ok'")
    victim = ok.iloc[0]
    seg = store / "segmentations" / victim["model_key"] / f"{victim['input_sha256']}.nii.gz"
    size = seg.stat().st_size
    with open(seg, "r+b") as fh:
        fh.truncate(size // 2)
    out = _run_ok(config, log)
    # the unreadable zip has no segmentation to reuse: it is tried (and fails) again
    assert f"{len(BAD)} to segment, {len(GOOD)} to measure only" in _plan(out)
    assert f"{victim['slot']}: stored segmentation {seg.name} missing or changed" in out

    new_key = read_table(intact, "organ_metrics").to_pandas()["measure_key"].max()
    now = store_checks.ledger(store).query("measure_key == @new_key").set_index("slot")
    assert now.loc[victim["slot"], "action"] == "segment"  # segmented again
    assert set(now.drop(victim["slot"]).query("outcome == 'ok'")["action"]) == {"measure"}
    assert seg.stat().st_size == size
    assert_recovered(store, intact, good=GOOD, bad=BAD, measure_key=new_key)


# --- two runs at once ----------------------------------------------------------------------


def test_a_second_run_on_a_busy_store_refuses_or_waits_and_never_interleaves(
    cohort, tmp_path
) -> None:
    """Run A holds the store (paused 10 s after planning); B starts and refuses at once with
    one line naming A's host, pid and start time; C starts with ``--wait``, waits for A to end,
    then finds everything up to date. Every ledger row is A's."""
    config, store, _ = _scenario(tmp_path, cohort)
    a = _start(config, tmp_path / "a.log", **{ENV: "run.planned=sleep:10"})  # holds the lock
    deadline = time.monotonic() + 60
    while not (info := holder(store)) or info.get("pid") != a.pid:
        assert a.poll() is None and time.monotonic() < deadline, "run A never held the store"
        time.sleep(0.05)
    c = _start(config, tmp_path / "c.log", "--wait")
    rc_b, out_b = _run(config, tmp_path / "b.log")
    assert a.poll() is None, "A ended before B asked: make A slower"
    assert rc_b == 2, out_b
    (line,) = [ln for ln in out_b.splitlines() if "STORE_BUSY" in ln]
    assert f"pid {a.pid} on host {info['host']}" in line and info["started_at"] in line

    rc_a, out_a = _finish(a, tmp_path / "a.log")
    assert rc_a == 0, out_a[-3000:]
    rc_c, out_c = _finish(c, tmp_path / "c.log")
    assert rc_c == 0, out_c[-3000:]
    assert f"0 to segment, 0 to measure only, {N_INPUTS} up to date" in _plan(out_c)
    assert set(store_checks.ledger(store)["run_id"]) == {info["run_id"]}
    assert len(list(Path(store, "runs").glob("*/config.toml"))) == 2  # A and C; B none
    assert_recovered(store, cohort[1], good=GOOD, bad=BAD)
