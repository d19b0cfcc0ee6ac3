"""Worker jobs on a batch scheduler through dask-jobqueue (backends ``slurm`` and ``pbs``):
one Dask scheduler in this process, a GPU pool and a CPU pool of worker jobs.

dask-jobqueue's clusters hold ONE kind of worker job; a job that wants GPU jobs for
segmentation and CPU jobs for reading, stitching and measuring needs two kinds on one
scheduler (distributed#2118 is still open). So the pools are built here from dask-jobqueue's
own job classes (``SLURMJob``/``PBSJob``: their job scripts, their ``jobqueue.yaml``
settings) on a ``distributed.SpecCluster``, and scaled by the work that waits (`PoolScaler`).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mrcohort.config import JobConfig
from mrcohort.config_cluster import PoolConfig, parse_walltime
from mrcohort.errors import MrcohortError
from mrcohort.jobs.clusters.base import CPU, GPU

__all__ = ["POOLS", "Pool", "job_scripts", "pools_of"]

log = logging.getLogger("mrcohort")

POOLS = ("gpu", "cpu")
#: Used only where neither the job config nor jobqueue.yaml sets the key.
FALLBACK: dict[str, dict[str, Any]] = {
    "gpu": {"cores": 8, "memory": "64GB", "processes": 1, "walltime": "24:00:00"},
    "cpu": {"cores": 8, "memory": "32GB", "processes": 8, "walltime": "24:00:00"},
}
_PASSED = (
    "queue",
    "account",
    "walltime",
    "cores",
    "memory",
    "processes",
    "local_directory",
    "log_directory",
    "python",
    "resource_spec",
)
#: Placeholder for the scheduler's address in printed job scripts.
SCHEDULER_PLACEHOLDER = "tcp://SCHEDULER-ADDRESS:8786"


@dataclass(frozen=True)
class Pool:
    """One pool of worker jobs: the job class and its keyword arguments."""

    name: str
    job_cls: type
    kwargs: Mapping[str, Any]
    processes: int
    threads: int
    minimum_jobs: int
    maximum_jobs: int
    gpu: bool
    config_name: str = ""

    def spec(self) -> dict[str, Any]:
        """A ``SpecCluster`` worker spec: one job, ``processes`` workers in it."""
        spec: dict[str, Any] = {"cls": self.job_cls, "options": dict(self.kwargs)}
        if self.processes > 1:
            spec["group"] = [f"-{i}" for i in range(self.processes)]
        return spec

    def job_script(self, scheduler: str = SCHEDULER_PLACEHOLDER, name: str = "") -> str:
        return self.job_cls(scheduler, name=name or f"{self.name}-0", **self.kwargs).job_script()


def _yaml(config_name: str, key: str) -> Any:
    """The key's value in the user's dask-jobqueue configuration (``jobqueue.yaml``, or
    ``DASK_JOBQUEUE__...`` variables); None where it is dask-jobqueue's shipped default (its
    30-minute walltime is no setting of the user's)."""
    import dask
    import dask_jobqueue  # noqa: F401  (loads dask-jobqueue's defaults into dask.config)

    dotted = f"jobqueue.{config_name}.{key.replace('_', '-')}"
    value = dask.config.get(dotted, None)
    return None if value == _shipped().get(dotted) else value


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    """dask-jobqueue's own defaults (the ``jobqueue.yaml`` in its package), flattened."""
    from importlib import resources

    import yaml

    text = resources.files("dask_jobqueue").joinpath("jobqueue.yaml").read_text()
    flat: dict[str, Any] = {}
    for name, table in (yaml.safe_load(text).get("jobqueue") or {}).items():
        for key, value in (table or {}).items():
            flat[f"jobqueue.{name}.{key}"] = value
    return flat


def _set(value: Any) -> bool:
    return value not in (None, "", [], (), 0)


def _lifetime_args(walltime: str, margin_minutes: float) -> list[str]:
    """``--lifetime`` and ``--lifetime-stagger`` so that a worker leaves (finishing its task,
    its work moved elsewhere) before the walltime kills it: walltime − margin − stagger, at
    least half the walltime; the stagger (≤ 5 min) keeps workers from leaving together."""
    wall = parse_walltime(walltime)
    stagger = min(300.0, 0.05 * wall)
    lifetime = max(0.5 * wall, wall - 60.0 * margin_minutes - stagger)
    return ["--lifetime", f"{int(lifetime)}s", "--lifetime-stagger", f"{int(stagger)}s"]


def pool_kwargs(
    backend: str, name: str, pool: PoolConfig, cfg: JobConfig, security: object | None = None
) -> Pool:
    """The job keyword arguments of one pool: the job config's keys, then jobqueue.yaml, then
    mrcohort's fallbacks; plus the worker resources, the lifetime and the GPU request."""
    config_name = pool.config_name or backend
    if pool.resource_spec and backend != "pbs":
        raise MrcohortError(
            "BAD_CONFIG",
            f"cluster.{backend}.{name}.resource_spec is a PBS setting; use "
            "job_extra_directives for SLURM",
            stage="config",
        )
    kw: dict[str, Any] = {"config_name": config_name}
    for key in _PASSED:
        value = getattr(pool, key)
        if _set(value):
            kw[key] = value
        elif key in FALLBACK[name] and not _set(_yaml(config_name, key)):
            kw[key] = FALLBACK[name][key]
    if not _set(_yaml(config_name, "name")):
        kw["job_name"] = f"mrcohort-{name}"
    if "python" not in kw and not _set(_yaml(config_name, "python")):
        kw["python"] = sys.executable
    effective = {k: kw.get(k, _yaml(config_name, k)) for k in ("cores", "processes", "walltime")}
    gpu = pool.gpus_per_job > 0
    processes = int(effective["processes"] or 1)
    if gpu and (pool.gpus_per_job > 1 or processes > 1):
        raise MrcohortError(
            "BAD_CONFIG",
            f"cluster.{backend}.{name}: a GPU job runs one worker on one GPU "
            "(gpus_per_job = 1, processes = 1); ask for more jobs instead",
            stage="config",
        )
    threads = max(1, int(effective["cores"] or 1) // processes)
    resources = (
        f"{GPU}=1" + (f",{CPU}={threads - 1}" if threads > 1 else "") if gpu else f"{CPU}={threads}"
    )
    args = [*(_yaml(config_name, "worker_extra_args") or []), *pool.worker_extra_args]
    args += ["--resources", resources]
    if "--worker-class" not in args:  # no HTTP server on the worker nodes (clusters.quiet)
        args += ["--worker-class", "mrcohort.jobs.clusters.quiet.QuietWorker"]
    if "--dashboard" not in args:
        args += ["--no-dashboard"]
    if effective["walltime"] and "--lifetime" not in args:
        args += _lifetime_args(str(effective["walltime"]), cfg.cluster.lifetime_margin_minutes)
    kw["worker_extra_args"] = args
    kw["job_extra_directives"] = [
        *(_yaml(config_name, "job_extra_directives") or []),
        *pool.job_extra_directives,
    ]
    kw["job_script_prologue"] = [
        *(_yaml(config_name, "job_script_prologue") or []),
        *pool.job_script_prologue,
        *_thread_exports(cfg.cluster.torch_threads or (1 if gpu else threads)),
    ]
    if cfg.cluster.interface:
        kw["interface"] = cfg.cluster.interface
    if security is not None:
        kw["security"] = security
        kw["protocol"] = "tls://"
    backend_module = _backend(backend)
    if gpu:
        if "resource_spec" not in kw and _set(_yaml(config_name, "resource_spec")):
            kw["resource_spec"] = _yaml(config_name, "resource_spec")
        memory = kw.get("memory") or _yaml(config_name, "memory")
        backend_module.request_gpus(kw, pool.gpus_per_job, effective["cores"], memory)
    return Pool(
        name=name,
        job_cls=backend_module.job_class(),
        kwargs=kw,
        processes=processes,
        threads=threads,
        minimum_jobs=pool.minimum_jobs,
        maximum_jobs=pool.maximum_jobs,
        gpu=gpu,
        config_name=config_name,
    )


def _thread_exports(threads: int) -> list[str]:
    return [
        f"export OMP_NUM_THREADS={threads}",
        f"export MKL_NUM_THREADS={threads}",
        f"export MRCOHORT_TORCH_THREADS={threads}",
    ]


def _backend(backend: str) -> Any:
    """The backend's small module (``slurm`` or ``pbs``): job class and GPU request."""
    import importlib

    return importlib.import_module(f"mrcohort.jobs.clusters.{backend}")


def pools_of(backend: str, cfg: JobConfig, security: object | None = None) -> list[Pool]:
    """The pools of ``cfg`` for ``backend`` (a pool with ``maximum_jobs = 0`` is left out)."""
    table = getattr(cfg.cluster, backend)
    pools = [
        pool_kwargs(backend, name, getattr(table, name), cfg, security)
        for name in POOLS
        if getattr(table, name).maximum_jobs > 0
    ]
    if not any(p.gpu for p in pools) and not pools:
        raise MrcohortError(
            "BAD_CONFIG",
            f"cluster.{backend}: no pool can take work (maximum_jobs = 0 for gpu and cpu)",
            stage="config",
        )
    return pools


def job_scripts(backend: str, cfg: JobConfig) -> dict[str, str]:
    """The job script of each pool, as it would be submitted (the scheduler's address is a
    placeholder: it is known only once the job runs)."""
    from mrcohort.jobs.clusters.base import security_of

    security = security_of(cfg.cluster.tls)
    pools = pools_of(backend, cfg, security)
    address = SCHEDULER_PLACEHOLDER.replace("tcp://", "tls://" if security else "tcp://")
    return {pool.name: pool.job_script(address) for pool in pools}
