"""A real one-node SLURM (``.ci/slurm-local``): batch jobs, the fake GPU gres, and a
dask-jobqueue ``SLURMCluster`` whose worker job is cancelled and replaced.

Needs SLURM running (``eval "$(.ci/slurm-local start)"``): skipped otherwise, failed under
``CI=true``. Every wait has a deadline; every job writes its output under ``tmp_path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.slurm_support import require_slurm

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

#: Final states of a job (``squeue -t all`` keeps them for ``MinJobAge``).
DONE_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}
)


@pytest.fixture
def slurm_env() -> dict[str, str]:
    return require_slurm()


def _run(cmd: list[str], env: dict[str, str], timeout: float = 15) -> str:
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{cmd}: {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def _wait(what: str, ready: Callable[[], object], timeout: float, every: float = 0.2):
    """``ready()``'s first truthy value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(every)


def _sbatch(env: dict[str, str], tmp_path: Path, script: str, *options: str) -> str:
    """Submits ``script`` (``--wrap``) with output and working folder under ``tmp_path``;
    returns the job id."""
    out = _run(
        [
            "sbatch",
            "--parsable",
            "--job-name=mrcohort-test",
            "--time=5",
            f"--chdir={tmp_path}",
            f"--output={tmp_path}/slurm-%j.out",
            *options,
            "--wrap",
            script,
        ],
        env,
    )
    return out.strip().split(";")[0]


def _job_state(env: dict[str, str], job_id: str) -> str:
    out = _run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], env)
    return out.strip()


def _wait_done(env: dict[str, str], job_id: str, timeout: float = 30) -> str:
    """The job's final state, waited for."""

    def final_state() -> str:
        state = _job_state(env, job_id)
        return state if state in DONE_STATES else ""

    return _wait(f"job {job_id} done", final_state, timeout)


def _cancel(env: dict[str, str], *job_ids: str) -> None:
    subprocess.run(["scancel", *job_ids], env=env, capture_output=True, timeout=15, check=False)


def test_sbatch_job_writes_a_file(slurm_env, tmp_path):
    target = tmp_path / "hello.txt"
    job = _sbatch(slurm_env, tmp_path, f'echo "hello from $SLURM_JOB_ID" > {target}')
    try:
        assert _wait_done(slurm_env, job) == "COMPLETED"
    finally:
        _cancel(slurm_env, job)
    assert target.read_text() == f"hello from {job}\n"


def test_gpu_gres_sets_cuda_visible_devices(slurm_env, tmp_path):
    target = tmp_path / "cuda.txt"
    job = _sbatch(
        slurm_env,
        tmp_path,
        f'echo "${{CUDA_VISIBLE_DEVICES-unset}}" > {target}',
        "--gres=gpu:1",
    )
    try:
        assert _wait_done(slurm_env, job) == "COMPLETED"
    finally:
        _cancel(slurm_env, job)
    devices = target.read_text().strip()
    assert devices not in ("", "unset")
    assert devices == "0"  # the one fake GPU


def test_slurm_cluster_runs_a_gpu_task_and_replaces_a_cancelled_worker(
    slurm_env, tmp_path, monkeypatch
):
    import dask
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    # dask-jobqueue runs sbatch/scancel with this process's environment.
    monkeypatch.setenv("SLURM_CONF", slurm_env["SLURM_CONF"])
    submitted: list[str] = []

    def worker_count(client: Client) -> int:
        return len(client.scheduler_info()["workers"])

    def gpu_task(client: Client) -> tuple[str | None, str | None]:
        job = client.submit(os.getenv, "SLURM_JOB_ID", resources={"GPU": 1}, pure=False)
        cuda = client.submit(os.getenv, "CUDA_VISIBLE_DEVICES", resources={"GPU": 1}, pure=False)
        return job.result(timeout=30), cuda.result(timeout=30)

    # A lost worker's job is closed (and can be replaced) after 1 s instead of 15 s.
    with (
        dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}),
        SLURMCluster(
            queue="debug",
            cores=1,
            processes=1,
            memory="1GB",
            walltime="00:10:00",
            job_extra_directives=["--gres=gpu:1"],
            worker_extra_args=["--resources", "GPU=1"],
            scheduler_options={"host": "127.0.0.1", "dashboard_address": None},
            python=sys.executable,
            log_directory=str(tmp_path / "logs"),
            local_directory=str(tmp_path / "dask"),
        ) as cluster,
        Client(cluster, timeout=30) as client,
    ):
        try:
            script = cluster.job_script()
            assert "--gres=gpu:1" in script
            assert f"{sys.executable} -m distributed.cli.dask_worker" in script

            cluster.scale(jobs=1)
            client.wait_for_workers(1, timeout=45)
            first, devices = gpu_task(client)
            assert first, "the task did not run in a SLURM job"
            submitted.append(first)
            assert devices == "0"
            assert [job.job_id for job in cluster.workers.values()] == [first]

            # The worker job goes away: its job is closed, then a replacement is asked for.
            _cancel(slurm_env, first)
            _wait("worker of the cancelled job gone", lambda: worker_count(client) == 0, 30)
            _wait("cancelled job closed by the cluster", lambda: not cluster.workers, 15)
            cluster.scale(jobs=1)
            client.wait_for_workers(1, timeout=45)
            second, devices = gpu_task(client)
            assert second
            submitted.append(second)
            assert second != first
            assert devices == "0"
        finally:
            submitted.extend(j.job_id for j in cluster.workers.values() if j.job_id)

    # Closing the cluster cancelled its jobs.
    def left() -> set[str]:
        out = _run(["squeue", "-h", "-t", "PD,R,CG", "-o", "%A"], slurm_env)
        return set(out.split()) & set(submitted)

    try:
        _wait("the cluster's jobs ended", lambda: not left(), 20)
    finally:
        if left():
            _cancel(slurm_env, *left())
