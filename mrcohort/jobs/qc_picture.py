"""The QC picture of a participant-visit in the job: drawn by the measure stage from the
stitched image and the segmentation (`mrcohort.qc.picture`), written atomically into the
store before the rows naming it are returned, its store-relative path put on the ``qc``
rows. A picture that cannot be drawn or written is a warning in the log and a null
``picture_path``, never a lost participant-visit.

Pictures lie at ``<store>/qc_pictures/cohort=<c>/model_key=<k>/<participant_id>.<visit>.png``
(``.`` cannot occur in an id or a visit, so the name is unambiguous). A re-measurement
with the same model replaces the picture.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import SimpleITK as sitk

from mrcohort.io.files import atomic_target
from mrcohort.jobs.participant import WorkContext
from mrcohort.labels import LabelMap

__all__ = [
    "PICTURES_DIR",
    "picture_path",
    "picture_title",
    "render_picture",
    "with_picture",
    "write_picture",
]

log = logging.getLogger(__name__)

#: Folder of the pictures in the store.
PICTURES_DIR = "qc_pictures"
#: The channel a picture shows: the first of these the visit has (else its first channel).
PICTURE_CHANNELS = ("w", "in")
_CHANNEL_NAMES = {"w": "water", "in": "in-phase", "opp": "opposed-phase", "f": "fat"}
#: The axial slice goes through this label's centre when the model has it.
CENTRE_LABEL = "liver"


def picture_path(cohort: str, model_key: str, participant_id: str, visit: str) -> str:
    """Store-relative (POSIX) path of a participant-visit's picture; the parts are already
    checked path components (`mrcohort.ids`)."""
    folder = PurePosixPath(PICTURES_DIR, f"cohort={cohort}", f"model_key={model_key}")
    return str(folder / f"{participant_id}.{visit}.png")


def picture_title(ctx: WorkContext, participant_id: str, visit: str) -> str:
    """``"<cohort> <participant_id> visit <visit> — model <model name>"``."""
    model = ctx.model_name or Path(ctx.model).name
    return f"{ctx.cohort} {participant_id} visit {visit} — model {model}"


def render_picture(
    stitched: Mapping[str, sitk.Image],
    seg: sitk.Image,
    label_map: LabelMap,
    seams: Sequence[Sequence[float]],
    title: str,
) -> bytes:
    """PNG bytes of the picture: the water channel (else in-phase, else the first one) with
    ``seg`` on it, both turned to LPS; ``seams`` are world points (LPS, mm) of the station
    seams (`mrcohort.cohort.station_seams`)."""
    from mrcohort.qc.picture import qc_picture  # matplotlib: only where pictures are drawn

    channel = next((c for c in PICTURE_CHANNELS if c in stitched), next(iter(stitched)))
    image = sitk.DICOMOrient(stitched[channel], "LPS")
    to_index = image.TransformPhysicalPointToContinuousIndex
    seam_z = [to_index(tuple(float(v) for v in point))[2] for point in seams]
    return qc_picture(
        sitk.GetArrayViewFromImage(image),
        sitk.GetArrayFromImage(sitk.DICOMOrient(seg, "LPS")),
        spacing_mm=tuple(reversed(image.GetSpacing())),
        label_names={i: label_map[i].name for i in label_map.ids()},
        title=title,
        seam_slices=seam_z,
        centre_label=label_map.id_of(CENTRE_LABEL),
        image_name=_CHANNEL_NAMES.get(channel, channel),
    )


def write_picture(
    ctx: WorkContext,
    pv_keys: Mapping[str, object],
    stitched: Mapping[str, sitk.Image],
    seg: sitk.Image,
    label_map: LabelMap,
    seams: Sequence[Sequence[float]],
) -> str | None:
    """Draw and write the participant-visit's picture; its store-relative path, or None
    (pictures off, or drawing or writing failed: logged as a warning with the reason)."""
    if not ctx.qc_pictures:
        return None
    pid, visit = str(pv_keys["participant_id"]), str(pv_keys["visit"])
    rel = picture_path(ctx.cohort, ctx.model_key, pid, visit)
    try:
        png = render_picture(stitched, seg, label_map, seams, picture_title(ctx, pid, visit))
        with atomic_target(Path(ctx.store, rel)) as tmp:
            tmp.write_bytes(png)
    except Exception as exc:  # a picture is never worth the participant-visit's metrics
        log.warning("%s/%s: no QC picture (%s: %s)", pid, visit, type(exc).__name__, exc)
        return None
    return rel


def with_picture(
    tables: dict[str, list[dict[str, object]]], path: str | None
) -> dict[str, list[dict[str, object]]]:
    """``tables`` with ``picture_path`` on every ``qc`` row."""
    if "qc" not in tables:
        return tables
    return {**tables, "qc": [{**row, "picture_path": path} for row in tables["qc"]]}
