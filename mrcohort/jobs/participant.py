"""One participant's way through: ingest → stitch → segment → measure, as pure-ish steps.

``process_participant`` runs inside a Dask worker and returns only small row dicts (never
images or logits); every expected failure becomes one ``failures`` row with a stable code and
the stage that raised it, so one bad participant never stops the batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mrcohort.biomarkers.participant import BiomarkerParams, measure_participant
from mrcohort.cohort import ParticipantVisit
from mrcohort.errors import MrcohortError, guard
from mrcohort.io.files import sha256_file
from mrcohort.io.images import spacing_zyx, write_image
from mrcohort.labels import MRSEG_LABEL_MAP, LabelMap
from mrcohort.schemas.rows import failure_row, provenance
from mrcohort.segmentation.model import InferenceSettings


@dataclass(frozen=True)
class MeasureParams(BiomarkerParams):
    """Biomarker parameters plus the channel segmented (their hash is ``params_hash``)."""

    segmentation_channel: str = "in"

    def params_hash(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


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


class MeasureRows(list):  # list[dict[str, object]]
    """The ``organ_metrics`` rows (the list itself) plus ``vessel_rows`` and ``qc_rows``.

    A list so that callers of the walking skeleton, which expect the organ rows, keep working.
    """

    def __init__(self, tables: dict[str, list[dict[str, object]]]) -> None:
        super().__init__(tables["organ_metrics"])
        self.vessel_rows: list[dict[str, object]] = tables["vessel_metrics"]
        self.qc_rows: list[dict[str, object]] = tables["qc"]


def measure_rows(
    labels: np.ndarray,
    channels: dict[str, np.ndarray],
    *,
    spacing_mm: tuple[float, float, float],
    params: MeasureParams,
    label_map: LabelMap = MRSEG_LABEL_MAP,
) -> MeasureRows:
    """Biomarker rows of one participant (measure columns only, no keys or provenance).

    The returned list holds one ``organ_metrics`` row per label of the model's map (all 40
    MRSegmentator labels, absent ones included, or the body-composition model's 10);
    ``.vessel_rows`` one ``vessel_metrics`` row per vessel label the map has (13-19 for
    MRSegmentator, none for body composition) and ``.qc_rows`` one ``qc`` row per label.
    """
    measures = measure_participant(
        labels,
        spacing_mm=spacing_mm,
        fat=channels["f"],
        water=channels["w"],
        in_phase=channels.get("in"),
        params=params,
        label_map=label_map,
    )
    return MeasureRows(measures.rows())


def process_participant(task: ParticipantVisit, cfg: JobConfig) -> ParticipantResult:
    """Run every stage for one participant; failures become a row, never an exception."""
    import time

    from mrcohort.cohort import load_visit, stitch_channels
    from mrcohort.segmentation.predictor import get_segmenter

    result = ParticipantResult(task.participant_id, task.visit)
    input_sha: str | None = None
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        result.seconds[name] = round(now - t, 3)
        t = now

    try:
        with guard("ingest"):
            if task.layout == "ukbb":  # a zip: its bytes identify the input even if unreadable
                input_sha = sha256_file(task.source)
            visit = load_visit(task)
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
            arrays = {ch: sitk.GetArrayFromImage(img) for ch, img in stitched.items()}
            rows = measure_rows(
                sitk.GetArrayFromImage(seg),
                arrays,
                spacing_mm=spacing_zyx(seg),
                params=cfg.measure,
                label_map=segmenter.label_map,
            )
        lap("measure")
    except MrcohortError as err:
        result.failure = job_failure_row(cfg, task, err, input_sha)
        return result
    prov = provenance(
        input_sha256=input_sha, params_hash=cfg.measure.params_hash(), model_key=cfg.model_key
    )
    keys = {
        "cohort": cfg.cohort,
        "participant_id": task.participant_id,
        "visit": task.visit,
        "sequence": "dixon",
    }
    result.organ_rows = [{**keys, **row, **prov} for row in rows]
    result.vessel_rows = [{**keys, **row, **prov} for row in rows.vessel_rows]
    result.qc_rows = [{**keys, **row, **prov} for row in rows.qc_rows]
    return result


def segmentation_path(cfg: JobConfig, input_sha256: str) -> Path:
    """Content-addressed segmentation file: ``segmentations/<model_key>/<input>.nii.gz``."""
    return Path(cfg.store) / "segmentations" / cfg.model_key / f"{input_sha256}.nii.gz"
