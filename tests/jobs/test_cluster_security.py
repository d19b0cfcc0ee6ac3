"""Nobody else let in (issue 13): the embedded cluster, started as a job starts it in a
process of its own, speaks TLS with per-run credentials, so a process without them (another
user of the machine) cannot connect; nothing serves HTTP unless the dashboard is asked for,
and then only the scheduler, on 127.0.0.1, its address printed."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

pytestmark = pytest.mark.slow

# Starts the cluster as `mrcohort run` does (open_cluster, local backend, no [cluster.tls]),
# prints what it printed and one JSON line, then holds the cluster until stdin closes.
_STARTER = """
import json, os, sys
from rich.console import Console
from mrcohort.config import load_config
from mrcohort.jobs.clusters.open import open_cluster

if __name__ == "__main__":
    cfg = load_config(None, {"input.source": ".", "store.path": "s", "model.device": "cpu",
                             "cluster.workers": 2, "cluster.dashboard": sys.argv[1] == "1"})
    with open_cluster(cfg, Console(file=sys.stdout, width=200)) as handle:
        client = handle.client
        client.wait_for_workers(2, timeout=60)
        info = client.scheduler_info()["workers"]
        print(json.dumps({
            "pid": os.getpid(),
            "address": client.scheduler.address,
            "dashboard": handle.dashboard_link,
            "workers": [a for a in info],
            "nannies": [w["nanny"] for w in info.values()],
            "answer": client.submit(sum, [40, 2]).result(),
        }), flush=True)
        sys.stdin.read()
"""


@contextmanager
def _job_cluster(dashboard: bool) -> Iterator[tuple[dict, str]]:
    """``(the JSON line, what was printed before it)`` of a cluster in another process."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _STARTER, "1" if dashboard else "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        printed = []
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.startswith("{"):
                yield json.loads(line), "".join(printed)
                break
            printed.append(line)
        else:
            pytest.fail(f"the cluster did not start: {''.join(printed)}")
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _listening(pid: int) -> dict[int, set[str]]:
    """Listening TCP addresses of process ``pid`` and of each process below it."""
    root = psutil.Process(pid)
    return {
        p.pid: {
            f"{c.laddr.ip}:{c.laddr.port}"
            for c in p.net_connections("inet")
            if c.status == psutil.CONN_LISTEN
        }
        for p in [root, *root.children(recursive=True)]
    }


def _hostport(address: str) -> str:
    return address.split("://", 1)[1].rstrip("/").split("/")[0]


def _tls_without_certificate(hostport: str) -> str:
    """What a TLS client without a certificate gets from ``hostport``: the error's name."""
    host, port = hostport.rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            ctx.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"\0" * 64)
            tls.recv(64)  # TLS 1.3: the refusal comes with the first read
    except (ssl.SSLError, OSError) as exc:
        return type(exc).__name__
    return "connected"


_INTRUDER = """
import sys
from distributed import Client
from distributed.security import Security

security = Security.temporary() if sys.argv[2] == "own" else None
try:
    with Client(sys.argv[1], timeout=5, security=security) as client:
        print("connected", client.submit(sum, [1, 1]).result(), flush=True)
except Exception as exc:
    print(type(exc).__name__, flush=True)
"""


def _client(address: str, certificate: str = "none") -> str:
    """What ``distributed.Client(address)`` gets in a process of its own, without the run's
    credentials (``certificate``: "none" or "own", a certificate of its own making); a
    process of its own also keeps a failed client's clean-up (which can hang) out of here."""
    try:
        run = subprocess.run(
            [sys.executable, "-c", _INTRUDER, address, certificate],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as exc:
        return "connected" if "connected" in str(exc.stdout or "") else "timed out"
    return (run.stdout.strip().splitlines() or ["no answer"])[0]


def test_a_process_without_the_runs_credentials_is_refused_and_nothing_serves_http() -> None:
    with _job_cluster(dashboard=False) as (info, printed):
        assert info["answer"] == 42  # the job's own client works
        address = info["address"]
        assert address.startswith("tls://127.0.0.1:")
        assert info["dashboard"] is None and "dashboard" not in printed.lower()
        # no credentials (plain TCP), someone else's certificate, TLS without a certificate
        assert not _client(address.replace("tls://", "tcp://")).startswith("connected")
        assert not _client(address).startswith("connected")
        assert not _client(address, "own").startswith("connected")
        comm = {_hostport(a) for a in [address, *info["workers"], *info["nannies"]]}
        listening = _listening(info["pid"])
        every = set().union(*listening.values())
        assert every == comm  # scheduler, nannies, workers: no HTTP port (no 8787)
        assert all(a.startswith("127.0.0.1:") for a in every)
        for hostport in every:
            assert _tls_without_certificate(hostport) != "connected", hostport


def test_the_dashboard_is_the_one_http_endpoint_on_127_0_0_1_and_printed() -> None:
    pytest.importorskip("bokeh")
    with _job_cluster(dashboard=True) as (info, printed):
        link = info["dashboard"]
        assert link.startswith("http://127.0.0.1:")
        assert f"Dask dashboard: {link}" in printed
        comm = {_hostport(a) for a in [info["address"], *info["workers"], *info["nannies"]]}
        listening = _listening(info["pid"])
        assert set().union(*listening.values()) == comm | {_hostport(link)}
        assert _hostport(link) in listening[info["pid"]]  # the scheduler's, no worker's
        with urllib.request.urlopen(link, timeout=10) as page:
            assert page.status == 200


def test_worker_jobs_start_quiet_workers() -> None:
    from mrcohort.config import load_config
    from mrcohort.jobs.clusters.jobqueue import pools_of

    for backend in ("slurm", "pbs"):
        for pool in pools_of(backend, load_config()):
            args = pool.kwargs["worker_extra_args"]
            assert "--no-dashboard" in args
            assert args[args.index("--worker-class") + 1] == (
                "mrcohort.jobs.clusters.quiet.QuietWorker"
            )


_JOB_WORKER = """
import subprocess, sys
from distributed import Client, SpecCluster
from mrcohort.jobs.clusters.quiet import QuietScheduler

if __name__ == "__main__":
    cluster = SpecCluster(workers={}, scheduler={"cls": QuietScheduler, "options": {
        "host": "127.0.0.1", "dashboard": False, "dashboard_address": None}})
    client = Client(cluster)
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
         "--host", "127.0.0.1", *sys.argv[1:]], stderr=subprocess.DEVNULL)
    client.wait_for_workers(1, timeout=60)
    print(client.submit(sum, [40, 2]).result(), flush=True)
    sys.stdin.read()
    worker.terminate()
    worker.wait()
    client.close()
    cluster.close()
"""


def test_a_worker_jobs_dask_worker_serves_no_http() -> None:
    """What a worker job runs (``dask worker`` with the pool's arguments) listens on its comm
    ports only; plain ``dask worker`` would also serve HTTP on 0.0.0.0."""
    from mrcohort.config import load_config
    from mrcohort.jobs.clusters.jobqueue import pools_of

    args = pools_of("slurm", load_config())[1].kwargs["worker_extra_args"]
    args = args[: args.index("--lifetime")]  # the walltime's: not wanted here
    proc = subprocess.Popen(
        [sys.executable, "-c", _JOB_WORKER, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "42"  # type: ignore[union-attr]
        listening = _listening(proc.pid)
        scheduler = listening.pop(proc.pid)
        assert len(scheduler) == 1  # the comm port: no 8787
        worker_side = set().union(*listening.values())
        assert len(worker_side) == 2  # the nanny's and the worker's comm ports
        assert all(a.startswith("127.0.0.1:") for a in worker_side)
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(timeout=60)
