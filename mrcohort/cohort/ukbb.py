"""UK Biobank field 20201 (Dixon, neck to knee): find the zips and read them.

A field-20201 zip is named ``<eid>_20201_<instance>_<array>.zip`` (instance 2: first
imaging visit, 3: repeat imaging visit) and holds one ``.dcm`` file per slice plus a
``manifest.csv`` (sometimes misspelt ``manifest.cvs``). A complete zip has 24 series:
6 stations x 4 Dixon channels. The series description names the channel
(``Dixon_BH_17s_in|opp|F|W`` for breath-hold stations, ``Dixon_noBH_in|opp|F|W`` for the
others) but not the station, so stations are ordered here by their position along the
body axis (inferior -> superior), never by series name, number or acquisition time.

Error codes (:class:`~mrcohort.errors.IngestError`) raised by :func:`read_ukbb_zip`, besides
the DICOM codes of :mod:`mrcohort.io.dicom`:

``FILE_NOT_FOUND``
    The zip does not exist.
``NOT_A_ZIP``
    The file is not a zip archive.
``ZIP_CORRUPT``
    A member cannot be decompressed (CRC error, truncated archive).
``EMPTY_ZIP``
    No DICOM image in the zip.
``MISSING_MANIFEST``
    Neither ``manifest.csv`` nor ``manifest.cvs`` in the zip (with ``require_manifest``).
``MANIFEST_MISMATCH``
    The manifest names files that are not in the zip.
``MISSING_CHANNEL``
    One of the four Dixon channels has no series (the message names it).
``DUPLICATE_SERIES``
    Two series of one channel at the same station position (a repeated acquisition).
``STATION_MISMATCH``
    Channels have different numbers of stations.
``BAD_PARTICIPANT_ID``
    A participant id that is not ``[A-Za-z0-9_-]+`` (also raised by
    :func:`validate_participant_id`).
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk

from mrcohort.cohort.channels import CHANNELS
from mrcohort.errors import IngestError
from mrcohort.io.dicom import DicomScan, DicomSource, scan_dicom

__all__ = [
    "UKBB_DIXON_FIELD",
    "UKBB_IMAGING_INSTANCES",
    "UkbbDiscovery",
    "UkbbZip",
    "channel_of_description",
    "discover_ukbb",
    "order_stations",
    "parse_ukbb_name",
    "read_manifest_names",
    "read_ukbb_zip",
    "scan_ukbb_zip",
    "station_center_mm",
    "validate_participant_id",
]

log = logging.getLogger(__name__)

#: UK Biobank data field of the neck-to-knee Dixon zips.
UKBB_DIXON_FIELD = "20201"
#: Instances (visits) with imaging: 2 = first imaging visit, 3 = repeat imaging.
UKBB_IMAGING_INSTANCES: tuple[int, ...] = (2, 3)

_PARTICIPANT_ID_RE = re.compile(r"[A-Za-z0-9_-]+")
_BULK_NAME_RE = re.compile(
    r"^(?P<eid>[^_]+)_(?P<field>[^_]+)_(?P<instance>[^_]+)_(?P<array>[^_]+)$"
)
#: Channel suffix of a series description (case-insensitive) -> channel name.
_CHANNEL_SUFFIXES: dict[str, str] = {
    "in": "in",
    "opp": "opp",
    "f": "f",
    "fat": "f",
    "w": "w",
    "water": "w",
}
_CHANNEL_RE = re.compile(r"_(" + "|".join(_CHANNEL_SUFFIXES) + r")$", re.IGNORECASE)
_MANIFEST_NAMES = ("manifest.csv", "manifest.cvs")
_DICOM_SUFFIXES = ("", ".dcm", ".ima")


# --------------------------------------------------------------------------- names


def validate_participant_id(participant_id: str) -> str:
    """Return ``participant_id`` if it is safe as a path component, else raise.

    Parameters
    ----------
    participant_id
        Must match ``[A-Za-z0-9_-]+``.

    Raises
    ------
    IngestError
        ``BAD_PARTICIPANT_ID``.
    """
    if not isinstance(participant_id, str) or not _PARTICIPANT_ID_RE.fullmatch(participant_id):
        raise IngestError(
            "BAD_PARTICIPANT_ID", f"participant id {participant_id!r} is not [A-Za-z0-9_-]+"
        )
    return participant_id


def channel_of_description(description: str) -> str | None:
    """Dixon channel named by a series description, or ``None``.

    ``..._in`` -> ``"in"``, ``..._opp`` -> ``"opp"``, ``..._F`` / ``..._fat`` -> ``"f"``,
    ``..._W`` / ``..._water`` -> ``"w"`` (case-insensitive).
    """
    match = _CHANNEL_RE.search(description.strip())
    return _CHANNEL_SUFFIXES[match.group(1).lower()] if match else None



# --------------------------------------------------------------------------- discover


@dataclass(frozen=True)
class UkbbZip:
    """One field-20201 zip: one participant at one visit.

    Attributes
    ----------
    participant_id
        The eid (digits).
    visit
        ``"<instance>_<array>"``, e.g. ``"2_0"``.
    instance
        2 (first imaging visit) or 3 (repeat imaging).
    array
        Array index (0 for field 20201).
    path
        The zip file.
    """

    participant_id: str
    visit: str
    instance: int
    array: int
    path: Path


class UkbbDiscovery(NamedTuple):
    """Result of :func:`discover_ukbb`: usable zips and the files that are not."""

    zips: list[UkbbZip]
    rejected: list[tuple[Path, str]]


def parse_ukbb_name(path: str | os.PathLike[str]) -> UkbbZip | str:
    """Parse a field-20201 file name; return the reason when it is not one.

    Parameters
    ----------
    path
        ``.../<eid>_20201_<instance>_<array>.zip``.

    Returns
    -------
    UkbbZip or str
        The record, or why the name was rejected.
    """
    p = Path(path)
    if p.name.startswith("."):
        return "hidden or temporary file"
    if p.suffix.lower() != ".zip":
        return "not a .zip file"
    match = _BULK_NAME_RE.match(p.name[: -len(p.suffix)])
    if not match:
        return "name is not <eid>_20201_<instance>_<array>.zip"
    eid, fld, instance, array = match.group("eid", "field", "instance", "array")
    if fld != UKBB_DIXON_FIELD:
        return f"field {fld}, not {UKBB_DIXON_FIELD}"
    if not eid.isdigit() or not eid.isascii():
        return f"eid {eid!r} is not all digits"
    if not (instance.isdigit() and array.isdigit()):
        return "instance and array must be numbers"
    if int(instance) not in UKBB_IMAGING_INSTANCES:
        return f"instance {instance} is not an imaging visit {UKBB_IMAGING_INSTANCES}"
    validate_participant_id(eid)
    return UkbbZip(
        participant_id=eid,
        visit=f"{int(instance)}_{int(array)}",
        instance=int(instance),
        array=int(array),
        path=p,
    )


def discover_ukbb(source_dir: str | os.PathLike[str]) -> UkbbDiscovery:
    """Find the field-20201 zips under a folder (searched recursively).

    Parameters
    ----------
    source_dir
        Folder of UK Biobank bulk downloads.

    Returns
    -------
    UkbbDiscovery
        ``(zips, rejected)``: zips sorted by participant, instance and array; every other
        file with the reason it was not taken (including a second copy of the same
        participant-visit). Unpacks as a tuple.
    """
    root = Path(source_dir)
    if not root.is_dir():
        raise IngestError("FILE_NOT_FOUND", f"{root} is not a folder")
    zips: dict[tuple[str, int, int], UkbbZip] = {}
    rejected: list[tuple[Path, str]] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        parsed = parse_ukbb_name(path)
        if isinstance(parsed, str):
            rejected.append((path, parsed))
            continue
        key = (parsed.participant_id, parsed.instance, parsed.array)
        if key in zips:
            rejected.append((path, f"duplicate of {zips[key].path}"))
            continue
        zips[key] = parsed
    ordered = [zips[k] for k in sorted(zips, key=lambda k: (int(k[0]), k[0], k[1], k[2]))]
    return UkbbDiscovery(zips=ordered, rejected=rejected)


# --------------------------------------------------------------------------- read


def _is_dicom_member(name: str) -> bool:
    """Whether a zip member name is a DICOM candidate (not a manifest, folder or junk)."""
    member = PurePosixPath(name)
    if name.endswith("/") or member.name.startswith(".") or "__MACOSX" in member.parts:
        return False
    if member.name.lower() in _MANIFEST_NAMES:
        return False
    suffix = member.suffix.lower()
    return suffix in _DICOM_SUFFIXES or suffix[1:].isdigit()  # UID-named files: "1.2.3.45"


def _zip_members(zf: zipfile.ZipFile, label: str) -> Iterator[DicomSource]:
    """Yield ``(name, bytes)`` of the DICOM candidates of an open zip, in name order."""
    for info in sorted(zf.infolist(), key=lambda i: i.filename):
        if info.is_dir() or not _is_dicom_member(info.filename):
            continue
        try:
            data = zf.read(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise IngestError("ZIP_CORRUPT", f"{label}: {info.filename}: {exc}") from exc
        yield info.filename, data


def station_center_mm(img: sitk.Image) -> np.ndarray:
    """World (LPS, mm) position of the centre of an image's voxel-centre box, shape (3,)."""
    centre = [(n - 1) / 2.0 for n in img.GetSize()]
    return np.asarray(img.TransformContinuousIndexToPhysicalPoint(centre), dtype=float)


def _superior_extent_mm(img: sitk.Image) -> float:
    """Extent of an image's voxel-centre box along the world S axis (mm)."""
    size = np.asarray(img.GetSize(), dtype=float) - 1
    d = np.asarray(img.GetDirection(), dtype=float).reshape(3, 3)
    span = d * (size * np.asarray(img.GetSpacing(), dtype=float))  # columns: axis vectors
    return float(np.sum(np.abs(span[2])))


def order_stations(images: Sequence[sitk.Image], *, label: str = "channel") -> list[sitk.Image]:
    """Order stations inferior -> superior by the world S coordinate of their centres.

    Parameters
    ----------
    images
        Stations of one channel, in any order.
    label
        Used in error messages.

    Raises
    ------
    IngestError
        ``DUPLICATE_SERIES`` when two stations' centres are closer along S than half the
        smaller one's S extent (the same station acquired twice).
    """
    ordered = sorted(images, key=lambda im: float(station_center_mm(im)[2]))
    for lower, upper in itertools.pairwise(ordered):
        gap = station_center_mm(upper)[2] - station_center_mm(lower)[2]
        half = 0.5 * min(_superior_extent_mm(lower), _superior_extent_mm(upper))
        if gap <= half:
            raise IngestError(
                "DUPLICATE_SERIES",
                f"{label}: two series at S = {station_center_mm(lower)[2]:.1f} and "
                f"{station_center_mm(upper)[2]:.1f} mm (same station twice?)",
            )
    return ordered


def read_manifest_names(data: bytes) -> list[str]:
    """File names listed in a UK Biobank ``manifest.csv``.

    The column headed ``filename`` (case-insensitive; else the first column) of every
    non-empty row. Only that column is read: real manifests hold dates such as
    ``Mar 3, 2017`` with an unquoted comma, which shift the later columns.
    """
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    col = header.index("filename") if "filename" in header else 0
    return [r[col].strip() for r in rows[1:] if len(r) > col and r[col].strip()]


def _check_manifest(zf: zipfile.ZipFile, label: str, *, require: bool) -> None:
    """Raise unless the zip's manifest exists (when required) and names only its members."""
    members = {i.filename: i for i in zf.infolist() if not i.is_dir()}
    by_base = {PurePosixPath(n).name.lower(): n for n in members}
    manifest = next((by_base[m] for m in _MANIFEST_NAMES if m in by_base), None)
    if manifest is None:
        if require:
            raise IngestError(
                "MISSING_MANIFEST", f"{label}: no manifest.csv (or manifest.cvs) in the zip"
            )
        return
    try:
        names = read_manifest_names(zf.read(members[manifest]))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise IngestError("ZIP_CORRUPT", f"{label}: {manifest}: {exc}") from exc
    present = set(members) | {PurePosixPath(n).name for n in members}
    missing = sorted(n for n in set(names) if n not in present)
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise IngestError(
            "MANIFEST_MISMATCH",
            f"{label}: {manifest} names {len(missing)} file(s) not in the zip: {shown}",
        )


def scan_ukbb_zip(
    path: str | os.PathLike[str],
    *,
    description_filter: Callable[[str], bool] | None = None,
    require_manifest: bool = True,
    max_voxels: int | None = None,
) -> DicomScan:
    """Check a field-20201 zip and read its DICOM series (in memory).

    Parameters
    ----------
    path
        The zip.
    description_filter
        Only series whose SeriesDescription passes are built (see
        :func:`~mrcohort.io.dicom.scan_dicom`).
    require_manifest
        Fail with ``MISSING_MANIFEST`` when the zip has no manifest.
    max_voxels
        Refuse larger series (``IMAGE_TOO_LARGE``).

    Raises
    ------
    IngestError
        ``FILE_NOT_FOUND``, ``NOT_A_ZIP``, ``ZIP_CORRUPT``, ``EMPTY_ZIP``,
        ``MISSING_MANIFEST``, ``MANIFEST_MISMATCH`` and the DICOM codes.
    """
    p = Path(path)
    label = p.name
    if not p.is_file():
        raise IngestError("FILE_NOT_FOUND", f"{p} does not exist")
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError("NOT_A_ZIP", f"{label}: {exc}") from exc
    with zf:
        if not any(_is_dicom_member(i.filename) for i in zf.infolist() if not i.is_dir()):
            raise IngestError("EMPTY_ZIP", f"{label}: no DICOM files")
        _check_manifest(zf, label, require=require_manifest)
        scan = scan_dicom(
            _zip_members(zf, label),
            description_filter=description_filter,
            max_voxels=max_voxels,
        )
    for name, reason in scan.ignored:
        log.info("%s: ignored %s: %s", label, name, reason)
    if scan.n_image_files == 0:
        raise IngestError("EMPTY_ZIP", f"{label}: no DICOM images")
    return scan


def read_ukbb_zip(
    path: str | os.PathLike[str], *, require_manifest: bool = True
) -> dict[str, list[sitk.Image]]:
    """Read a field-20201 zip in memory into Dixon channels of ordered stations.

    Parameters
    ----------
    path
        The zip.
    require_manifest
        Fail with ``MISSING_MANIFEST`` when the zip has no manifest.

    Returns
    -------
    dict
        Channel (``"in"``, ``"opp"``, ``"w"``, ``"f"``, in that order) -> float32 station
        images ordered inferior -> superior by position. Series whose description names no
        Dixon channel are ignored.

    Raises
    ------
    IngestError
        See the module docstring for the codes.
    """
    label = Path(path).name
    scan = scan_ukbb_zip(
        path,
        description_filter=lambda d: channel_of_description(d) is not None,
        require_manifest=require_manifest,
    )
    by_channel: dict[str, list[sitk.Image]] = {c: [] for c in CHANNELS}
    for series in scan.series:
        channel = channel_of_description(series.series_description)
        if channel is not None:
            by_channel[channel].append(series.image)
    missing = [c for c in CHANNELS if not by_channel[c]]
    if missing:
        raise IngestError(
            "MISSING_CHANNEL", f"{label}: no series for channel(s) {', '.join(missing)}"
        )
    ordered = {c: order_stations(by_channel[c], label=f"{label} channel {c}") for c in CHANNELS}
    counts = {c: len(v) for c, v in ordered.items()}
    if len(set(counts.values())) > 1:
        raise IngestError("STATION_MISMATCH", f"{label}: stations per channel {counts}")
    return ordered
