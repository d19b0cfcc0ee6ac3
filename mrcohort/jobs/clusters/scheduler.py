"""Backend ``scheduler``: an existing Dask scheduler by address (one a user runs, or one
that dask-gateway or a Kubernetes operator hands out). Its workers are what they are: GPU
workers are those offering the resource ``GPU``; CPU stages ask ``CPU=1`` only when some
worker offers ``CPU``."""

from __future__ import annotations

from mrcohort.config import JobConfig
from mrcohort.errors import MrcohortError
from mrcohort.jobs.clusters.base import CPU, GPU, ClusterHandle, Placement, security_of

__all__ = ["connect_scheduler", "placement_of"]


def placement_of(workers: dict[str, dict]) -> Placement:
    """Where each kind of task goes, from the workers' advertised resources."""
    resources = [w.get("resources") or {} for w in workers.values()]
    gpu = {GPU: 1} if any(r.get(GPU) for r in resources) else None
    cpu = {CPU: 1} if any(r.get(CPU) for r in resources) else None
    return Placement(cpu=cpu, gpu=gpu)


def connect_scheduler(cfg: JobConfig) -> tuple[None, ClusterHandle]:
    """Connect to ``cluster.scheduler.address`` and wait for its first worker."""
    from distributed import Client

    c = cfg.cluster
    if cfg.model.device == "auto":
        raise MrcohortError(
            "BAD_CONFIG",
            'backend "scheduler": set model.device to "cuda" or "cpu" (the workers are not '
            "this machine, so their device cannot be detected here)",
            stage="config",
        )
    timeout = min(30.0, c.scheduler.wait_for_workers_seconds)
    client = Client(c.scheduler.address, security=security_of(c.tls), timeout=timeout)
    try:
        client.wait_for_workers(1, timeout=c.scheduler.wait_for_workers_seconds)
    except Exception:
        client.close()
        raise
    placement = placement_of(client.scheduler_info(n_workers=-1).get("workers", {}))
    device = "cpu" if cfg.model.device == "cpu" else "cuda"
    return None, ClusterHandle(
        client=client, placement=placement, device=device, backend="scheduler"
    )
