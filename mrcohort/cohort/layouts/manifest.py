"""Generic layout: a CSV manifest listing one station file or DICOM series folder per row.

Columns (header required, any order, extra columns ignored):
``participant_id, visit, sequence, channel, station, path``. ``path`` is relative to the
manifest's folder or absolute; it names a NIfTI / MHA / NRRD file, a single DICOM file, or a
folder holding exactly one DICOM image series. See docs/layouts.md.

Rows that cannot be used become :class:`~mrcohort.cohort.records.Rejected` entries:
``BAD_PARTICIPANT_ID`` (participant id not valid, :mod:`mrcohort.ids`; the row's id is never
used) and ``BAD_MANIFEST_ROW`` (bad visit, sequence, channel or station value, or empty
path). A manifest without the required columns raises ``BAD_MANIFEST``. Reading a row's
DICOM folder that holds no image series is ``NOT_AN_IMAGE``, more than one
``MULTIPLE_SERIES``.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from pathlib import Path

from mrcohort.cohort.layouts.base import Layout, series_station, visible_files
from mrcohort.cohort.layouts.config import LayoutConfig
from mrcohort.cohort.records import (
    Discovery,
    ManifestEntry,
    ParticipantVisit,
    Rejected,
    Station,
    relative_path,
)
from mrcohort.errors import IngestError
from mrcohort.ids import ID_PATTERN, NAME_PATTERN, is_id, is_name, validate_participant_id
from mrcohort.io.dicom import is_dicom_file, scan_dicom
from mrcohort.io.files import sha256_file
from mrcohort.io.images import image_format, read_station_file
from mrcohort.io.tree import permission_denied, walk_files

__all__ = ["MANIFEST_COLUMNS", "MANIFEST_NAME", "ManifestLayout", "manifest_path", "read_manifest"]

#: Required columns.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "participant_id",
    "visit",
    "sequence",
    "channel",
    "station",
    "path",
)
#: File looked for when the source is a folder.
MANIFEST_NAME = "manifest.csv"


class ManifestLayout(Layout):
    """A CSV listing the station files; rows grouped by participant and visit."""

    name = "manifest"

    def discover(self, source: Path, config: LayoutConfig) -> Discovery:
        """Valid rows grouped by participant and visit; rejected rows with codes."""
        path = manifest_path(source)
        entries, rejected = read_manifest(path)
        by_key: dict[tuple[str, str], list[ManifestEntry]] = {}
        for e in entries:
            by_key.setdefault((e.participant_id, e.visit), []).append(e)
        pvs = [
            ParticipantVisit(self.name, pid, visit, path, path.parent, tuple(rows))
            for (pid, visit), rows in sorted(by_key.items())
        ]
        return Discovery(pvs, rejected)

    def input_files(self, pv: ParticipantVisit) -> list[Path]:
        """Every file the manifest rows of ``pv`` name (folders expanded). The manifest itself
        is not one of them: adding rows for other participants leaves ``pv`` unchanged."""
        files: list[Path] = []
        for e in pv.entries:
            files.extend(visible_files(e.path))
        return files

    def read(self, pv: ParticipantVisit, config: LayoutConfig) -> list[Station]:
        """Each row: an image file, a single DICOM file or a one-series DICOM folder."""
        out: list[Station] = []
        for e in pv.entries:
            rel = relative_path(e.path, pv.root)
            where = f"{pv.source.name} line {e.line}: {rel}"
            if e.path.is_dir():
                walk = walk_files(e.path, pv.root, contain=False)  # rows may name any path
                walk.raise_first()
                paths = walk.files
                out.append(_one_series(paths, e, rel, where, config))
            elif not e.path.is_file():
                walk_files(e.path, pv.root, contain=False).raise_first()  # a link loop
                raise IngestError("FILE_NOT_FOUND", f"{where} does not exist")
            elif not os.access(e.path, os.R_OK):
                raise permission_denied(e.path, pv.root, folder=False)
            elif (fmt := image_format(e.path)) is not None or not is_dicom_file(e.path):
                image = read_station_file(e.path, limits=config.limits, label=where)
                out.append(
                    Station(
                        image,
                        e.sequence,
                        e.channel,
                        rel,
                        fmt or "other",
                        sha256_file(e.path),
                        station_hint=e.station,
                    )
                )
            else:
                out.append(_one_series([e.path], e, rel, where, config))
        return out


def _one_series(
    paths: list[Path], entry: ManifestEntry, rel: str, where: str, config: LayoutConfig
) -> Station:
    """The one image series among the DICOM files of a manifest row."""
    scan = scan_dicom(
        [p for p in paths if is_dicom_file(p)],
        max_voxels=config.limits.max_voxels,
        max_axis=config.limits.max_axis,
        max_file_bytes=config.zip_limits.max_member_bytes,
    )
    if not scan.series:
        what = "; ".join(sorted({reason for _, reason in scan.ignored})) or "no DICOM files"
        raise IngestError("NOT_AN_IMAGE", f"{where}: no image series ({what})")
    if len(scan.series) > 1:
        raise IngestError(
            "MULTIPLE_SERIES",
            f"{where}: {len(scan.series)} image series; a manifest row must name one",
        )
    return series_station(
        scan.series[0], entry.sequence, entry.channel, rel, config.limits, hint=entry.station
    )


def manifest_path(source: str | os.PathLike[str]) -> Path:
    """The manifest file: ``source`` itself, or ``source/manifest.csv`` for a folder."""
    p = Path(source)
    path = p / MANIFEST_NAME if p.is_dir() else p
    if not path.is_file():
        raise IngestError("FILE_NOT_FOUND", f"no manifest at {path}")
    return path


def read_manifest(
    source: str | os.PathLike[str],
) -> tuple[list[ManifestEntry], list[Rejected]]:
    """Parse and validate a manifest.

    Parameters
    ----------
    source
        The CSV file, or a folder holding ``manifest.csv``.

    Returns
    -------
    entries, rejected
        Valid rows (paths resolved, not yet checked for existence) and rejected rows.

    Raises
    ------
    IngestError
        ``FILE_NOT_FOUND`` (no manifest), ``BAD_MANIFEST`` (columns missing, not UTF-8).
    """
    path = manifest_path(source)
    base = path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError as exc:
        raise IngestError("BAD_MANIFEST", f"{path.name}: not UTF-8 text ({exc})") from exc
    if not rows:
        raise IngestError("BAD_MANIFEST", f"{path.name}: empty file")
    header = [c.strip().lower() for c in rows[0]]
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    if missing:
        raise IngestError("BAD_MANIFEST", f"{path.name}: missing column(s) {', '.join(missing)}")
    col = {c: header.index(c) for c in MANIFEST_COLUMNS}
    entries: list[ManifestEntry] = []
    rejected: list[Rejected] = []
    for line, raw in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in raw):
            continue
        values = {c: (raw[i].strip() if i < len(raw) else "") for c, i in col.items()}
        where = f"{path.name} line {line}"
        try:
            pid = validate_participant_id(values["participant_id"])
        except IngestError as err:
            rejected.append(
                Rejected(path, err.code, f"{where}: {err.message}", line=line, key=_row_key(raw))
            )
            continue
        problem = _row_problem(values)
        if problem:
            rejected.append(
                Rejected(
                    path,
                    "BAD_MANIFEST_ROW",
                    f"{where}: {problem}",
                    participant_id=pid,
                    line=line,
                    key=_row_key(raw),
                )
            )
            continue
        file_path = Path(values["path"])
        entries.append(
            ManifestEntry(
                participant_id=pid,
                visit=values["visit"],
                sequence=values["sequence"],
                channel=values["channel"],
                station=int(values["station"]) if values["station"] else None,
                path=file_path if file_path.is_absolute() else base / file_path,
                line=line,
            )
        )
    return entries, rejected


def _row_key(raw: list[str]) -> str:
    """Identity of a manifest row: 12 hex of the sha256 of its stripped cells."""
    return "row" + hashlib.sha256("\x1f".join(c.strip() for c in raw).encode()).hexdigest()[:12]


def _row_problem(values: dict[str, str]) -> str:
    """Why a row (with a valid participant id) is unusable; ``""`` if it is fine."""
    if not is_id(values["visit"]):
        return f"visit {values['visit']!r} is not {ID_PATTERN}"
    for key in ("sequence", "channel"):
        if not is_name(values[key]):
            return f"{key} {values[key]!r} is not {NAME_PATTERN}"
    if values["station"] and not re.fullmatch(r"-?\d+", values["station"]):
        return f"station {values['station']!r} is not an integer"
    if not values["path"]:
        return "empty path"
    return ""
