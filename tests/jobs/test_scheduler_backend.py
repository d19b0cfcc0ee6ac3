"""Backend ``scheduler``: a job on an existing Dask scheduler reached over TLS with the
certificates of ``[cluster.tls]``; a connection without them is refused; an address that
does not answer is one ``CLUSTER_START`` line."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mrcohort.config import load_config
from mrcohort.errors import MrcohortError
from mrcohort.jobs.run import run_job
from tests.builders import ukbb_zip

pytestmark = pytest.mark.slow


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA), and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=mrcohort-test",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def _tls_args(cert: Path, key: Path) -> list[str]:
    return ["--tls-ca-file", str(cert), "--tls-cert", str(cert), "--tls-key", str(key)]


def _wait_for(path: Path, procs: list[subprocess.Popen], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.is_file():
        assert all(p.poll() is None for p in procs), "scheduler or worker exited"
        assert time.monotonic() < deadline, f"no {path.name} after {seconds} s"
        time.sleep(0.1)


def test_a_job_on_an_existing_tls_scheduler(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    sched_file = tmp_path / "scheduler.json"
    py = [sys.executable, "-m"]
    scheduler = subprocess.Popen(
        [*py, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--protocol", "tls", "--no-dashboard", "--scheduler-file", str(sched_file),
         *_tls_args(cert, key)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    procs = [scheduler]
    try:
        _wait_for(sched_file, procs)
        worker = subprocess.Popen(
            [*py, "distributed.cli.dask_worker", "--scheduler-file", str(sched_file),
             "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1", *_tls_args(cert, key)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(worker)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tls://127.0.0.1:")
        ukbb_zip(tmp_path / "in", "1000001")
        tls = {"ca_file": cert, "cert": cert, "key": key, "require_encryption": True}
        settings = {
            "input.source": tmp_path / "in",
            "input.cohort": "t",
            "store.path": tmp_path / "s",
            "model.device": "cpu",
            "cluster.backend": "scheduler",
            "cluster.scheduler.address": address,
            "cluster.scheduler.wait_for_workers_seconds": 60.0,
            "progress.interval_seconds": 3600.0,
        }
        cfg = load_config(None, settings | {f"cluster.tls.{k}": v for k, v in tls.items()})
        summary = run_job(cfg)
        assert (summary.n_ok, summary.n_failed) == (1, 0), summary.failures
        from distributed import Client

        for plain in (address, address.replace("tls://", "tcp://")):  # no certificate
            with pytest.raises(Exception):  # noqa: B017 - refused, however distributed says it
                Client(plain, timeout=3)
            # the failed client's clean-up now: left to a garbage collection inside the next
            # Client's start it deadlocks on distributed's loop-runner lock
            gc.collect()
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def test_a_scheduler_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    ukbb_zip(tmp_path / "in", "1000001")
    cfg = load_config(
        None,
        {"input.source": tmp_path / "in", "store.path": tmp_path / "s", "model.device": "cpu",
         "cluster.backend": "scheduler", "cluster.scheduler.address": "tcp://127.0.0.1:9",
         "cluster.scheduler.wait_for_workers_seconds": 2.0},
    )  # fmt: skip
    with pytest.raises(MrcohortError) as info:
        run_job(cfg)
    assert info.value.code == "CLUSTER_START" and "\n" not in str(info.value)
