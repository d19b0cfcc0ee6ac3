"""Running the worker-job pools of the ``slurm`` and ``pbs`` backends on one scheduler.

`PoolScaler` keeps each pool between its ``minimum_jobs`` and ``maximum_jobs``: at the
maximum while work waits for it, at the minimum once none does, and it replaces jobs that
ended (walltime ``--lifetime``, node failure, ``scancel``) while work remains. Hand-written:
distributed's ``Adaptive`` scales one kind of worker only.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from mrcohort.config import JobConfig
from mrcohort.errors import MrcohortError
from mrcohort.jobs.clusters.base import (
    CPU,
    GPU,
    ClusterHandle,
    Demand,
    Placement,
    security_of,
)
from mrcohort.jobs.clusters.jobqueue import Pool, pools_of

__all__ = ["PoolScaler", "pool_targets", "start_jobqueue"]

log = logging.getLogger("mrcohort")


def pool_targets(pools: Sequence[Pool], demand: Demand) -> dict[str, int]:
    """Jobs wanted per pool: the maximum while work waits for the pool, else the minimum.
    GPU jobs also take the CPU stages when there is no CPU pool."""
    has_cpu_pool = any(not p.gpu for p in pools)
    targets = {}
    for pool in pools:
        waiting = demand.gpu if pool.gpu else demand.cpu
        if pool.gpu and not has_cpu_pool:
            waiting = max(waiting, demand.cpu)
        targets[pool.name] = pool.maximum_jobs if waiting > 0 else pool.minimum_jobs
    return targets


@dataclass
class PoolScaler:
    """Submits and releases the pools' jobs on a ``SpecCluster`` (see the module docstring)."""

    cluster: object
    pools: Sequence[Pool]
    backend: str = "slurm"
    jobs: dict[str, list[str]] = field(default_factory=dict)
    """Spec names of each pool's current jobs."""
    seen: set[str] = field(default_factory=set)
    """Jobs whose workers have connected at least once."""
    _counter: itertools.count = field(default_factory=itertools.count)

    def __call__(self, demand: Demand) -> None:
        self._forget_ended()
        targets = pool_targets(self.pools, demand)
        changed = False
        for pool in self.pools:
            names = self.jobs.setdefault(pool.name, [])
            while len(names) < targets[pool.name]:
                name = f"{pool.name}-{next(self._counter)}"
                self.cluster.worker_spec[name] = pool.spec()  # type: ignore[attr-defined]
                names.append(name)
                changed = True
            while len(names) > targets[pool.name]:
                del self.cluster.worker_spec[names.pop()]  # type: ignore[attr-defined]
                changed = True
        if changed:
            self._apply()

    def _apply(self) -> None:
        """Submit / cancel jobs to match the spec. A submission that fails before any job
        ran is ``CLUSTER_START``; later ones are logged and retried on the next tick."""
        try:
            self.cluster.sync(self.cluster._correct_state)  # type: ignore[attr-defined]
        except Exception as exc:
            self._drop_unstarted()
            err = MrcohortError(
                "CLUSTER_START",
                f"{self.backend}: submitting a worker job failed: {submission_error(exc)}",
                stage="cluster",
            )
            if not self.seen:
                raise err from exc
            log.warning("%s", err.message)

    def _drop_unstarted(self) -> None:
        """Forget jobs whose submission failed (they would block closing the cluster)."""
        from distributed.core import Status

        for job in self.cluster._created:  # type: ignore[attr-defined]
            if job.status == Status.created:  # SpecCluster.close asserts it ended
                job.status = Status.failed
        workers = self.cluster.workers  # type: ignore[attr-defined]
        for name in [n for n, job in workers.items() if job.status == Status.failed]:
            del workers[name]
            self.cluster.worker_spec.pop(name, None)  # type: ignore[attr-defined]
            for pool_names in self.jobs.values():
                if name in pool_names:
                    pool_names.remove(name)

    def planned_slots(self) -> tuple[int, int]:
        """``(gpu, cpu)`` slots of the jobs asked for (queued ones included)."""
        gpu = cpu = 0
        for pool in self.pools:
            n = len(self.jobs.get(pool.name, []))
            if pool.gpu:
                gpu += n
                cpu += n * (pool.threads - 1)
            else:
                cpu += n * pool.processes * pool.threads
        return gpu, cpu

    def _connected(self) -> set[str]:
        """Spec names with a worker connected now (``gpu-3``, ``cpu-4-0`` → ``cpu-4``)."""
        info = self.cluster.scheduler_info.get("workers", {})  # type: ignore[attr-defined]
        names = {str(w.get("name")) for w in info.values()}
        out = set()
        for pool_names in self.jobs.values():
            for spec in pool_names:
                if spec in names or any(n.startswith(f"{spec}-") for n in names):
                    out.add(spec)
        return out

    def _forget_ended(self) -> None:
        """A job whose workers connected once and are all gone has ended: drop it (a new
        one is submitted when the pool still needs it)."""
        connected = self._connected()
        self.seen |= connected
        for pool_names in self.jobs.values():
            for spec in [n for n in pool_names if n in self.seen and n not in connected]:
                log.warning("worker job %s ended; replacing it while work remains", spec)
                pool_names.remove(spec)
                self.cluster.worker_spec.pop(spec, None)  # type: ignore[attr-defined]
                self.seen.discard(spec)


def start_jobqueue(backend: str, cfg: JobConfig, dashboard: bool) -> tuple[object, ClusterHandle]:
    """The ``slurm``/``pbs`` backend: a scheduler here, pools of worker jobs."""
    import dask
    from distributed import Client, SpecCluster

    from mrcohort.jobs.clusters.quiet import QuietScheduler

    c = cfg.cluster
    security = security_of(c.tls)
    pools = pools_of(backend, cfg, security)
    where = {"interface": c.interface} if c.interface else {"host": c.host}
    scheduler = {
        "cls": QuietScheduler,  # no HTTP server unless the dashboard is asked for
        "options": {
            **where,
            "protocol": "tls://" if security is not None else "tcp://",
            "dashboard": dashboard,
            "dashboard_address": f"{c.host}:0" if dashboard else None,  # never 0.0.0.0
            "security": security,
        },
    }
    with dask.config.set(
        {
            # distributed gives a task up when its deaths EXCEED this value
            "distributed.scheduler.allowed-failures": c.allowed_failures - 1,
            "distributed.scheduler.worker-saturation": 1.0,  # see clusters.local
        }
    ):
        cluster = SpecCluster(
            workers={},
            scheduler=scheduler,
            security=security,
            name=f"mrcohort-{backend}",
            silence_logs=40,
        )
    client = Client(cluster, security=security)
    scaler = PoolScaler(cluster, pools, backend)
    has_gpu = any(p.gpu for p in pools)
    placement = Placement(cpu={CPU: 1}, gpu={GPU: 1} if has_gpu else {CPU: 1})
    handle = ClusterHandle(
        client=client,
        placement=placement,
        device="cpu" if cfg.model.device == "cpu" or not has_gpu else "cuda",
        backend=backend,
        dashboard_link=cluster.dashboard_link if dashboard else None,
        scale=scaler,
        planned_slots=scaler.planned_slots,
    )
    return cluster, handle


def submission_error(exc: BaseException) -> str:
    """The scheduler's own complaint: the last line of sbatch/qsub's stderr, which
    dask-jobqueue puts in its error after ``stderr:``."""
    text = str(exc)
    if "stderr:" in text:
        lines = [ln.strip() for ln in text.split("stderr:", 1)[1].splitlines() if ln.strip()]
        if lines:
            return lines[-1]
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
