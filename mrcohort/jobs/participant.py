"""One participant-visit's way through: read → stitch → segment (or load the stored
segmentation) → measure, inside a Dask worker.

:func:`process_participant` returns only small row dicts (never images or logits) and the
input's ledger row; every failure becomes one ``failures`` row with a stable code and the
stage that raised it, so one bad participant never stops the batch.
"""

from __future__ import annotations

import functools
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import SimpleITK as sitk

from mrcohort.biomarkers.participant import BiomarkerParams, measure_participant
from mrcohort.cohort import LayoutConfig, LoadedVisit, get_layout, load_visit, stitch_channels
from mrcohort.errors import MrcohortError, guard
from mrcohort.io.files import sha256_file
from mrcohort.io.images import read_image, same_grid, spacing_zyx, write_image
from mrcohort.jobs.ledger import Action, WorkItem
from mrcohort.jobs.records import ledger_row, work_failure_row
from mrcohort.jobs.scan_rows import scan_rows
from mrcohort.labels import LabelMap
from mrcohort.schemas.rows import provenance
from mrcohort.segmentation.model import InferenceSettings, load_model_folder

__all__ = ["ParticipantResult", "WorkContext", "process_participant", "segmentation_path"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkContext:
    """What every worker needs to process a participant-visit (picklable)."""

    cohort: str
    store: Path
    run_id: str
    layout: str
    model: str
    model_key: str
    measure_key: str
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    channel: str = "in"
    measure: BiomarkerParams = field(default_factory=BiomarkerParams)
    device: str = "auto"
    layout_config: LayoutConfig | None = None


@dataclass
class ParticipantResult:
    """What one participant-visit produced: rows per table and its ledger row."""

    slot: str
    tables: dict[str, list[dict[str, object]]]
    ledger: dict[str, object]
    failure: dict[str, object] | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


def segmentation_path(store: Path, model_key: str, input_sha256: str) -> Path:
    """Content-addressed segmentation file: ``segmentations/<model_key>/<input>.nii.gz``."""
    return Path(store) / "segmentations" / model_key / f"{input_sha256}.nii.gz"


@functools.lru_cache(maxsize=8)
def _label_map(model: str, folds: tuple[int | str, ...] | None) -> LabelMap:
    return load_model_folder(model, folds).label_map


class _Stages:
    """Seconds per stage, and the stage each block runs in (``guard``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            with guard(name):
                yield
        finally:
            spent = time.perf_counter() - start
            self.seconds[name] = round(self.seconds.get(name, 0.0) + spent, 3)


def _stored_segmentation(
    item: WorkItem, path: Path, input_sha: str, grid: sitk.Image
) -> sitk.Image | None:
    """The stored segmentation when it is the one the ledger recorded (hash checked) and lies
    on ``grid`` (the stitched image), else None: a truncated, replaced or misplaced file is
    recomputed, never measured. NIfTI keeps spacing and origin in float32, so the returned
    image takes ``grid``'s exact geometry: measuring from it equals measuring the segmentation
    as it was computed."""
    if item.action is not Action.MEASURE or item.known_sha256 != input_sha:
        return None
    if not path.is_file() or sha256_file(path) != item.segmentation_sha256:
        log.warning(
            "%s: stored segmentation %s missing or changed; segmenting again", item.slot, path.name
        )
        return None
    seg = read_image(path)
    if not same_grid(seg, grid):
        log.warning(
            "%s: stored segmentation %s is not on the stitched grid; segmenting again",
            item.slot,
            path.name,
        )
        return None
    seg.CopyInformation(grid)
    return seg


def _segment(ctx: WorkContext, image: sitk.Image) -> tuple[sitk.Image, LabelMap]:
    from mrcohort.segmentation.predictor import get_segmenter  # torch: only where it runs

    segmenter = get_segmenter(ctx.model, ctx.inference, device=ctx.device)
    return segmenter.segment(image), segmenter.label_map


def _measure_rows(
    ctx: WorkContext,
    pv_keys: dict[str, object],
    seg: sitk.Image,
    stitched: dict,
    label_map: LabelMap,
    input_sha: str,
) -> dict[str, list[dict[str, object]]]:
    in_phase = stitched.get("in")
    measured = measure_participant(
        sitk.GetArrayFromImage(seg),
        spacing_mm=spacing_zyx(seg),
        fat=sitk.GetArrayFromImage(stitched["f"]),
        water=sitk.GetArrayFromImage(stitched["w"]),
        in_phase=None if in_phase is None else sitk.GetArrayFromImage(in_phase),
        params=ctx.measure,
        label_map=label_map,
    ).rows()
    prov = provenance(
        input_sha256=input_sha,
        params_hash=ctx.measure.params_hash(),
        model_key=ctx.model_key,
        measure_key=ctx.measure_key,
        run_id=ctx.run_id,
    )
    keys = {**pv_keys, "sequence": "dixon"}
    return {name: [{**keys, **row, **prov} for row in rows] for name, rows in measured.items()}


def process_participant(item: WorkItem, ctx: WorkContext) -> ParticipantResult:
    """Run the stages ``item.action`` asks for; failures become a row, never an exception.

    ``SEGMENT``: read, stitch, segment (stored content-addressed), measure. ``MEASURE``:
    read, stitch, measure with the stored segmentation — the segmenter is not called unless
    that file is missing or its hash differs from the ledger's. An input whose content hash
    equals the one already measured (a copied or touched file) gets only a new ledger row.
    """
    pv = item.pv
    assert pv is not None, "process_participant needs a participant-visit"
    stages = _Stages()
    tables: dict[str, list[dict[str, object]]] = {}
    input_sha: str | None = None
    seg_sha: str | None = None
    visit: LoadedVisit | None = None
    taken: str | None = None
    pv_keys = {"cohort": ctx.cohort, "participant_id": pv.participant_id, "visit": pv.visit}
    try:
        with stages("ingest"):
            # a zip's bytes identify the input before reading, even when it is unreadable
            input_sha = get_layout(pv.layout).file_sha256(pv)
            if not _unchanged(item, input_sha):
                visit = load_visit(pv, config=ctx.layout_config, input_sha256=input_sha)
                input_sha = visit.input_sha256
        if _unchanged(item, input_sha):  # a touched, copied or moved file, content measured
            row = _ledger(
                ctx, item, input_sha, item.done_segmentation_sha256, {}, stages, None, "unchanged"
            )
            return ParticipantResult(item.slot, {}, row)
        assert visit is not None and input_sha is not None
        with stages("ingest"):
            if input_sha != item.scans_sha256:
                tables["scans"] = scan_rows(
                    visit,
                    cohort=ctx.cohort,
                    config=ctx.layout_config or _layout_config(pv.layout),
                    run_id=ctx.run_id,
                )
        with stages("stitch"):
            # "auto": header positions when the stations carry them, else image content
            stitched = stitch_channels(visit.images("dixon"), positions="auto")
        path = segmentation_path(ctx.store, ctx.model_key, input_sha)
        with stages("segment"):
            seg = _stored_segmentation(item, path, input_sha, stitched[ctx.channel])
            if seg is None:
                seg, label_map = _segment(ctx, stitched[ctx.channel])
                write_image(seg, path)
                taken = Action.SEGMENT.value
            else:
                label_map = _label_map(ctx.model, ctx.inference.folds)
                taken = Action.MEASURE.value
            seg_sha = sha256_file(path)
        with stages("measure"):
            tables |= _measure_rows(ctx, pv_keys, seg, stitched, label_map, input_sha)
    except MrcohortError as err:
        failure = work_failure_row(ctx, item, err, input_sha)
        tables["failures"] = [failure]
        row = _ledger(ctx, item, input_sha, seg_sha, tables, stages, err, taken)
        return ParticipantResult(item.slot, tables, row, failure)
    return ParticipantResult(
        item.slot, tables, _ledger(ctx, item, input_sha, seg_sha, tables, stages, None, taken)
    )


def _unchanged(item: WorkItem, input_sha: str | None) -> bool:
    """The input hashes to what its slot's last successful attempt measured."""
    return item.action is Action.SEGMENT and input_sha is not None and input_sha == item.done_sha256


def _layout_config(layout: str) -> LayoutConfig:
    from mrcohort.cohort import load_layout

    return load_layout(layout)


def _ledger(
    ctx: WorkContext,
    item: WorkItem,
    input_sha: str | None,
    seg_sha: str | None,
    tables: dict[str, list[dict[str, object]]],
    stages: _Stages,
    err: MrcohortError | None,
    action: str | None = None,
) -> dict[str, object]:
    return ledger_row(
        ctx,
        item,
        input_sha256=input_sha,
        segmentation_sha256=seg_sha,
        err=err,
        wrote_scans=bool(tables.get("scans")),
        seconds=stages.seconds,
        worker=socket.gethostname(),
        action=action,
    )
