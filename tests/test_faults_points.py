"""Fail points (`mrcohort.faults`): parsing, the n-th pass, once across processes, the
actions — killed processes are real child processes."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from mrcohort import faults
from mrcohort.errors import MrcohortError


def test_rules_parse_and_typos_are_refused() -> None:
    rules = faults.parse(" flush.data_written=kill@2, store.write.qc=enospc,run.planned=sleep:1.5")
    assert rules == {
        "flush.data_written": faults.Rule("kill", 2),
        "store.write.qc": faults.Rule("enospc", 1),
        "run.planned": faults.Rule("sleep", 1, 1.5),
    }
    for bad in ("flush.data_writen=kill", "run.planned", "run.planned=kil", "run.planned=sleep",
                "run.planned=kill@0", "run.planned=kill@x", "store.write.=kill",
                "store.write.vesel_metrics=enospc", "run.planned=sleep:-1",
                "run.planned=sleep:inf", "flush.committed=enospc"):  # fmt: skip
        with pytest.raises(faults.FailpointError):
            faults.parse(bad)


def test_a_bad_setting_stops_the_job_as_bad_config(monkeypatch) -> None:
    monkeypatch.setenv(faults.ENV, "flush.data_writen=kill")
    with pytest.raises(MrcohortError) as info:
        faults.check_failpoints()
    assert info.value.code == "BAD_CONFIG" and "flush.data_writen" in info.value.message
    monkeypatch.delenv(faults.ENV)
    faults.check_failpoints()
    monkeypatch.setenv(faults.ENV_ONCE, "/nonexistent/fired")
    with pytest.raises(MrcohortError, match="not a folder"):
        faults.check_failpoints()


def test_enospc_fires_at_the_nth_pass_only_naming_the_path(monkeypatch) -> None:
    monkeypatch.setenv(faults.ENV, "store.write.qc=enospc@2")
    monkeypatch.setattr(faults, "_passes", faults.Counter())
    faults.failpoint("store.write.qc", path="/s/x.parquet")
    with pytest.raises(OSError) as info:
        faults.failpoint("store.write.qc", path="/s/x.parquet")
    assert info.value.errno == errno.ENOSPC and info.value.filename == "/s/x.parquet"
    faults.failpoint("store.write.qc", path="/s/x.parquet")  # the third pass: nothing
    faults.failpoint("store.write.scans", path="/s/x.parquet")  # another point: nothing


_PASS_TWICE = """
import sys
from mrcohort.faults import failpoint
failpoint("stage.segment"); print("first", flush=True)
failpoint("stage.segment"); print("second", flush=True)
"""


def _child(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-c", _PASS_TWICE],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_kill_is_a_real_sigkill_at_the_chosen_pass() -> None:
    done = _child({faults.ENV: "stage.segment=kill@2"})
    assert done.returncode == -9 and done.stdout == "first\n"
    assert _child({faults.ENV: "stage.segment=kill"}).stdout == ""


def test_once_fires_in_one_process_only(tmp_path: Path) -> None:
    env = {faults.ENV: "stage.segment=kill", faults.ENV_ONCE: str(tmp_path)}
    first, second = _child(env), _child(env)
    assert first.returncode == -9 and second.returncode == 0
    assert second.stdout == "first\nsecond\n"
    assert (tmp_path / "stage.segment").read_text().strip().isdigit()  # the killed pid


def test_docs_list_every_point() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
        for line in doc.splitlines()
        if line.startswith("| `")
    }
    assert {k: v for k, v in rows.items() if k in faults.POINTS} == {
        k: v.replace("<table>", "`<table>`") if k.startswith("store.") else v
        for k, v in faults.POINTS.items()
    }
