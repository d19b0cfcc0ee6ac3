"""The store lock (mrcohort.jobs.lock): the holder JSON, StoreBusy naming the holder, waiting,
and the OS dropping the lock of a SIGKILLed process (a real subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mrcohort.errors import MrcohortError
from mrcohort.jobs.lock import LOCK_NAME, StoreBusy, StoreLock, describe_holder, holder, utc_iso

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from pathlib import Path
from mrcohort.jobs.lock import StoreLock
with StoreLock(Path(sys.argv[1]), run_id="20261201T154500Z-1a2b"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_utc_iso() -> None:
    assert utc_iso(0) == "1970-01-01T00:00:00Z"


def test_the_holder_json_is_written_while_held_and_cleared_after(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert holder(store) is None  # no store, no lock file
    with StoreLock(store, run_id="r1", command="mrcohort run") as taken:
        info = holder(store)
        assert info is not None
        assert info == json.loads(taken.path.read_text())
        assert info["pid"] == os.getpid() and info["run_id"] == "r1"
        assert info["command"] == "mrcohort run" and info["host"]
        assert info["started_at"].endswith("Z")
    assert (store / LOCK_NAME).exists()
    assert holder(store) is None
    with StoreLock(store):  # free again
        pass


def test_a_held_store_raises_store_busy_naming_the_holder(tmp_path: Path) -> None:
    with StoreLock(tmp_path, run_id="r1"), pytest.raises(StoreBusy) as caught:
        StoreLock(tmp_path, run_id="r2").acquire()
    err = caught.value
    assert isinstance(err, MrcohortError)
    assert (err.code, err.stage) == ("STORE_BUSY", "run")
    assert f"is in use by run r1 (pid {os.getpid()} on host" in err.message
    assert err.message.endswith("; wait for it or stop it")


def test_describe_holder_wording() -> None:
    info = {"run_id": "x1", "pid": 123, "host": "h", "started_at": "2026-12-01T15:45:00Z"}
    assert describe_holder(Path("/x"), info) == (
        "store /x is in use by run x1 (pid 123 on host h, started 2026-12-01T15:45:00Z); "
        "wait for it or stop it"
    )
    assert "in use by another process;" in describe_holder(Path("/x"), {})


def test_waiting_times_out_then_succeeds_once_released(tmp_path: Path) -> None:
    first = StoreLock(tmp_path, run_id="r1")
    first.acquire()
    start = time.monotonic()
    with pytest.raises(StoreBusy, match=r"run r1 .*\(waited"):
        StoreLock(tmp_path, wait=True, timeout_s=0.4, poll_s=0.05).acquire()
    assert 0.35 < time.monotonic() - start < 3
    threading.Timer(0.3, first.release).start()
    with StoreLock(tmp_path, wait=True, timeout_s=10, poll_s=0.05, run_id="r2"):
        assert holder(tmp_path)["run_id"] == "r2"


def test_the_os_drops_the_lock_of_a_killed_process(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        info = holder(tmp_path)
        assert info is not None and info["pid"] == proc.pid
        with pytest.raises(StoreBusy, match=f"pid {proc.pid} on host"):
            StoreLock(tmp_path).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert holder(tmp_path) is None
    with StoreLock(tmp_path, run_id="next"):
        assert holder(tmp_path)["run_id"] == "next"
