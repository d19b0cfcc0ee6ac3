"""What every layout provides: discovery of participant-visits, reading their stations, and
the hash of a participant-visit's input (the ``input_sha256`` of its table rows)."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from mrcohort.cohort.layouts.config import LayoutConfig
from mrcohort.cohort.records import Discovery, ParticipantVisit, Station
from mrcohort.errors import IngestError
from mrcohort.io.dicom import DicomSeries
from mrcohort.io.images import Limits, check_image

__all__ = ["Layout", "combined_sha256", "series_station", "visible_files"]


class Layout(ABC):
    """One cohort layout (``ukbb``, ``nako``, ``manifest``): find and read its inputs.

    Stateless; the settings come in as a :class:`~mrcohort.cohort.layouts.config.LayoutConfig`.
    """

    #: Name used on the command line and in the ``layout`` column.
    name: ClassVar[str]

    @abstractmethod
    def discover(self, source: Path, config: LayoutConfig) -> Discovery:
        """Participant-visits under ``source`` (sorted) and the inputs rejected, with codes.

        Raises
        ------
        IngestError
            ``FILE_NOT_FOUND`` when there is no such source; layout-specific codes.
        """

    @abstractmethod
    def read(self, pv: ParticipantVisit, config: LayoutConfig) -> list[Station]:
        """Every station of one participant-visit that the layout's rules select.

        Raises
        ------
        IngestError
            When the input cannot be read (zip, DICOM and image codes, docs/failures.md).
        """

    def input_files(self, pv: ParticipantVisit) -> list[Path]:
        """The files that make up the input of ``pv`` (their sizes and modification times
        are its fingerprint): the source file itself, or every visible file below the
        source folder. Nothing is read."""
        return visible_files(pv.source)

    def file_sha256(self, pv: ParticipantVisit) -> str | None:
        """The input's hash when it is the hash of one file, known before (and without)
        reading the images — also for an input that turns out unreadable; else None."""
        return None

    def input_sha256(self, pv: ParticipantVisit, stations: Sequence[Station]) -> str:
        """sha256 identifying the input of ``pv``: :meth:`file_sha256` where there is one,
        else :func:`combined_sha256` of the stations."""
        return self.file_sha256(pv) or combined_sha256(stations)


def visible_files(path: Path) -> list[Path]:
    """``path`` if it is a file, else every file below it whose relative path has no part
    starting with ``.`` (sorted); ``[path]`` when it does not exist (its absence is part of
    the fingerprint)."""
    if not path.is_dir():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def combined_sha256(stations: Sequence[Station]) -> str:
    """sha256 of the lines ``<sequence>/<channel>/<source>:<content_sha256>``, sorted."""
    lines = sorted(f"{s.sequence}/{s.channel}/{s.source}:{s.content_sha256}" for s in stations)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def series_station(
    series: DicomSeries,
    sequence: str,
    channel: str,
    source: str,
    limits: Limits,
    *,
    hint: int | None = None,
    modality: str | None = None,
) -> Station:
    """A checked :class:`~mrcohort.cohort.records.Station` from one DICOM series.

    ``modality`` (e.g. ``"MR"``): the series' DICOM Modality must be it (``WRONG_MODALITY``;
    a series without one passes).
    """
    found = (series.modality or "").strip().upper()
    if modality is not None and found and found != modality:
        raise IngestError(
            "WRONG_MODALITY",
            f"{source} series {series.series_number} ({series.series_description!r}): "
            f"Modality {found}, this layout reads {modality} only; a series exported from "
            "another scanner or mislabelled: check the export",
        )
    image = check_image(series.image, f"{source} series {series.series_number}", limits=limits)
    return Station(
        image=image,
        sequence=sequence,
        channel=channel,
        source=source,
        format="dicom",
        content_sha256=series.content_sha256,
        series_number=series.series_number,
        modality=series.modality or None,
        station_hint=hint,
    )
