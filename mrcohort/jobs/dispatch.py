"""Handing participant-visits to a Dask cluster: a bounded number in flight, each result
handed back as it lands; a worker that dies costs only its own input (``WORKER_LOST``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

from mrcohort.config import JobConfig
from mrcohort.jobs.clusters.local import LocalClusterSettings, start_local_cluster
from mrcohort.jobs.ledger import WorkItem
from mrcohort.jobs.participant import ParticipantResult, WorkContext
from mrcohort.jobs.records import ledger_row, lost_worker_error, work_failure_row

__all__ = ["Process", "dispatch"]

log = logging.getLogger("mrcohort")

Process = Callable[[WorkItem, WorkContext], ParticipantResult]


def _in_flight_limit(cfg: JobConfig, client: object) -> int:
    if cfg.cluster.max_in_flight:
        return cfg.cluster.max_in_flight
    workers = len(client.scheduler_info().get("workers", {})) or 1  # type: ignore[attr-defined]
    return 4 * workers


def _dashboard_available(console: Console) -> bool:
    """The Dask dashboard needs bokeh (``pip install "mrcohort[dashboard]"``)."""
    import importlib.util

    if importlib.util.find_spec("bokeh") is not None:
        return True
    console.print(
        'warning: the Dask dashboard needs bokeh (pip install "mrcohort[dashboard]"); '
        "running without it",
        highlight=False,
    )
    return False


@contextmanager
def _client(cfg: JobConfig, client: object | None, console: Console) -> Iterator[object]:
    if client is not None:
        yield client
        return
    from distributed import Client

    dashboard = cfg.cluster.dashboard and _dashboard_available(console)
    settings = LocalClusterSettings(
        n_workers=cfg.cluster.workers or None,
        torch_threads=cfg.cluster.torch_threads or None,
        memory_limit=cfg.cluster.memory_limit,
        dashboard=dashboard,
    )
    cluster = start_local_cluster(settings)
    own = Client(cluster)
    try:
        if dashboard:
            console.print(f"Dask dashboard: {cluster.dashboard_link}", highlight=False)
            log.info("Dask dashboard: %s", cluster.dashboard_link)
        yield own
    finally:
        own.close()
        cluster.close()


def dispatch(
    items: list[WorkItem],
    ctx: WorkContext,
    cfg: JobConfig,
    *,
    client: object | None,
    process: Process,
    console: Console,
    on_submit: Callable[[WorkItem], None] = lambda _item: None,
    tick_s: float = 5.0,
) -> Iterator[tuple[WorkItem, ParticipantResult] | None]:
    """Yield ``(item, result)`` as results land, keeping at most ``cluster.max_in_flight``
    items (default 4 per worker) on the cluster: the scheduler never holds 100,000 tasks and
    each worker always has the next inputs ready. Yields ``None`` when nothing landed for
    ``tick_s`` seconds, so that the caller can flush on time while long inputs run."""
    if not items:
        return
    from distributed import TimeoutError as WaitTimeout
    from distributed import wait

    with _client(cfg, client, console) as dask:
        limit = _in_flight_limit(cfg, dask)
        pending = iter(items)
        futures: dict[object, WorkItem] = {}

        def submit_next() -> bool:
            item = next(pending, None)
            if item is None:
                return False
            fut = dask.submit(  # type: ignore[attr-defined]
                process, item, ctx, key=f"pv-{ctx.run_id}-{item.slot}", pure=False
            )
            futures[fut] = item
            on_submit(item)
            return True

        while len(futures) < limit and submit_next():
            pass
        while futures:
            try:
                done, _ = wait(list(futures), timeout=tick_s, return_when="FIRST_COMPLETED")
            except WaitTimeout:
                yield None
                continue
            for fut in done:
                item = futures.pop(fut)
                result = _result_of(fut, item, ctx)
                fut.release()  # type: ignore[attr-defined]
                yield item, result
                submit_next()


def _result_of(fut: object, item: WorkItem, ctx: WorkContext) -> ParticipantResult:
    """The worker's result, or a ``WORKER_LOST`` failure when its worker died."""
    try:
        return fut.result()  # type: ignore[attr-defined]
    except Exception as exc:  # KilledWorker, lost worker, cancelled: this input only
        err = lost_worker_error(exc)
        log.warning("%s: %s", item.slot, err.message)
        failure = work_failure_row(ctx, item, err, None)
        row = ledger_row(
            ctx,
            item,
            input_sha256=None,
            segmentation_sha256=None,
            err=err,
            wrote_scans=False,
            seconds={},
            worker=None,
        )
        return ParticipantResult(item.slot, {"failures": [failure]}, row, failure)
