"""UK Biobank field 20201 (Dixon, neck to knee): find the zips, check them and read them.

A field-20201 zip is named ``<eid>_20201_<instance>_<array>.zip`` (instance 2: first
imaging visit, 3: repeat imaging visit) and holds one ``.dcm`` file per slice plus a
``manifest.csv`` (sometimes misspelt ``manifest.cvs``). A complete zip has 24 series:
6 stations x 4 Dixon channels. The series description names the channel
(``Dixon_BH_17s_in|opp|F|W`` for breath-hold stations, ``Dixon_noBH_in|opp|F|W`` for the
others; the ``ukbb.series`` rules of ``layouts.yaml``) but not the station, so stations are
ordered by their position along the body axis (:mod:`mrcohort.cohort.load`), never by series
name, number or acquisition time. The ``input_sha256`` of a participant-visit is the zip's.

Discovery searches the source folder recursively. A participant-visit claimed by two zips
with different bytes is ``DUPLICATE_VISIT``; byte-identical copies are read once. Other
``.zip`` files whose name is not a field-20201 name are ``UNRECOGNISED_FILE``; files that
are not ``.zip`` (truth tables, notes) and hidden files are not looked at.

Error codes (:class:`~mrcohort.errors.IngestError`) of reading a zip, besides the DICOM
codes of :mod:`mrcohort.io.dicom`:

``FILE_NOT_FOUND``
    The zip does not exist.
``NOT_A_ZIP``
    The file is not a zip archive.
``ZIP_CORRUPT``
    A member cannot be decompressed (CRC error, truncated archive, a member inflating past
    the size its directory declares).
``ZIP_TOO_LARGE``
    The central directory declares more than the ``limits`` of ``layouts.yaml`` allow
    (members, bytes per member or in all, compression ratio): refused before anything is
    inflated (:class:`~mrcohort.io.zips.ZipLimits`).
``ZIP_UNSAFE_NAME``
    A member name that is absolute or has a ``..`` part (a zip crafted to write outside
    the folder it is unpacked in); nothing is read.
``PERMISSION_DENIED``
    The zip, or a folder below the source, cannot be read by this user.
``EMPTY_ZIP``
    No DICOM image in the zip.
``MISSING_MANIFEST``
    Neither ``manifest.csv`` nor ``manifest.cvs`` in the zip (with ``require_manifest``).
``MANIFEST_MISMATCH``
    The manifest names files that are not in the zip.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mrcohort.cohort.layouts.base import Layout, series_station
from mrcohort.cohort.layouts.config import LayoutConfig
from mrcohort.cohort.records import Discovery, ParticipantVisit, Rejected, Station, relative_path
from mrcohort.errors import IngestError
from mrcohort.ids import validate_participant_id
from mrcohort.io.dicom import DicomScan, DicomSource, scan_dicom
from mrcohort.io.files import sha256_file
from mrcohort.io.tree import permission_denied, walk_files
from mrcohort.io.zips import ZipLimits, ZipMembers, check_zip_sizes, zip_directory_entries

__all__ = [
    "UKBB_DIXON_FIELD",
    "UKBB_IMAGING_INSTANCES",
    "UkbbLayout",
    "UkbbZip",
    "parse_ukbb_name",
    "read_manifest_names",
    "scan_ukbb_zip",
]

log = logging.getLogger(__name__)

#: UK Biobank data field of the neck-to-knee Dixon zips.
UKBB_DIXON_FIELD = "20201"
#: Instances (visits) with imaging: 2 = first imaging visit, 3 = repeat imaging.
UKBB_IMAGING_INSTANCES: tuple[int, ...] = (2, 3)

_BULK_NAME_RE = re.compile(
    r"^(?P<eid>[^_]+)_(?P<field>[^_]+)_(?P<instance>[^_]+)_(?P<array>[^_]+)$"
)
_MANIFEST_NAMES = ("manifest.csv", "manifest.cvs")
_DICOM_SUFFIXES = ("", ".dcm", ".ima")


class UkbbLayout(Layout):
    """Field-20201 zips below a folder; one zip = one participant-visit."""

    name = "ukbb"

    def discover(self, source: Path, config: LayoutConfig) -> Discovery:
        """Every ``*.zip`` below ``source`` (recursively), grouped by participant and visit."""
        if not source.is_dir():
            raise IngestError("FILE_NOT_FOUND", f"{source} is not a folder")
        by_key: dict[tuple[str, str], list[Path]] = {}
        rejected: list[Rejected] = []
        walk = walk_files(source, source)
        files = list(walk.files)
        for path, err in walk.problems:
            if err.code == "PERMISSION_DENIED" and not path.is_dir():
                files.append(path)  # an unreadable zip: named, it fails when read
            elif path.is_dir() or path.suffix.lower() == ".zip":
                rejected.append(Rejected(path, err.code, err.message))
        for path in sorted(files):
            if path.suffix.lower() != ".zip" or path.name.startswith("."):
                continue  # truth tables, notes, temp files: not participants
            parsed = parse_ukbb_name(path)
            if isinstance(parsed, str):
                rel = path.relative_to(source)
                rejected.append(Rejected(path, "UNRECOGNISED_FILE", f"{rel}: {parsed}"))
                continue
            by_key.setdefault((parsed.participant_id, parsed.visit), []).append(path)
        pvs: list[ParticipantVisit] = []
        for (pid, visit), paths in sorted(by_key.items(), key=lambda kv: (int(kv[0][0]), kv[0])):
            duplicate = _duplicate_visit(paths, source, pid, visit)
            if duplicate is not None:
                rejected.append(duplicate)
                continue
            pvs.append(ParticipantVisit(self.name, pid, visit, paths[0], source))
        return Discovery(pvs, rejected)

    def read(self, pv: ParticipantVisit, config: LayoutConfig) -> list[Station]:
        """The series of the zip that the ``ukbb.series`` rules select."""
        scan = scan_ukbb_zip(
            pv.source,
            description_filter=lambda d: config.classify(d) is not None,
            require_manifest=config.require_manifest,
            max_voxels=config.limits.max_voxels,
            max_axis=config.limits.max_axis,
            zip_limits=config.zip_limits,
        )
        source = relative_path(pv.source, pv.root)
        out = []
        for series in scan.series:
            kind = config.classify(series.series_description)
            if kind is not None:
                out.append(series_station(series, *kind, source, config.limits, modality="MR"))
        return out

    def file_sha256(self, pv: ParticipantVisit) -> str | None:
        """sha256 of the zip file (its bytes identify the input)."""
        try:
            return sha256_file(pv.source)
        except PermissionError as exc:
            raise permission_denied(pv.source, pv.root, folder=False) from exc


def _duplicate_visit(paths: list[Path], root: Path, pid: str, visit: str) -> Rejected | None:
    """``DUPLICATE_VISIT`` when zips of one participant-visit differ; ``None`` otherwise."""
    if len(paths) == 1:
        return None
    if all(os.access(p, os.R_OK) for p in paths) and len({sha256_file(p) for p in paths}) == 1:
        log.info("%s/%s: identical copies %s; reading the first", pid, visit, paths)
        return None
    names = ", ".join(str(p.relative_to(root)) for p in paths)
    return Rejected(
        paths[0],
        "DUPLICATE_VISIT",
        f"{len(paths)} different zips claim participant {pid} visit {visit}: {names}",
        participant_id=pid,
        visit=visit,
    )


# --------------------------------------------------------------------------- names


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


# --------------------------------------------------------------------------- zips


def _is_dicom_member(name: str) -> bool:
    """Whether a zip member name is a DICOM candidate (not a manifest, folder or junk)."""
    member = PurePosixPath(name)
    if name.endswith("/") or member.name.startswith(".") or "__MACOSX" in member.parts:
        return False
    if member.name.lower() in _MANIFEST_NAMES:
        return False
    suffix = member.suffix.lower()
    return suffix in _DICOM_SUFFIXES or suffix[1:].isdigit()  # UID-named files: "1.2.3.45"


def _unsafe_name(name: str) -> bool:
    """A member name that is absolute (``/x``, ``\\x``, ``C:x``) or has a ``..`` part."""
    absolute = name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None
    return absolute or ".." in name.replace("\\", "/").split("/")


def _zip_members(zf: zipfile.ZipFile, label: str) -> Iterator[DicomSource]:
    """Yield ``(name, bytes)`` of the DICOM candidates of an open zip, in name order."""
    infos = sorted(zf.infolist(), key=lambda i: i.filename)
    with ZipMembers(zf) as members:
        for info in infos:
            if info.is_dir() or not _is_dicom_member(info.filename):
                continue
            try:
                data = members.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise IngestError("ZIP_CORRUPT", f"{label}: {info.filename}: {exc}") from exc
            yield info.filename, data


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


def _open_zip(path: Path, label: str, limits: ZipLimits) -> zipfile.ZipFile:
    """The open zip; ``ZIP_TOO_LARGE`` when its end record declares more central-directory
    entries than ``limits`` allow (checked before ``zipfile`` parses the directory)."""
    try:
        with path.open("rb") as fp:
            entries = zip_directory_entries(fp)
        if entries is not None and entries > limits.max_members:
            raise IngestError(
                "ZIP_TOO_LARGE", f"{label}: {entries} members, limit {limits.max_members}"
            )
        return zipfile.ZipFile(path)
    except PermissionError as exc:
        raise permission_denied(path, path.parent, folder=False) from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(
            "NOT_A_ZIP",
            f"{label}: not a zip archive ({exc}): a truncated or failed download? "
            "Download it again",
        ) from exc


def scan_ukbb_zip(
    path: str | os.PathLike[str],
    *,
    description_filter: Callable[[str], bool] | None = None,
    require_manifest: bool = True,
    max_voxels: int | None = None,
    max_axis: int | None = None,
    zip_limits: ZipLimits | None = None,
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
    max_voxels, max_axis
        Refuse larger series (``IMAGE_TOO_LARGE``).
    zip_limits
        Refuse a larger archive from its central directory (``ZIP_TOO_LARGE``); default
        :class:`~mrcohort.io.zips.ZipLimits`.

    Raises
    ------
    IngestError
        ``FILE_NOT_FOUND``, ``NOT_A_ZIP``, ``ZIP_TOO_LARGE``, ``ZIP_CORRUPT``, ``EMPTY_ZIP``,
        ``MISSING_MANIFEST``, ``MANIFEST_MISMATCH`` and the DICOM codes.
    """
    p = Path(path)
    label = p.name
    if not p.is_file():
        raise IngestError("FILE_NOT_FOUND", f"{p} does not exist")
    zip_limits = zip_limits or ZipLimits()
    zf = _open_zip(p, label, zip_limits)
    with zf:
        too_large = check_zip_sizes(zf.infolist(), zip_limits)
        if too_large is not None:
            raise IngestError("ZIP_TOO_LARGE", f"{label}: {too_large}")
        unsafe = next((i.filename for i in zf.infolist() if _unsafe_name(i.filename)), None)
        if unsafe is not None:
            raise IngestError(
                "ZIP_UNSAFE_NAME",
                f"{label}: member {unsafe!r} is an absolute path or climbs out with '..' "
                "(unpacked, it would land outside the target folder); not a UK Biobank "
                "export as written: download it again",
            )
        if not any(_is_dicom_member(i.filename) for i in zf.infolist() if not i.is_dir()):
            raise IngestError("EMPTY_ZIP", f"{label}: no DICOM files")
        _check_manifest(zf, label, require=require_manifest)
        scan = scan_dicom(
            _zip_members(zf, label),
            description_filter=description_filter,
            max_voxels=max_voxels,
            max_axis=max_axis,
        )
    for name, reason in scan.ignored:
        log.info("%s: ignored %s: %s", label, name, reason)
    if scan.n_image_files == 0:
        raise IngestError("EMPTY_ZIP", f"{label}: no DICOM images")
    return scan
