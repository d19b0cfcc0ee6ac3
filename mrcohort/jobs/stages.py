"""The stages of one participant-visit, each a separate Dask task:

1. `prepare` (CPU): hash the input, read it, write its ``scans`` rows, stitch, look for a
   stored segmentation; the stitched channels stay in the worker (`scratch.CACHE`), the
   model's channel goes to the store's scratch area.
2. `segment` (``GPU=1`` on GPU workers): the model on that channel, the segmentation stored
   content-addressed. Skipped when a stored segmentation is valid.
3. `measure` (CPU, on the preparing worker when it can): the biomarker rows, and the QC
   picture written into the store (`mrcohort.jobs.qc_picture`).

Each returns its small product, or the participant-visit's final `ParticipantResult` (a
failure row, or an unchanged input): a failure in any stage is one row, never an exception.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import SimpleITK as sitk

from mrcohort.cohort import (
    LoadedVisit,
    get_layout,
    load_layout,
    load_visit,
    place_stations,
    station_seams,
    stitch_channels,
)
from mrcohort.errors import MrcohortError, guard
from mrcohort.faults import failpoint
from mrcohort.io.files import sha256_file
from mrcohort.io.images import read_image, same_grid, write_image
from mrcohort.jobs.ledger import Action, WorkItem
from mrcohort.jobs.participant import (
    ParticipantResult,
    WorkContext,
    label_map_of,
    measure_rows,
    segmentation_path,
    stored_segmentation,
)
from mrcohort.jobs.qc_picture import with_picture, write_picture
from mrcohort.jobs.records import ledger_row, work_failure_row
from mrcohort.jobs.scan_rows import scan_rows
from mrcohort.jobs.scratch import CACHE, read_channel, scratch_dir, write_channel
from mrcohort.labels import LabelMap

__all__ = ["Prepared", "Segmented", "discard", "measure", "prepare", "segment"]

log = logging.getLogger(__name__)


class StageClock:
    """Seconds per stage, and the stage each block runs in (``guard``)."""

    def __init__(self, seconds: dict[str, float] | None = None) -> None:
        self.seconds: dict[str, float] = dict(seconds or {})

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            with guard(name):
                yield
        finally:
            spent = time.perf_counter() - start
            self.seconds[name] = round(self.seconds.get(name, 0.0) + spent, 3)


@dataclass
class Prepared:
    """What `prepare` hands on (small: no images)."""

    item: WorkItem
    input_sha: str
    scratch: str
    worker: str | None
    needs_segment: bool
    tables: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    seams: tuple[tuple[float, ...], ...] = ()  # station seams: world points (LPS, mm)


@dataclass
class Segmented:
    """What `segment` hands on: the stored segmentation's hash and the model's labels."""

    segmentation_sha: str
    label_map: LabelMap
    seconds: dict[str, float] = field(default_factory=dict)


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def _final(
    ctx: WorkContext,
    item: WorkItem,
    *,
    input_sha: str | None,
    seg_sha: str | None,
    tables: dict[str, list[dict[str, object]]],
    seconds: dict[str, float],
    err: MrcohortError | None = None,
    action: str | None = None,
) -> ParticipantResult:
    """The participant-visit's result: its rows, a failures row if ``err``, its ledger row."""
    failure = None
    if err is not None:
        failure = work_failure_row(ctx, item, err, input_sha)
        tables = {**tables, "failures": [failure]}
    row = ledger_row(
        ctx,
        item,
        input_sha256=input_sha,
        segmentation_sha256=seg_sha,
        err=err,
        wrote_scans=bool(tables.get("scans")),
        seconds=seconds,
        worker=socket.gethostname(),
        action=action,
    )
    return ParticipantResult(item.slot, tables, row, failure)


def _unchanged(item: WorkItem, input_sha: str | None) -> bool:
    """The input hashes to what its slot's last successful attempt measured."""
    return item.action is Action.SEGMENT and input_sha is not None and input_sha == item.done_sha256


def _read_and_stitch(ctx: WorkContext, item: WorkItem, input_sha: str, clock: StageClock):
    """The visit, its stitched Dixon channels and the seams between its stations."""
    pv = item.pv
    assert pv is not None, "a work item of a stage has its participant-visit"
    with clock("ingest"):
        visit: LoadedVisit = load_visit(pv, config=ctx.layout_config, input_sha256=input_sha)
    with clock("stitch"):
        # "auto": header positions when the stations carry them, else image content
        placed = place_stations(visit.images("dixon"), positions="auto")
        stitched = stitch_channels(placed, positions="auto")
        seams = tuple(tuple(map(float, p)) for p in station_seams(next(iter(placed.values()))))
    return visit, stitched, seams


def prepare(item: WorkItem, ctx: WorkContext) -> Prepared | ParticipantResult:
    """Stage 1 (CPU): read, stitch, check a stored segmentation. See the module docstring."""
    pv = item.pv
    assert pv is not None, "prepare needs a participant-visit"
    clock = StageClock()
    input_sha: str | None = None
    tables: dict[str, list[dict[str, object]]] = {}
    try:
        with clock("ingest"):
            # a zip's bytes identify the input before reading, even when it is unreadable
            input_sha = get_layout(pv.layout).file_sha256(pv)
        if _unchanged(item, input_sha):  # a touched, copied or moved file, content measured
            return _final(
                ctx, item, input_sha=input_sha, seg_sha=item.done_segmentation_sha256,
                tables={}, seconds=clock.seconds, action="unchanged",
            )  # fmt: skip
        visit, stitched, seams = _read_and_stitch(ctx, item, input_sha, clock)
        input_sha = visit.input_sha256
        with clock("ingest"):
            if input_sha != item.scans_sha256:
                config = ctx.layout_config or load_layout(pv.layout)
                tables["scans"] = scan_rows(
                    visit, cohort=ctx.cohort, config=config, run_id=ctx.run_id
                )
        with clock("segment"):
            path = segmentation_path(ctx.store, ctx.model_key, input_sha)
            stored = stored_segmentation(item, path, input_sha, stitched[ctx.channel])
            folder = scratch_dir(ctx.store, ctx.run_id, item.slot)
            if stored is None:
                write_channel(folder, ctx.channel, stitched[ctx.channel])
            CACHE.put(str(folder), stitched)
            failpoint("stage.prepare")
    except MrcohortError as err:
        return _final(
            ctx, item, input_sha=input_sha, seg_sha=None, tables=tables,
            seconds=clock.seconds, err=err,
        )  # fmt: skip
    return Prepared(
        item=item,
        input_sha=input_sha,
        scratch=str(folder),
        worker=_worker_address(),
        needs_segment=stored is None,
        tables=tables,
        seconds=clock.seconds,
        seams=seams,
    )


def _model_input(prepared: Prepared, channel: str) -> sitk.Image:
    """The model's channel: from this process's cache, else from the scratch area."""
    from pathlib import Path

    images = CACHE.get(prepared.scratch)
    if images is not None:
        return images[channel]
    try:
        return read_channel(Path(prepared.scratch), channel)
    except FileNotFoundError:
        raise MrcohortError(
            "SCRATCH_MISSING",
            f"the stitched image of {prepared.item.slot} is gone from the scratch area",
            stage="segment",
        ) from None


def segment(prepared: Prepared, ctx: WorkContext) -> Segmented | ParticipantResult:
    """Stage 2 (GPU): the model on the stitched channel, the result stored
    content-addressed (``segmentations/<model_key>/<input_sha256>.nii.gz``)."""
    from mrcohort.segmentation.predictor import get_segmenter  # torch: only where it runs

    clock = StageClock()
    try:
        with clock("segment"):
            image = _model_input(prepared, ctx.channel)
            segmenter = get_segmenter(ctx.model, ctx.inference, device=ctx.device)
            seg = segmenter.segment(image)
            path = segmentation_path(ctx.store, ctx.model_key, prepared.input_sha)
            write_image(seg, path)
            seg_sha = sha256_file(path)
            failpoint("stage.segment")
    except MrcohortError as err:
        discard(prepared)
        return _final(
            ctx, prepared.item, input_sha=prepared.input_sha, seg_sha=None,
            tables=prepared.tables, seconds=_add(prepared.seconds, clock.seconds), err=err,
        )  # fmt: skip
    return Segmented(seg_sha, segmenter.label_map, clock.seconds)


def _add(*parts: dict[str, float]) -> dict[str, float]:
    total: dict[str, float] = {}
    for part in parts:
        for name, seconds in part.items():
            total[name] = round(total.get(name, 0.0) + seconds, 3)
    return total


def _stitched_again(prepared: Prepared, ctx: WorkContext, clock: StageClock) -> dict:
    """The stitched channels when this worker does not hold them (another worker prepared
    them, or it restarted): read and stitched again — the same input, checked by hash."""
    item = prepared.item
    assert item.pv is not None
    log.info("%s: stitched images not on this worker; reading the input again", item.slot)
    with clock("ingest"):
        sha = get_layout(item.pv.layout).file_sha256(item.pv)
    visit, stitched, _ = _read_and_stitch(ctx, item, sha, clock)
    if visit.input_sha256 != prepared.input_sha:
        raise MrcohortError(
            "INPUT_CHANGED",
            f"{item.source} changed while its participant-visit was processed",
            stage="measure",
        )
    return stitched


def measure(prepared: Prepared, segmented: Segmented | None, ctx: WorkContext) -> ParticipantResult:
    """Stage 3 (CPU): the biomarker rows from the stitched channels and the segmentation
    (the one just computed, or the stored one `prepare` found valid)."""

    item = prepared.item
    clock = StageClock(_add(prepared.seconds, segmented.seconds if segmented else {}))
    seg_sha = segmented.segmentation_sha if segmented else item.segmentation_sha256
    action = Action.SEGMENT.value if segmented else Action.MEASURE.value
    tables = dict(prepared.tables)
    try:
        stitched = CACHE.get(prepared.scratch) or _stitched_again(prepared, ctx, clock)
        with clock("measure"):
            path = segmentation_path(ctx.store, ctx.model_key, prepared.input_sha)
            seg = _checked_segmentation(path, seg_sha, stitched[ctx.channel], item.slot)
            label_map = segmented.label_map if segmented else label_map_of(ctx)
            pv_keys = {"cohort": ctx.cohort, "participant_id": item.pv.participant_id,  # type: ignore[union-attr]
                       "visit": item.pv.visit}  # type: ignore[union-attr]  # fmt: skip
            tables |= measure_rows(ctx, pv_keys, seg, stitched, label_map, prepared.input_sha)
            # written before the rows naming it are returned; a failure is a warning only
            picture = write_picture(ctx, pv_keys, stitched, seg, label_map, prepared.seams)
            tables = with_picture(tables, picture)
            failpoint("stage.measure")
    except MrcohortError as err:
        return _final(
            ctx, item, input_sha=prepared.input_sha, seg_sha=seg_sha, tables=tables,
            seconds=clock.seconds, err=err, action=action,
        )  # fmt: skip
    finally:
        discard(prepared)
    return _final(
        ctx, item, input_sha=prepared.input_sha, seg_sha=seg_sha, tables=tables,
        seconds=clock.seconds, action=action,
    )  # fmt: skip


def _checked_segmentation(path, seg_sha: str | None, grid: sitk.Image, slot: str) -> sitk.Image:
    """The stored segmentation, checked against its recorded hash and the stitched grid."""
    if seg_sha is None or not path.is_file() or sha256_file(path) != seg_sha:
        raise MrcohortError(
            "SEGMENTATION_CHANGED",
            f"{slot}: segmentation {path.name} is missing or changed since it was written",
            stage="measure",
        )
    seg = read_image(path)
    if not same_grid(seg, grid):
        raise MrcohortError(
            "SEGMENTATION_GRID", f"{slot}: {path.name} is not on the stitched grid", stage="measure"
        )
    seg.CopyInformation(grid)
    return seg


def discard(prepared: Prepared) -> None:
    """Drop a participant-visit's stitched images (this worker's memory, the scratch area)."""
    import shutil

    CACHE.pop(prepared.scratch)
    shutil.rmtree(prepared.scratch, ignore_errors=True)
