"""Write a phantom participant as one NIfTI file per station, listed in a generic manifest."""

from __future__ import annotations

from pathlib import Path

from mrcohort.cohort.layouts.manifest import MANIFEST_COLUMNS
from mrcohort.io.images import write_image
from mrcohort.phantoms.participant import PhantomParticipant

__all__ = ["MANIFEST_COLUMNS", "manifest_rows", "write_nifti_participant"]

#: Visit written into the manifest (UK Biobank's imaging visit).
MANIFEST_VISIT = "2_0"


def write_nifti_participant(p: PhantomParticipant, out_dir: Path) -> list[Path]:
    """Write ``<out>/<participant_id>/station<k>_<channel>.nii.gz`` for every station.

    Returns the files in channel order, stations in order within each channel.
    """
    return [
        write_image(img, out_dir / p.participant_id / f"station{k + 1}_{ch}.nii.gz")
        for ch, imgs in p.stations.items()
        for k, img in enumerate(imgs)
    ]


def manifest_rows(p: PhantomParticipant, files: list[Path], root: Path) -> list[dict[str, object]]:
    """Manifest rows (:data:`MANIFEST_COLUMNS`) of the files written by
    :func:`write_nifti_participant`, with paths relative to ``root``."""
    n = p.preset.n_stations
    channels = list(p.stations)
    return [
        {
            "participant_id": p.participant_id,
            "visit": MANIFEST_VISIT,
            "sequence": "dixon",
            "channel": channels[i // n],
            "station": i % n + 1,
            "path": str(f.relative_to(root)),
        }
        for i, f in enumerate(files)
    ]
