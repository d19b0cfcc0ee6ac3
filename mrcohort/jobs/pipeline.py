"""One participant's way through: ingest → stitch → segment → measure, as pure-ish steps.

``process_participant`` runs inside a Dask worker and returns only small row dicts (never
images or logits); every expected failure becomes one ``failures`` row with a stable code and
the stage that raised it, so one bad participant never stops the batch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mrcohort import __version__
from mrcohort.biomarkers.fat_fraction import fat_fraction_stats
from mrcohort.biomarkers.volume import label_volumes
from mrcohort.errors import MrcohortError
from mrcohort.imageio import sha256_file, spacing_zyx, write_image
from mrcohort.labels import MRSEG_LABELS
from mrcohort.segmentation.model import InferenceSettings

STAGES = ("ingest", "stitch", "segment", "measure", "write")


@dataclass(frozen=True)
class MeasureParams:
    """Biomarker parameters (their hash is ``params_hash`` on every row)."""

    erosion_mm: float = 3.0
    min_voxels: int = 10
    border_margin_vox: int = 1
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


@dataclass(frozen=True)
class ParticipantTask:
    """One participant-visit to process: a UK Biobank zip."""

    participant_id: str
    visit: str
    path: Path


@dataclass
class ParticipantResult:
    """Rows produced for one participant-visit (exactly one of them is non-empty)."""

    participant_id: str
    visit: str
    organ_rows: list[dict[str, object]] = field(default_factory=list)
    failure: dict[str, object] | None = None
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Tag any unexpected exception with the stage it happened in."""
    try:
        yield
    except MrcohortError:
        raise
    except MemoryError as exc:
        raise MrcohortError("OUT_OF_MEMORY", f"ran out of memory: {exc}", stage=name) from exc
    except Exception as exc:  # anything else is a bug or an unforeseen input: keep the batch
        raise MrcohortError("UNEXPECTED_ERROR", f"{type(exc).__name__}: {exc}", stage=name) from exc


def provenance(cfg: JobConfig, input_sha256: str | None) -> dict[str, object]:
    """The provenance columns every row carries."""
    return {
        "input_sha256": input_sha256,
        "model_key": cfg.model_key,
        "code_version": __version__,
        "params_hash": cfg.measure.params_hash(),
        "computed_at": dt.datetime.now(dt.timezone.utc),
    }


def failure_row(
    cfg: JobConfig, task: ParticipantTask, err: MrcohortError, input_sha256: str | None
) -> dict[str, object]:
    """One ``failures`` row."""
    return {
        "cohort": cfg.cohort,
        "participant_id": task.participant_id,
        "visit": task.visit,
        "stage": err.stage,
        "code": err.code,
        "message": err.message,
        "source": str(task.path),
        **provenance(cfg, input_sha256),
    }


def measure_rows(
    labels: np.ndarray,
    channels: dict[str, np.ndarray],
    *,
    spacing_mm: tuple[float, float, float],
    params: MeasureParams,
) -> list[dict[str, object]]:
    """Biomarker values per MRSegmentator label (all 40, absent ones as empty rows)."""
    ids = tuple(MRSEG_LABELS)
    volumes = label_volumes(
        labels, spacing_mm=spacing_mm, label_ids=ids, border_margin_vox=params.border_margin_vox
    )
    ffs = fat_fraction_stats(
        labels,
        fat=channels["f"],
        water=channels["w"],
        in_phase=channels.get("in"),
        spacing_mm=spacing_mm,
        label_ids=ids,
        erosion_mm=params.erosion_mm,
        min_voxels=params.min_voxels,
    )
    rows = []
    for vol, ff in zip(volumes, ffs, strict=True):
        rows.append(
            {**asdict(vol), **asdict(ff), "label_group": MRSEG_LABELS[vol.label_id].group.value}
        )
    return rows


def process_participant(task: ParticipantTask, cfg: JobConfig) -> ParticipantResult:
    """Run every stage for one participant; failures become a row, never an exception."""
    import time

    from mrcohort.cohort.stitch import stitch_channels
    from mrcohort.cohort.ukbb import read_ukbb_zip
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
        with stage("ingest"):
            input_sha = sha256_file(task.path)
            stations = read_ukbb_zip(task.path)
        lap("ingest")
        with stage("stitch"):
            stitched = stitch_channels(stations)
        lap("stitch")
        with stage("segment"):
            segmenter = get_segmenter(cfg.model, cfg.inference, device=cfg.device)
            seg = segmenter.segment(stitched[cfg.measure.segmentation_channel])
            if cfg.save_segmentations:
                write_image(seg, segmentation_path(cfg, input_sha))
        lap("segment")
        with stage("measure"):
            arrays = {ch: sitk.GetArrayFromImage(img) for ch, img in stitched.items()}
            rows = measure_rows(
                sitk.GetArrayFromImage(seg), arrays, spacing_mm=spacing_zyx(seg), params=cfg.measure
            )
        lap("measure")
    except MrcohortError as err:
        result.failure = failure_row(cfg, task, err, input_sha)
        return result
    prov = provenance(cfg, input_sha)
    keys = {
        "cohort": cfg.cohort,
        "participant_id": task.participant_id,
        "visit": task.visit,
        "sequence": "dixon",
    }
    result.organ_rows = [{**keys, **row, **prov} for row in rows]
    return result


def segmentation_path(cfg: JobConfig, input_sha256: str) -> Path:
    """Content-addressed segmentation file: ``segmentations/<model_key>/<input>.nii.gz``."""
    return Path(cfg.store) / "segmentations" / cfg.model_key / f"{input_sha256}.nii.gz"
