"""One participant-visit's way through: read → stitch → segment (or load the stored
segmentation) → measure, inside a Dask worker.

:func:`process_participant` returns only small row dicts (never images or logits) and the
input's ledger row; every failure becomes one ``failures`` row with a stable code and the
stage that raised it, so one bad participant never stops the batch.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import SimpleITK as sitk

from mrcohort.biomarkers.participant import BiomarkerParams, measure_participant
from mrcohort.cohort import LayoutConfig
from mrcohort.io.files import sha256_file
from mrcohort.io.images import read_image, same_grid, spacing_zyx
from mrcohort.jobs.ledger import Action, WorkItem
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
    model_name: str = ""  # as the configuration names the model (picture titles)
    qc_pictures: bool = True  # draw a QC picture per participant-visit (store.qc_pictures)


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


def stored_segmentation(
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


def label_map_of(ctx: WorkContext) -> LabelMap:
    """The label map of the job's model (its ``dataset.json``)."""
    return _label_map(ctx.model, ctx.inference.folds)


def measure_rows(
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
    """Every stage of one participant-visit in this process, one after the other (what the
    job runs as separate tasks, `mrcohort.jobs.stages`); failures become a row.

    ``SEGMENT``: read, stitch, segment (stored content-addressed), measure. ``MEASURE``:
    read, stitch, measure with the stored segmentation — the segmenter is not called unless
    that file is missing or its hash differs from the ledger's. An input whose content hash
    equals the one already measured (a copied or touched file) gets only a new ledger row.
    """
    from mrcohort.jobs import stages

    prepared = stages.prepare(item, ctx)
    if isinstance(prepared, ParticipantResult):
        return prepared
    segmented = stages.segment(prepared, ctx) if prepared.needs_segment else None
    if isinstance(segmented, ParticipantResult):
        return segmented
    return stages.measure(prepared, segmented, ctx)
