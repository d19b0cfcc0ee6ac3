"""The cohort job on a real SLURM (``.ci/slurm-local``): GPU-pool worker jobs asking
``--gres=gpu:1`` (a fake GPU: segmentation falls back to ``model.device = "cpu"``) and a CPU
pool; the GPU worker job is ``scancel``led while it segments, a new job replaces it, and the
store ends with the same tables as a run on the local cluster."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mrcohort.config import load_config
from mrcohort.jobs.run import run_job
from mrcohort.schemas.store import read_table
from tests.jobs.store_checks import UNIQUE_KEYS, frame
from tests.slurm_support import require_slurm

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TIMEOUT_S = 420.0

JOB_TOML = """
[input]
source = "in"
cohort = "demo"
[store]
path = "{store}"
[model]
device = "cpu"
[cluster]
backend = "slurm"
[cluster.slurm.gpu]
cores = 1
memory = "2GB"
walltime = "00:20:00"
log_directory = "logs"
[cluster.slurm.cpu]
cores = 1
processes = 1
memory = "2GB"
walltime = "00:20:00"
log_directory = "logs"
"""


def _squeue(env: dict[str, str], name: str) -> list[tuple[str, str]]:
    """(job id, state) of this user's jobs called ``name``."""
    out = subprocess.run(
        ["squeue", "-h", "-n", name, "-o", "%i %T"],
        env=env, capture_output=True, text=True, timeout=20, check=True,
    ).stdout  # fmt: skip
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]  # type: ignore[misc]


def _wait(what: str, predicate, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def test_slurm_job_survives_a_cancelled_gpu_worker(tmp_path: Path) -> None:
    env = require_slurm()
    from mrcohort.phantoms import write_cohort

    write_cohort(tmp_path / "in", layout="ukbb", participants=2, seed=0, preset="mini")
    reference = tmp_path / "reference"
    local = load_config(
        None,
        {"input.source": tmp_path / "in", "input.cohort": "demo", "store.path": reference,
         "model.device": "cpu", "cluster.workers": 1, "progress.interval_seconds": 3600.0},
    )  # fmt: skip
    assert run_job(local).n_ok == 2

    store = tmp_path / "store"
    (tmp_path / "job.toml").write_text(JOB_TOML.format(store=store))
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mrcohort", "run", "--config", "job.toml"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        scratch = store / "scratch"

        def segmenting() -> bool:  # a participant read and handed to the GPU worker
            running = [j for j, state in _squeue(env, "mrcohort-gpu") if state == "RUNNING"]
            return bool(running) and any(scratch.glob("*/*/in.npy"))

        _wait("GPU work", segmenting, proc, log)
        (job, _), *_ = _squeue(env, "mrcohort-gpu")
        subprocess.run(["scancel", job], env=env, check=True, timeout=20)
        proc.wait(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["scancel", "-n", "mrcohort-gpu"], env=env, check=False)
        subprocess.run(["scancel", "-n", "mrcohort-cpu"], env=env, check=False)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "2 processed, 0 failed" in text
    run_log = next(store.glob("runs/*/log.txt")).read_text()
    assert "ended; replacing it" in run_log, run_log
    # the worker jobs asked for a GPU, and a second GPU job replaced the cancelled one
    gpu_logs = sorted((tmp_path / "logs").glob("mrcohort-gpu-*.err"))
    assert len(gpu_logs) >= 2, gpu_logs
    for table in UNIQUE_KEYS:
        got, want = frame(store, table), frame(reference, table)
        assert len(got) == len(want) > 0 or table == "failures", table
        assert got.equals(want), table
    assert not any(scratch.rglob("*.npy")), "scratch left behind"
    ledger = read_table(store, "ledger").to_pandas()
    assert sorted(ledger["outcome"]) == ["ok", "ok"]
