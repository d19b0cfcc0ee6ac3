"""Write a phantom participant in the NAKO layout (DICOM series folders or NIfTI files).

Besides the four Dixon channels, NAKO participants get a T2 HASTE stand-in
(:func:`haste_stations`): a second sequence on its own, thicker-sliced grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.uid import generate_uid

from mrcohort.cohort.channels import CHANNELS
from mrcohort.ids import validate_participant_id
from mrcohort.io.images import write_image
from mrcohort.phantoms.participant import PhantomParticipant, station_slices
from mrcohort.phantoms.signal import SIGNAL_SCALE, rician_magnitude
from mrcohort.phantoms.writers.dicom import write_series

__all__ = [
    "HASTE_SLICE_FACTOR",
    "HASTE_STATIONS",
    "NAKO_DESCRIPTIONS",
    "haste_stations",
    "write_nako_participant",
]

#: Series descriptions of the phantom NAKO layout (Siemens-style Dixon suffixes).
NAKO_DESCRIPTIONS: dict[str, str] = {
    "in": "3D_GRE_TRA_in",
    "opp": "3D_GRE_TRA_opp",
    "w": "3D_GRE_TRA_W",
    "f": "3D_GRE_TRA_F",
    "t2": "T2_HASTE_TRA",
}
#: T2 HASTE stand-in: 2 stations, slices this many times thicker than the Dixon ones.
HASTE_STATIONS = 2
HASTE_SLICE_FACTOR = 2


def haste_stations(p: PhantomParticipant, *, snr: float = 20.0, seed: int = 0) -> list[sitk.Image]:
    """Two T2 HASTE-like stations (a stand-in: no T2 contrast model).

    The noise-free in-phase reference, resampled (linear) to ``HASTE_SLICE_FACTOR`` times
    thicker slices, cut into ``HASTE_STATIONS`` stations overlapping by 2 slices, with
    Rician noise. Enough to exercise a second sequence with its own grid.
    """
    ref = p.reference["in"]
    sx, sy, sz = ref.GetSpacing()
    nz = (ref.GetSize()[2] - 1) // HASTE_SLICE_FACTOR + 1
    thick = sitk.Resample(
        ref,
        (*ref.GetSize()[:2], nz),
        sitk.Transform(),
        sitk.sitkLinear,
        ref.GetOrigin(),
        (sx, sy, sz * HASTE_SLICE_FACTOR),
        ref.GetDirection(),
        0.0,
        sitk.sitkFloat32,
    )
    arr = sitk.GetArrayFromImage(thick)
    rng = np.random.default_rng([seed, *p.participant_id.encode(), 2])
    out = []
    for a, b in station_slices(nz, HASTE_STATIONS, 2):
        img = sitk.GetImageFromArray(rician_magnitude(arr[a:b], SIGNAL_SCALE / snr, rng))
        img.SetSpacing(thick.GetSpacing())
        img.SetDirection(thick.GetDirection())
        img.SetOrigin(thick.TransformIndexToPhysicalPoint((0, 0, a)))
        out.append(img)
    return out


def write_nako_participant(
    p: PhantomParticipant,
    out_dir: Path,
    *,
    visit: str = "1",
    fmt: str = "dicom",
    haste: bool = True,
) -> list[Path]:
    """Write one participant in the NAKO layout: ``<out>/<participant_id>/<visit>/...``.

    Parameters
    ----------
    p
        The phantom participant (its Dixon stations, any preset).
    out_dir
        Cohort folder.
    visit
        Visit folder name.
    fmt
        ``dicom``: one folder per series, ``S<series number>/<SOPInstanceUID>.dcm``, with
        the descriptions of :data:`NAKO_DESCRIPTIONS`; ``nifti``: one file per station,
        ``<description>_s<station>.nii.gz``.
    haste
        Also write the T2 HASTE stand-in (:func:`haste_stations`).

    Returns
    -------
    list of Path
        The series folders (dicom) or files (nifti) written.
    """
    validate_participant_id(p.participant_id)
    validate_participant_id(visit)
    if fmt not in ("dicom", "nifti"):
        raise ValueError(f"fmt must be 'dicom' or 'nifti', got {fmt!r}")
    folder = out_dir / p.participant_id / visit
    series: list[tuple[str, int, sitk.Image]] = []  # (channel, station, image)
    for ch in CHANNELS:
        series += [(ch, k, img) for k, img in enumerate(p.stations[ch])]
    if haste:
        series += [("t2", k, img) for k, img in enumerate(haste_stations(p))]
    seed = ["mrcohort-nako", p.participant_id, visit]
    study_uid = str(generate_uid(entropy_srcs=[*seed, "study"]))
    frame_uid = str(generate_uid(entropy_srcs=[*seed, "frame"]))
    written: list[Path] = []
    for number, (ch, k, img) in enumerate(series, start=1):
        description = NAKO_DESCRIPTIONS[ch]
        if fmt == "nifti":
            written.append(write_image(img, folder / f"{description}_s{k + 1}.nii.gz"))
            continue
        target = folder / f"S{number:03d}"
        write_series(
            img,
            target,
            series_description=description,
            series_number=number,
            series_uid=str(generate_uid(entropy_srcs=[*seed, "series", ch, str(k)])),
            study_uid=study_uid,
            frame_uid=frame_uid,
            participant_id=p.participant_id,
            acquisition_time=f"{10 + k:02d}0000.000000",
        )
        written.append(target)
    return written
