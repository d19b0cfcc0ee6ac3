"""Records shared by every layout: what discovery finds and what loading returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import SimpleITK as sitk

__all__ = [
    "Discovery",
    "ManifestEntry",
    "ParticipantVisit",
    "Rejected",
    "Station",
    "relative_path",
]


@dataclass(frozen=True)
class ManifestEntry:
    """One row of a generic manifest: one station file or DICOM series folder.

    Attributes
    ----------
    participant_id, visit
        Validated (``[A-Za-z0-9_-]+``).
    sequence, channel
        Validated (``[a-z0-9_]+``), e.g. ``dixon`` / ``in``, ``ct`` / ``ct``.
    station
        Station number as given (any integers; used only to order stations whose
        headers carry no position), or ``None``.
    path
        Absolute path (relative paths are resolved against the manifest's folder).
    line
        Line number in the manifest (1 = header).
    """

    participant_id: str
    visit: str
    sequence: str
    channel: str
    station: int | None
    path: Path
    line: int


@dataclass(frozen=True)
class ParticipantVisit:
    """One participant at one visit: the unit that ingest reads and the job processes.

    Picklable (sent to Dask workers). Load it with :func:`mrcohort.cohort.load.load_visit`.

    Attributes
    ----------
    layout
        ``ukbb``, ``nako`` or ``manifest``.
    participant_id, visit
        Validated (``[A-Za-z0-9_-]+``) before any use as a path component.
    source
        The zip (ukbb), the visit folder (nako) or the manifest file (manifest).
    root
        The source folder given to discovery; table ``source`` columns are relative to it.
    entries
        Manifest rows of this participant-visit (manifest layout only).
    """

    layout: str
    participant_id: str
    visit: str
    source: Path
    root: Path
    entries: tuple[ManifestEntry, ...] = ()

    @property
    def label(self) -> str:
        """``participant_id/visit`` for messages."""
        return f"{self.participant_id}/{self.visit}"

    @property
    def relative_source(self) -> str:
        """The input's path relative to the cohort folder (as in the tables' ``source``)."""
        return relative_path(self.source, self.root)


def relative_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX), or the whole path when it is not below it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


@dataclass(frozen=True)
class Rejected:
    """An input that discovery could not turn into a :class:`ParticipantVisit` (a failure row).

    ``participant_id`` is ``""`` when none could be read safely from the input. A rejected
    manifest row (inputs that share one source file) has its ``line`` (for messages) and a
    ``key``: a hash of the row's content, its identity however the rows around it change.
    """

    source: Path
    code: str
    message: str
    participant_id: str = ""
    visit: str | None = None
    stage: str = "ingest"
    line: int | None = None
    key: str | None = None


class Discovery(NamedTuple):
    """Result of discovery: participant-visits to load and inputs rejected (with codes)."""

    pvs: list[ParticipantVisit]
    rejected: list[Rejected]


@dataclass(frozen=True)
class Station:
    """One station image as read, with where it came from (nothing identifying a person).

    Attributes
    ----------
    image
        float32 3D image, finite, LPS geometry.
    sequence, channel
        What the layout's rules (or the manifest) say it is.
    source
        Path of the zip, file or DICOM series folder, relative to the source root.
    format
        ``dicom``, ``nifti``, ``mha`` or ``nrrd``.
    content_sha256
        sha256 of the file (image files) or of the series' per-file hashes (DICOM, see
        :func:`mrcohort.io.dicom.series_sha256`).
    series_number
        DICOM SeriesNumber, if any.
    modality
        DICOM Modality (``MR``, ``CT``), if any.
    station_hint
        Station number from a manifest (orders stations without header positions).
    """

    image: sitk.Image
    sequence: str
    channel: str
    source: str
    format: str
    content_sha256: str
    series_number: int | None = None
    modality: str | None = None
    station_hint: int | None = None
