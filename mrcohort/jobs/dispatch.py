"""Handing participant-visits to a Dask cluster, one task per stage, chained here:

``prepare`` (CPU) → ``segment`` (``GPU=1`` where there are GPU workers; skipped when a stored
segmentation is valid) → ``measure`` (CPU, asked to run on the worker that prepared it, which
holds the stitched images). A bounded number of participant-visits is in flight: with GPU
workers, one segmenting and ``prepared_ahead`` read and stitched per GPU, so the GPU never
waits; later stages run before new reads (task priorities). Results are handed back as they
land; a worker that dies costs only its own input (``WORKER_LOST``, after
``allowed_failures`` deaths); adaptive backends are told the work that waits on every tick.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console

from mrcohort.config import JobConfig
from mrcohort.jobs import stages
from mrcohort.jobs.clusters import ClusterHandle, Demand, Placement, open_cluster
from mrcohort.jobs.ledger import Action, WorkItem
from mrcohort.jobs.participant import ParticipantResult, WorkContext
from mrcohort.jobs.records import ledger_row, lost_worker_error, work_failure_row
from mrcohort.jobs.scratch import scratch_dir

__all__ = ["StageFunctions", "dispatch", "in_flight_limit"]

log = logging.getLogger("mrcohort")

#: Task priorities: finish what is started before reading more.
_PRIORITY = {"prepare": 0, "segment": 1, "measure": 2}


@dataclass(frozen=True)
class StageFunctions:
    """What workers run for each stage (benchmarks pass stand-ins)."""

    prepare: Callable = stages.prepare
    segment: Callable = stages.segment
    measure: Callable = stages.measure


def in_flight_limit(cfg: JobConfig, gpu_slots: int, cpu_slots: int) -> int:
    """Participant-visits in flight: ``cluster.max_in_flight``, else one segmenting and
    ``prepared_ahead`` prepared per GPU slot plus 2 per CPU slot (at least 2)."""
    if cfg.cluster.max_in_flight:
        return cfg.cluster.max_in_flight
    return max(2, gpu_slots * (1 + cfg.cluster.prepared_ahead) + 2 * cpu_slots)


@contextmanager
def _cluster(
    cfg: JobConfig, client: object | None, ctx: WorkContext, console: Console
) -> Iterator[ClusterHandle]:
    if client is not None:  # the caller's cluster: any worker takes any task
        yield ClusterHandle(client, Placement(), device=ctx.device, backend="client")
        return
    with open_cluster(cfg, console) as handle:
        yield handle


@dataclass
class _Task:
    item: WorkItem
    stage: str
    prepared: object | None = None  # the prepare future, kept until the visit ends
    where: str | None = None  # the worker that prepared it (holds the stitched images)


class _Chain:
    """The futures in flight and what each one is."""

    def __init__(self, handle: ClusterHandle, ctx: WorkContext, fns: StageFunctions) -> None:
        self.handle = handle
        self.ctx = ctx
        self.fns = fns
        self.tasks: dict[object, _Task] = {}

    def _submit(self, stage: str, fn: Callable, *args: object, item: WorkItem, **kw: object):
        placement = self.handle.placement
        resources = placement.gpu if stage == "segment" else placement.cpu
        return self.handle.client.submit(  # type: ignore[attr-defined]
            fn,
            *args,
            self.ctx,
            key=f"{stage}-{self.ctx.run_id}-{item.slot}",
            pure=False,
            resources=dict(resources) if resources else None,
            priority=_PRIORITY[stage],
            **kw,
        )

    def start(self, item: WorkItem) -> None:
        fut = self._submit("prepare", self.fns.prepare, item, item=item)
        self.tasks[fut] = _Task(item, "prepare")

    def advance(self, fut: object, result: object) -> ParticipantResult | None:
        """Submit the next stage of a landed task; the final result when there is none."""
        task = self.tasks.pop(fut)
        if isinstance(result, ParticipantResult):
            self._release(task, fut)
            return result
        if task.stage == "prepare":
            where = getattr(result, "worker", None)
            if result.needs_segment:  # type: ignore[attr-defined]
                nxt = self._submit("segment", self.fns.segment, fut, item=task.item)
                self.tasks[nxt] = _Task(task.item, "segment", fut, where)
                return None
            self._measure(task.item, fut, None, where)
            return None
        if task.stage == "segment":
            self._measure(task.item, task.prepared, fut, task.where)
            return None
        raise AssertionError(f"stage {task.stage} returned {type(result).__name__}")

    def _measure(self, item: WorkItem, prepared_fut, segmented_fut, where: str | None) -> None:
        # Only ever the worker that ran `prepare` (it offers the CPU resource): a hint to a
        # worker without the task's resource breaks distributed's scheduler (KeyError).
        kw = {"workers": [where], "allow_other_workers": True} if where else {}
        nxt = self._submit(
            "measure", self.fns.measure, prepared_fut, segmented_fut, item=item, **kw
        )
        self.tasks[nxt] = _Task(item, "measure", prepared_fut, where)

    def _release(self, task: _Task, fut: object) -> None:
        fut.release()  # type: ignore[attr-defined]
        if task.prepared is not None and task.prepared is not fut:
            task.prepared.release()  # type: ignore[attr-defined]

    def lost(self, fut: object, exc: BaseException) -> ParticipantResult:
        """A task whose workers died: ``WORKER_LOST`` for its visit, its scratch removed."""
        task = self.tasks.pop(fut)
        self._release(task, fut)
        import shutil

        shutil.rmtree(scratch_dir(self.ctx.store, self.ctx.run_id, task.item.slot), True)
        return lost_result(task.item, self.ctx, exc)

    def demand(self, pending: deque[WorkItem]) -> Demand:
        """Participant-visits waiting for (or using) each pool."""
        in_flight = list(self.tasks.values())
        gpu = sum(1 for i in pending if i.action is Action.SEGMENT) + sum(
            1 for t in in_flight if t.stage == "segment"
            or (t.stage == "prepare" and t.item.action is Action.SEGMENT)
        )  # fmt: skip
        return Demand(gpu=gpu, cpu=len(pending) + len(in_flight))

    def visits(self) -> int:
        return len(self.tasks)


def lost_result(item: WorkItem, ctx: WorkContext, exc: BaseException) -> ParticipantResult:
    """The ``WORKER_LOST`` failure of one input."""
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


def dispatch(
    items: list[WorkItem],
    ctx: WorkContext,
    cfg: JobConfig,
    *,
    client: object | None,
    console: Console,
    functions: StageFunctions = StageFunctions(),
    on_submit: Callable[[WorkItem], None] = lambda _item: None,
    tick_s: float = 5.0,
) -> Iterator[tuple[WorkItem, ParticipantResult] | None]:
    """Yield ``(item, result)`` as participant-visits end (see the module docstring).
    Yields ``None`` when nothing landed for ``tick_s`` seconds, so that the caller can flush
    on time while long inputs run."""
    if not items:
        return
    from distributed import TimeoutError as WaitTimeout
    from distributed import wait

    with _cluster(cfg, client, ctx, console) as handle:
        chain = _Chain(handle, ctx, functions)
        pending = deque(items)
        last_scale = 0.0
        limit = 0

        def resize() -> int:
            live = handle.live_slots()
            planned = handle.planned_slots()
            return in_flight_limit(cfg, max(live[0], planned[0]), max(live[1], planned[1]))

        def fill() -> None:
            while pending and chain.visits() < limit:
                item = pending.popleft()
                chain.start(item)
                on_submit(item)

        handle.scale(chain.demand(pending))
        limit = resize()
        fill()
        while chain.tasks:
            try:
                done, _ = wait(list(chain.tasks), timeout=tick_s, return_when="FIRST_COMPLETED")
            except WaitTimeout:
                done = set()
            for fut in done:
                item = chain.tasks[fut].item
                try:
                    result = fut.result()  # type: ignore[attr-defined]
                except Exception as exc:  # KilledWorker, lost worker, cancelled
                    yield item, chain.lost(fut, exc)
                    continue
                final = chain.advance(fut, result)
                if final is not None:
                    yield item, final
            if time.monotonic() - last_scale > 1.0:  # workers come and go: adapt
                handle.scale(chain.demand(pending))
                limit = resize()
                last_scale = time.monotonic()
            fill()
            if not done:
                yield None
