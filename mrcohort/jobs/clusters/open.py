"""Starting the configured backend (`open_cluster`) and knowing, before it starts, on which
device segmentation will run (`segment_device`, part of the ``model_key``)."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from mrcohort.config import JobConfig
from mrcohort.errors import MrcohortError
from mrcohort.jobs.clusters.base import ClusterHandle, cluster_error

__all__ = ["open_cluster", "segment_device"]

log = logging.getLogger("mrcohort")


def segment_device(cfg: JobConfig) -> str:
    """``"cuda"`` or ``"cpu"``: where segmentation runs with this configuration.

    ``local``: a GPU when one is visible here (``model.device`` "auto"), ``slurm``/``pbs``:
    the GPU pool's GPUs unless ``model.device`` is "cpu" or there is no GPU pool,
    ``scheduler``: ``model.device`` as given (it must say)."""
    device = cfg.model.device
    if device == "cpu":
        return "cpu"
    backend = cfg.cluster.backend
    if backend == "local":
        from mrcohort.jobs.clusters.local import local_gpus

        return "cuda" if local_gpus(device, cfg.cluster.local.gpus) else "cpu"
    if backend in ("slurm", "pbs"):
        gpu = getattr(cfg.cluster, backend).gpu
        return "cuda" if gpu.maximum_jobs > 0 and gpu.gpus_per_job > 0 else "cpu"
    return "cuda"  # scheduler: model.device says ("cpu" returned above)


def _dashboard(cfg: JobConfig, console: Console) -> bool:
    """The Dask dashboard when asked for and bokeh is there (``mrcohort[dashboard]``)."""
    if not cfg.cluster.dashboard:
        return False
    if importlib.util.find_spec("bokeh") is not None:
        return True
    console.print(
        'warning: the Dask dashboard needs bokeh (pip install "mrcohort[dashboard]"); '
        "running without it",
        highlight=False,
    )
    return False


def _start(cfg: JobConfig, dashboard: bool) -> tuple[object | None, ClusterHandle]:
    backend = cfg.cluster.backend
    if backend == "local":
        from mrcohort.jobs.clusters.local import start_local

        return start_local(cfg, dashboard)
    if backend in ("slurm", "pbs"):
        from mrcohort.jobs.clusters.pools import start_jobqueue

        return start_jobqueue(backend, cfg, dashboard)
    from mrcohort.jobs.clusters.scheduler import connect_scheduler

    return connect_scheduler(cfg)


@contextmanager
def open_cluster(cfg: JobConfig, console: Console) -> Iterator[ClusterHandle]:
    """Start (or connect to) the configured cluster; close what was started at exit.

    Raises ``CLUSTER_START`` (one line) when it cannot be started or reached."""
    dashboard = _dashboard(cfg, console)
    try:
        cluster, handle = _start(cfg, dashboard)
    except MrcohortError:
        raise
    except Exception as exc:
        raise cluster_error(cfg.cluster.backend, exc) from exc
    try:
        if handle.dashboard_link:
            console.print(f"Dask dashboard: {handle.dashboard_link}", highlight=False)
            log.info("Dask dashboard: %s", handle.dashboard_link)
        yield handle
    finally:
        handle.client.close()  # type: ignore[attr-defined]
        if cluster is not None:
            cluster.close()  # type: ignore[attr-defined]
