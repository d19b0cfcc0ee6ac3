"""Stand-ins for the three stages that record where and when they ran (one JSON line each in
``<store>/probe.log``), importable by worker processes. Prepare takes `PREPARE_S`, segment
`SEGMENT_S` (sleeps: the test is about placement and waiting, not about work)."""

from __future__ import annotations

import json
import os
import time

from mrcohort.jobs.participant import ParticipantResult, WorkContext
from mrcohort.jobs.stages import Prepared, Segmented
from mrcohort.labels import MRSEG_LABEL_MAP

PREPARE_S = 0.3
SEGMENT_S = 0.4


def _record(ctx: WorkContext, stage: str, slot: str, start: float) -> None:
    from distributed import get_worker

    worker = get_worker()
    line = {
        "stage": stage,
        "slot": slot,
        "worker": worker.name,
        "address": worker.address,
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "start": start,
        "end": time.time(),
    }
    with open(ctx.store / "probe.log", "a") as fh:
        fh.write(json.dumps(line) + "\n")


def prepare(item, ctx: WorkContext) -> Prepared:
    from distributed import get_worker

    start = time.time()
    time.sleep(PREPARE_S)
    _record(ctx, "prepare", item.slot, start)
    return Prepared(item, "sha", str(ctx.store / item.slot), get_worker().address, True)


def segment(prepared: Prepared, ctx: WorkContext) -> Segmented:
    start = time.time()
    time.sleep(SEGMENT_S)
    _record(ctx, "segment", prepared.item.slot, start)
    return Segmented("seg", MRSEG_LABEL_MAP)


def measure(prepared: Prepared, segmented: Segmented, ctx: WorkContext) -> ParticipantResult:
    start = time.time()
    _record(ctx, "measure", prepared.item.slot, start)
    return ParticipantResult(prepared.item.slot, {}, {"slot": prepared.item.slot})


#: Slots whose prepare kills its worker process (as a segfault or the OOM killer would).
KILLERS = ("1000002/2_0",)


def prepare_or_die(item, ctx: WorkContext) -> Prepared:
    if item.slot in KILLERS:
        os._exit(137)
    return prepare(item, ctx)
