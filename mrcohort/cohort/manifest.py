"""Generic layout: a CSV manifest listing one station file or DICOM series folder per row.

Columns (header required, any order, extra columns ignored):
``participant_id, visit, sequence, channel, station, path``. ``path`` is relative to the
manifest's folder or absolute; it names a NIfTI / MHA / NRRD file, a single DICOM file, or a
folder holding exactly one DICOM image series. See docs/layouts.md.

Rows that cannot be used become :class:`~mrcohort.cohort.records.Rejected` entries:
``BAD_PARTICIPANT_ID`` (participant id not ``[A-Za-z0-9_-]+``; the row's id is never used)
and ``BAD_MANIFEST_ROW`` (bad visit, sequence, channel or station value, or empty path).
A manifest without the required columns raises ``BAD_MANIFEST``.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from mrcohort.cohort.records import ManifestEntry, Rejected
from mrcohort.errors import IngestError
from mrcohort.ids import validate_participant_id

__all__ = ["MANIFEST_COLUMNS", "MANIFEST_NAME", "read_manifest"]

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
_ID_RE = re.compile(r"[A-Za-z0-9_-]+")
_NAME_RE = re.compile(r"[a-z0-9_]+")


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
            rejected.append(Rejected(path, err.code, f"{where}: {err.message}"))
            continue
        problem = _row_problem(values)
        if problem:
            rejected.append(
                Rejected(path, "BAD_MANIFEST_ROW", f"{where}: {problem}", participant_id=pid)
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


def _row_problem(values: dict[str, str]) -> str:
    """Why a row (with a valid participant id) is unusable; ``""`` if it is fine."""
    if not _ID_RE.fullmatch(values["visit"]):
        return f"visit {values['visit']!r} is not [A-Za-z0-9_-]+"
    for key in ("sequence", "channel"):
        if not _NAME_RE.fullmatch(values[key]):
            return f"{key} {values[key]!r} is not [a-z0-9_]+"
    if values["station"] and not re.fullmatch(r"-?\d+", values["station"]):
        return f"station {values['station']!r} is not an integer"
    if not values["path"]:
        return "empty path"
    return ""
