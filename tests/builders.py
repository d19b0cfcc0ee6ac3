"""One place that builds test inputs: station images, UK Biobank zips (whole, edited or
broken), DICOM series and objects, NIfTI files, NAKO visit folders and manifests, plus the
grid comparison the geometry tests share.

Every test that needs a cohort on disk builds it from these functions (shared fixtures in
``tests/conftest.py``); the writers themselves are the phantom package's
(:mod:`mrcohort.phantoms.writers`).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Mapping
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mrcohort.cohort.channels import CHANNELS
from mrcohort.cohort.records import ParticipantVisit
from mrcohort.phantoms.writers.dicom import write_series
from mrcohort.phantoms.writers.ukbb import write_ukbb_zip

#: Stations of the small test zips.
N_STATIONS = 6
#: UID root of the test DICOM series (a registered example root).
UID_ROOT = "1.2.826.0.1.3680043.10"


def station(
    index: int,
    channel: str,
    *,
    n_slices: int = 4,
    dx: float = 0.0,
    shape_yx: tuple[int, int] = (5, 6),
    spacing_mm: tuple[float, float, float] = (2.2, 2.2, 3.0),
    low: float = 0.0,
    high: float = 500.0,
) -> sitk.Image:
    """A small random station; consecutive stations share one slice along z."""
    rng = np.random.default_rng(100 * index + CHANNELS.index(channel))
    arr = rng.uniform(low, high, (n_slices, *shape_yx)).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing_mm)
    img.SetOrigin((-5.5 + dx, -4.4, -400.0 + index * (n_slices - 1) * spacing_mm[2]))
    return img


def stations_dict(
    indices: int | Iterable[int] = N_STATIONS, **kwargs: object
) -> dict[str, list[sitk.Image]]:
    """Channel -> stations (``indices``: a count or the station numbers), lowest first."""
    chosen = range(indices) if isinstance(indices, int) else list(indices)
    return {c: [station(i, c, **kwargs) for i in chosen] for c in CHANNELS}  # type: ignore[arg-type]


def ukbb_zip(
    folder: Path,
    participant_id: str = "1000001",
    *,
    instance: int = 2,
    stations: Mapping[str, list[sitk.Image]] | None = None,
    n_stations: int = N_STATIONS,
) -> Path:
    """Write ``<folder>/<eid>_20201_<instance>_0.zip`` (small random stations by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{participant_id}_20201_{instance}_0.zip"
    chosen = stations if stations is not None else stations_dict(n_stations)
    return write_ukbb_zip(path, participant_id=participant_id, stations=chosen, instance=instance)


def zip_visit(path: Path, participant_id: str = "1000001", visit: str = "2_0") -> ParticipantVisit:
    """The UK Biobank participant-visit of one zip (whatever its name), rooted at its folder."""
    return ParticipantVisit("ukbb", participant_id, visit, path, path.parent)


def unpack(members: Mapping[str, bytes], folder: Path) -> Path:
    """Write ``members`` (file name -> bytes) as files in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in members.items():
        (folder / name).write_bytes(data)
    return folder


def members_of(path: Path) -> dict[str, bytes]:
    """Every member of a zip, name -> bytes."""
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rezip(path: Path, members: Mapping[str, bytes], *, fix_manifest: bool = True) -> Path:
    """Zip ``members`` at ``path``; the manifest keeps only rows of members present."""
    members = dict(members)
    if fix_manifest and "manifest.csv" in members:
        lines = members["manifest.csv"].decode().splitlines()
        kept = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[0] in members]
        members["manifest.csv"] = ("\n".join(kept) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def description_of(data: bytes) -> str:
    """SeriesDescription of one DICOM file's bytes."""
    return str(pydicom.dcmread(BytesIO(data), stop_before_pixels=True).SeriesDescription)


def without_channel(src: Path, dest: Path, suffix: str) -> Path:
    """Copy a zip without the series whose description ends in ``suffix`` (e.g. ``_F``)."""
    members = members_of(src)
    kept = {
        n: d
        for n, d in members.items()
        if not (n.endswith(".dcm") and description_of(d).endswith(suffix))
    }
    return rezip(dest, kept)


def dicom_series(
    img: sitk.Image,
    members: dict[str, bytes] | None = None,
    *,
    number: int = 3,
    description: str = "Dixon_noBH_in",
    uid: str | None = None,
    acquisition_time: str = "101500.000000",
    rescale: tuple[float, float] | None = None,
) -> dict[str, bytes]:
    """``img`` as a DICOM series (file name -> bytes) added to ``members`` (default: new).

    Participant ``1000001``; UIDs below :data:`UID_ROOT` made from ``number`` unless
    ``uid`` is given.
    """
    members = {} if members is None else members
    write_series(
        img,
        members,
        series_description=description,
        series_number=number,
        series_uid=uid or f"{UID_ROOT}.{number}",
        study_uid=f"{UID_ROOT}.{number}.1",
        frame_uid=f"{UID_ROOT}.{number}.2",
        participant_id="1000001",
        acquisition_time=acquisition_time,
        rescale=rescale,
    )
    return members


def encode(ds: Dataset) -> bytes:
    """A dataset as DICOM Part 10 bytes."""
    buf = BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def non_image_object(kind: str) -> bytes:
    """A structured report (``sr``) or encapsulated PDF (``pdf``) with a person's name."""
    sop_class = {"sr": "1.2.840.10008.5.1.4.1.1.88.11", "pdf": "1.2.840.10008.5.1.4.1.1.104.1"}
    uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class[kind]
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class[kind]
    ds.SOPInstanceUID = uid
    ds.Modality = "SR" if kind == "sr" else "DOC"
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Doe^Jane"
    if kind == "pdf":
        ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
        ds.EncapsulatedDocument = b"%PDF-1.4 report of Jane Doe"
    else:
        ds.ContentSequence = []
    return encode(ds)


#: Identifying values :func:`with_identity` writes; no output may ever contain them.
IDENTITY: Mapping[str, str] = {
    "PatientName": "Doe^Jane",
    "PatientBirthDate": "19480229",
    "PatientAddress": "12 Hidden Lane, Sometown",
    "ImageComments": "patient anxious, ask for Jane",
    "InstitutionName": "Sometown Clinic",
    "OtherPatientIDs": "ALT-55501234",
    "AccessionNumber": "ACC7788123",
    "ReferringPhysicianName": "Smith^Anna",
    "PatientComments": "claustrophobic, needs breaks",
}


def with_identity(data: bytes) -> bytes:
    """A DICOM file re-encoded with identifying attributes (:data:`IDENTITY`) filled in."""
    ds = pydicom.dcmread(BytesIO(data))
    for key, value in IDENTITY.items():
        setattr(ds, key, value)
    return encode(ds)


def nifti(
    path: Path,
    arr: np.ndarray,
    *,
    z0: float = 0.0,
    spacing_mm: tuple[float, float, float] = (2.0, 2.0, 3.0),
) -> Path:
    """Write ``arr`` (z, y, x[, ...]) as an image file; 3-D+ images start at z = ``z0``."""
    img = sitk.GetImageFromArray(arr)
    if img.GetDimension() >= 3:
        img.SetSpacing((*spacing_mm, *([1.0] * (img.GetDimension() - 3))))
        origin = [0.0] * img.GetDimension()
        origin[2] = z0
        img.SetOrigin(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path


MANIFEST_HEADER = "participant_id,visit,sequence,channel,station,path"


def write_manifest(path: Path, rows: Iterable[Iterable[object]]) -> Path:
    """A manifest CSV (:data:`MANIFEST_HEADER` columns) from ``rows``."""
    lines = [MANIFEST_HEADER, *(",".join(str(v) for v in r) for r in rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def dixon_manifest_cohort(
    root: Path,
    participants: Iterable[str],
    *,
    n_stations: int = 3,
    shape: tuple[int, ...] = (5, 4, 3),
) -> Path:
    """NIfTI stations of every Dixon channel per participant plus ``root/manifest.csv``."""
    rng = np.random.default_rng(0)
    rows = []
    for pid in participants:
        for ch in CHANNELS:
            for s in range(n_stations):
                rel = f"{pid}/{ch}_{s}.nii.gz"
                nifti(root / rel, rng.uniform(0, 9, shape).astype(np.float32), z0=12.0 * s)
                rows.append((pid, "base", "dixon", ch, s + 1, rel))
    return write_manifest(root / "manifest.csv", rows)


# --------------------------------------------------------------------------- grids


def smooth_volume(offset: float = 0.0) -> sitk.Image:
    """Known smooth 3D image, shape (z, y, x) = (60, 30, 40), 1.5 x 1.5 x 3 mm."""
    z, y, x = np.mgrid[0:60, 0:30, 0:40].astype(float)
    arr = 100 + offset + 20 * np.sin(x / 7) + 15 * np.cos(y / 5) + 10 * np.sin(z / 9)
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing((1.5, 1.5, 3.0))
    img.SetOrigin((-30.0, -20.0, -90.0))
    return img


#: z ranges of the stations cut from :func:`smooth_volume`, overlapping by 6 slices.
CUTS: tuple[tuple[int, int], ...] = ((0, 24), (18, 42), (36, 60))
#: Slices of :func:`smooth_volume` that two stations of :data:`CUTS` share.
SEAM_SLICES = [z for lo, hi in zip(CUTS[1:], CUTS[:-1], strict=True) for z in range(lo[0], hi[1])]


def cut(img: sitk.Image, cuts: Iterable[tuple[int, int]] = CUTS) -> list[sitk.Image]:
    """Stations = z slabs of a volume."""
    return [img[:, :, lo:hi] for lo, hi in cuts]


def with_noise(img: sitk.Image, rng: np.random.Generator, sigma: float) -> sitk.Image:
    """Copy of ``img`` plus independent Gaussian noise."""
    arr = sitk.GetArrayFromImage(img)
    out = sitk.GetImageFromArray((arr + rng.normal(0, sigma, arr.shape)).astype(np.float32))
    out.CopyInformation(img)
    return out


def array(img: sitk.Image) -> np.ndarray:
    """Array (z, y, x) as float64."""
    return sitk.GetArrayFromImage(img).astype(np.float64)


def assert_same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-6) -> None:
    """Same size; spacing, origin and direction within ``tol``."""
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=tol)
