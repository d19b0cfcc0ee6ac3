"""One participant's way through: ingest → stitch → segment → measure, as pure-ish steps.

``process_participant`` runs inside a Dask worker and returns only small row dicts (never
images or logits); every expected failure becomes one ``failures`` row with a stable code and
the stage that raised it, so one bad participant never stops the batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import SimpleITK as sitk

from mrcohort.biomarkers.participant import BiomarkerParams, measure_participant
from mrcohort.cohort import ParticipantVisit, load_visit, stitch_channels
from mrcohort.errors import MrcohortError, guard
from mrcohort.io.files import sha256_file
from mrcohort.io.images import spacing_zyx, write_image
from mrcohort.schemas.rows import failure_row, provenance
from mrcohort.segmentation.model import InferenceSettings


@dataclass(frozen=True)
class MeasureParams(BiomarkerParams):
    """Biomarker parameters plus the channel segmented (their hash is ``params_hash``)."""

    segmentation_channel: str = "in"


@dataclass(frozen=True)
class JobConfig:
    """What a cohort job needs; picklable (sent to every worker)."""

    cohort: str
    store: Path
    model: str = "demo"
    model_key: str = ""
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    measure: MeasureParams = field(default_factory=MeasureParams)
    device: str = "auto"
    save_segmentations: bool = True


@dataclass
class ParticipantResult:
    """Rows produced for one participant-visit (exactly one of them is non-empty)."""

    participant_id: str
    visit: str
    organ_rows: list[dict[str, object]] = field(default_factory=list)
    vessel_rows: list[dict[str, object]] = field(default_factory=list)
    qc_rows: list[dict[str, object]] = field(default_factory=list)
    failure: dict[str, object] | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def job_failure_row(
    cfg: JobConfig, pv: ParticipantVisit, err: MrcohortError, input_sha256: str | None
) -> dict[str, object]:
    """One ``failures`` row of a participant-visit, under the job's model key."""
    return failure_row(
        err,
        cohort=cfg.cohort,
        participant_id=pv.participant_id,
        visit=pv.visit,
        source=pv.relative_source,
        input_sha256=input_sha256,
        params_hash=cfg.measure.params_hash(),
        model_key=cfg.model_key,
    )


def process_participant(pv: ParticipantVisit, cfg: JobConfig) -> ParticipantResult:
    """Run every stage for one participant-visit; failures become a row, never an exception."""
    from mrcohort.segmentation.predictor import get_segmenter  # torch: only where it runs

    result = ParticipantResult(pv.participant_id, pv.visit)
    input_sha: str | None = None
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        result.seconds[name] = round(now - t, 3)
        t = now

    try:
        with guard("ingest"):
            if pv.layout == "ukbb":  # a zip: its bytes identify the input even if unreadable
                input_sha = sha256_file(pv.source)
            visit = load_visit(pv)
            input_sha = visit.input_sha256
        lap("ingest")
        with guard("stitch"):
            # "auto": header positions when the stations carry them, else image content
            stitched = stitch_channels(visit.images("dixon"), positions="auto")
        lap("stitch")
        with guard("segment"):
            segmenter = get_segmenter(cfg.model, cfg.inference, device=cfg.device)
            seg = segmenter.segment(stitched[cfg.measure.segmentation_channel])
            if cfg.save_segmentations:
                write_image(seg, segmentation_path(cfg, input_sha))
        lap("segment")
        with guard("measure"):
            in_phase = stitched.get("in")
            measured = measure_participant(
                sitk.GetArrayFromImage(seg),
                spacing_mm=spacing_zyx(seg),
                fat=sitk.GetArrayFromImage(stitched["f"]),
                water=sitk.GetArrayFromImage(stitched["w"]),
                in_phase=None if in_phase is None else sitk.GetArrayFromImage(in_phase),
                params=cfg.measure,
                label_map=segmenter.label_map,
            ).rows()
        lap("measure")
    except MrcohortError as err:
        result.failure = job_failure_row(cfg, pv, err, input_sha)
        return result
    prov = provenance(
        input_sha256=input_sha, params_hash=cfg.measure.params_hash(), model_key=cfg.model_key
    )
    keys = {
        "cohort": cfg.cohort,
        "participant_id": pv.participant_id,
        "visit": pv.visit,
        "sequence": "dixon",
    }
    result.organ_rows = [{**keys, **row, **prov} for row in measured["organ_metrics"]]
    result.vessel_rows = [{**keys, **row, **prov} for row in measured["vessel_metrics"]]
    result.qc_rows = [{**keys, **row, **prov} for row in measured["qc"]]
    return result


def segmentation_path(cfg: JobConfig, input_sha256: str) -> Path:
    """Content-addressed segmentation file: ``segmentations/<model_key>/<input>.nii.gz``."""
    return Path(cfg.store) / "segmentations" / cfg.model_key / f"{input_sha256}.nii.gz"
