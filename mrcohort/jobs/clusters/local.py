"""The embedded Dask cluster: a ``LocalCluster`` bound to 127.0.0.1 (the default backend)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class LocalClusterSettings:
    """Sizing of the embedded cluster.

    Attributes
    ----------
    n_workers
        Worker processes; ``None`` = one per 4 cores (at least 1): each worker runs torch
        with ``torch_threads`` threads, so fewer, fatter workers avoid oversubscription.
    torch_threads
        Threads torch may use in each worker; ``None`` = cores / workers.
    processes
        Separate worker processes (True) or threads in this process (False, for tests).
    memory_limit
        Per worker (``"auto"``: the machine's memory shared out).
    dashboard
        Serve the Dask dashboard on 127.0.0.1 (a free port); off by default: no HTTP
        endpoint at all.
    """

    n_workers: int | None = None
    torch_threads: int | None = None
    processes: bool = True
    memory_limit: str = "auto"
    dashboard: bool = False

    def resolved(self) -> tuple[int, int]:
        cores = os.cpu_count() or 1
        workers = self.n_workers or max(1, cores // 4)
        threads = self.torch_threads or max(1, cores // workers)
        return workers, threads


def start_local_cluster(settings: LocalClusterSettings):  # -> distributed.LocalCluster
    """Start a LocalCluster on loopback (the dashboard only when asked for, also on
    loopback), workers allowed to fork."""
    import dask
    from distributed import LocalCluster

    workers, threads = settings.resolved()
    env = {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "MRCOHORT_TORCH_THREADS": str(threads),
    }
    with dask.config.set(
        {
            "distributed.worker.daemon": False,
            "distributed.nanny.pre-spawn-environ": env,
            "distributed.logging.distributed": "error",
        }
    ):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=settings.processes,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0" if settings.dashboard else None,
            memory_limit=settings.memory_limit,
            silence_logs=40,
        )
