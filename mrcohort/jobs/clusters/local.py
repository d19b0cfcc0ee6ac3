"""The embedded cluster (backend ``local``, the default): worker processes on this machine,
scheduler on 127.0.0.1.

One GPU worker per GPU, each pinned to its own device with ``CUDA_VISIBLE_DEVICES`` (so
every worker's ``cuda`` is a different GPU) and offering the resource ``GPU=1``; CPU workers
offering ``CPU=1`` read, stitch and measure. Without a GPU there are only CPU workers and
segmentation runs on them (no resources asked).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from mrcohort.config import JobConfig
from mrcohort.errors import MrcohortError
from mrcohort.jobs.clusters.base import CPU, GPU, ClusterHandle, Placement, run_security

__all__ = ["LocalClusterSettings", "local_gpus", "start_local", "start_local_cluster"]


@dataclass(frozen=True)
class LocalClusterSettings:
    """Sizing of the embedded cluster.

    Attributes
    ----------
    n_workers
        CPU worker processes; ``None`` = one per 4 cores (at least 1) beside the GPU
        workers: each worker runs torch with ``torch_threads`` threads, so fewer, fatter
        workers avoid oversubscription.
    torch_threads
        Threads torch may use in each worker; ``None`` = cores / workers.
    gpus
        GPU ids (as ``CUDA_VISIBLE_DEVICES`` names them), one GPU worker each.
    processes
        Separate worker processes (True) or threads in this process (False, for tests).
    memory_limit
        Per worker (``"auto"``: the machine's memory shared out).
    dashboard
        Serve the Dask dashboard on the scheduler's host (a free port); off by default.
    host
        Address the scheduler binds to (127.0.0.1 unless the config says otherwise).
    allowed_failures
        Worker deaths after which a task is given up (``WORKER_LOST``).
    """

    n_workers: int | None = None
    torch_threads: int | None = None
    gpus: tuple[str, ...] = ()
    processes: bool = True
    memory_limit: str = "auto"
    dashboard: bool = False
    host: str = "127.0.0.1"
    allowed_failures: int = 3

    def resolved(self) -> tuple[int, int]:
        """``(cpu workers, torch threads per worker)``."""
        cores = _cores()
        workers = self.n_workers or max(1, (cores - len(self.gpus)) // 4)
        threads = self.torch_threads or max(1, cores // (workers + len(self.gpus)))
        return workers, threads


def _cores() -> int:
    """Cores this process may use (a batch job's allocation, not the whole node's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_gpus(
    device: str, chosen: Sequence[int], visible: Sequence[str] | None = None
) -> list[str]:
    """The GPUs the local cluster starts a worker on, as ``CUDA_VISIBLE_DEVICES`` ids.

    ``device`` is ``model.device``: ``"cpu"`` → none, ``"cuda:N"`` → the N-th visible GPU,
    ``"auto"`` / ``"cuda"`` → ``chosen`` ([] = every visible GPU). ``visible`` defaults to
    this process's GPUs (its ``CUDA_VISIBLE_DEVICES``, else torch's device count).

    Raises ``NO_GPU`` when a GPU is required (``cuda``, ``cuda:N``, ``chosen``) but not there.
    """
    if device == "cpu":
        return []
    gpus = list(_visible_gpus() if visible is None else visible)
    if device.startswith("cuda:"):
        chosen = [int(device.split(":")[1])]
    missing = [n for n in chosen if n >= len(gpus)]
    if missing or (device.startswith("cuda") and not gpus):
        raise MrcohortError(
            "NO_GPU",
            f"model.device {device!r} / cluster.local.gpus {list(chosen)}: "
            f"{len(gpus)} GPU(s) visible",
            stage="cluster",
        )
    return [gpus[n] for n in chosen] if chosen else gpus


def _visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    import torch

    return [str(n) for n in range(torch.cuda.device_count())]


def _worker_spec(
    settings: LocalClusterSettings, threads: int, security: object | None = None
) -> dict[str, dict]:
    """Dask worker specs: ``gpu-<id>`` pinned workers, then ``cpu-<n>`` workers (the
    ``security`` credentials passed to each: a worker process gets them through its pipe)."""
    from distributed import Nanny

    from mrcohort.jobs.clusters.quiet import QuietWorker

    cls = Nanny if settings.processes else QuietWorker
    base = {"nthreads": 1, "memory_limit": settings.memory_limit, "host": settings.host}
    if security is not None:
        base["security"] = security
    if settings.processes:
        base["env"] = _thread_env(threads)
        base["worker_class"] = QuietWorker  # no HTTP server in the worker processes
        base["silence_logs"] = logging.ERROR  # the worker's start/stop chatter off stderr
    specs: dict[str, dict] = {}
    for gpu in settings.gpus:
        options = {**base, "resources": {GPU: 1}}
        options["env"] = {**base.get("env", {}), "CUDA_VISIBLE_DEVICES": gpu}
        specs[f"gpu-{gpu}"] = {"cls": cls, "options": options}
    workers, _ = settings.resolved()
    cpu_options = dict(base)
    if settings.gpus:  # CPU workers take CPU stages only, and never touch a GPU
        cpu_options["resources"] = {CPU: 1}
        if settings.processes:
            cpu_options["env"] = {**base["env"], "CUDA_VISIBLE_DEVICES": ""}
    for n in range(workers):
        specs[f"cpu-{n}"] = {"cls": cls, "options": dict(cpu_options)}
    return specs


def _thread_env(threads: int) -> dict[str, str]:
    return {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "MRCOHORT_TORCH_THREADS": str(threads),
    }


def start_local_cluster(settings: LocalClusterSettings, security: object | None = None):
    """Start the embedded cluster (a ``distributed.SpecCluster``): scheduler on
    ``settings.host``; workers allowed to fork.

    With ``security`` (a ``distributed.Security``) every connection is TLS and needs its
    certificate; the job passes `run_security`'s. No process serves HTTP unless
    ``settings.dashboard``, and then only the scheduler, on ``settings.host`` (a free port)."""
    import dask
    from distributed import SpecCluster

    from mrcohort.jobs.clusters.quiet import QuietScheduler

    _, threads = settings.resolved()
    protocol = "tls://" if security is not None else "tcp://"
    scheduler = {
        "cls": QuietScheduler,
        "options": {
            "host": settings.host,
            "protocol": protocol,
            "dashboard": settings.dashboard,
            "dashboard_address": f"{settings.host}:0" if settings.dashboard else None,
            "security": security,
        },
    }
    if not settings.processes:
        scheduler["options"]["protocol"] = "inproc://"
    with dask.config.set(
        {
            "distributed.worker.daemon": False,
            "distributed.logging.distributed": "error",
            # distributed gives a task up when its deaths EXCEED this value
            "distributed.scheduler.allowed-failures": settings.allowed_failures - 1,
            # queued tasks wait on the scheduler until a thread is free, not on a worker:
            # fewer innocent tasks are blamed when a worker dies (distributed counts every
            # task assigned to a dying worker toward allowed-failures)
            "distributed.scheduler.worker-saturation": 1.0,
        }
    ):
        return SpecCluster(
            workers=_worker_spec(settings, threads, security),
            scheduler=scheduler,
            security=security,
            silence_logs=40,
            name="mrcohort-local",
        )


def start_local(cfg: JobConfig, dashboard: bool) -> tuple[object, ClusterHandle]:
    """The local backend: its cluster and the handle the job uses."""
    from distributed import Client

    c = cfg.cluster
    gpus = tuple(local_gpus(cfg.model.device, c.local.gpus))
    settings = LocalClusterSettings(
        n_workers=c.workers or None,
        torch_threads=c.torch_threads or None,
        gpus=gpus,
        memory_limit=c.memory_limit,
        dashboard=dashboard,
        host=c.host,
        allowed_failures=c.allowed_failures,
    )
    security = run_security(c.tls)  # [cluster.tls], else per-run credentials
    cluster = start_local_cluster(settings, security)
    client = Client(cluster, security=security)
    placement = Placement(cpu={CPU: 1}, gpu={GPU: 1}) if gpus else Placement()
    handle = ClusterHandle(
        client=client,
        placement=placement,
        device="cuda" if gpus else "cpu",
        backend="local",
        dashboard_link=cluster.dashboard_link if dashboard else None,
    )
    return cluster, handle
