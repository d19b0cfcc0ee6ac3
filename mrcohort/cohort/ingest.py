"""Layout-independent ingest: discover participant-visits and load their stations.

The one entry point for every layout (``ukbb``, ``nako``, ``manifest``)::

    found = discover("ukbb", "/data/20201")          # Discovery(groups, rejected)
    for group in found.groups:
        visit = load_visit(group)                      # LoadedVisit
        stations = visit.images("dixon")               # channel -> stations, lowest first
        sha = visit.input_sha256

The job that writes the ``scans`` table from this is :mod:`mrcohort.jobs.scans`.

Checks per sequence after reading (a failing sequence keeps its ``scans`` rows, marked
``usable = false``, and gets one failure row; the other sequences of the visit go on):

* ``MISSING_CHANNEL`` (Dixon without one of in/opp/w/f), ``DUPLICATE_SERIES`` (two series of
  one channel at one station), ``STATION_MISMATCH`` (channels with different station
  counts), ``GRID_MISMATCH`` / ``STATION_GAP`` (what :func:`~mrcohort.cohort.stitch.
  check_channels` finds). A station missing at either end is not an error: the ``scans``
  table shows ``n_stations`` below ``stations_expected``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom.misc
import SimpleITK as sitk

from mrcohort.cohort.channels import CHANNELS
from mrcohort.cohort.imagefile import check_image, image_format, image_stem, read_station_file
from mrcohort.cohort.layouts import LayoutConfig, load_layout
from mrcohort.cohort.manifest import manifest_path, read_manifest
from mrcohort.cohort.nako import discover_nako
from mrcohort.cohort.placement import lacks_positions
from mrcohort.cohort.records import Discovery, ParticipantVisit, Rejected, Station, relative_path
from mrcohort.cohort.stitch import check_channels
from mrcohort.cohort.ukbb import order_stations, parse_ukbb_name, scan_ukbb_zip
from mrcohort.errors import IngestError, MrcohortError
from mrcohort.io.dicom import DicomSeries, scan_dicom
from mrcohort.io.files import sha256_file

__all__ = [
    "LoadedVisit",
    "discover",
    "load_dixon",
    "load_visit",
]

log = logging.getLogger(__name__)



# --------------------------------------------------------------------------- discover


def discover(
    layout: str,
    source: str | os.PathLike[str],
    *,
    config: LayoutConfig | None = None,
) -> Discovery:
    """Find the participant-visits of a cohort in any layout.

    Parameters
    ----------
    layout
        ``ukbb``, ``nako`` or ``manifest``.
    source
        The cohort folder (ukbb, nako) or the manifest CSV / its folder (manifest).
    config
        Layout settings; default :func:`~mrcohort.cohort.layouts.load_layout(layout)`.

    Returns
    -------
    Discovery
        ``(groups, rejected)``: participant-visits to load (sorted by participant, visit)
        and inputs that cannot be, each with a failure code.

    Raises
    ------
    IngestError
        ``FILE_NOT_FOUND`` (no such folder / manifest), ``BAD_MANIFEST``.
    ValueError
        Unknown layout.
    """
    config = config or load_layout(layout)
    if config.name != layout:
        raise ValueError(f"config is for layout {config.name!r}, not {layout!r}")
    if layout == "ukbb":
        return _discover_ukbb(Path(source))
    if layout == "nako":
        return discover_nako(source, config)
    return _discover_manifest(Path(source))


def _discover_ukbb(root: Path) -> Discovery:
    """Field-20201 zips; a participant-visit claimed by two different zips is rejected."""
    if not root.is_dir():
        raise IngestError("FILE_NOT_FOUND", f"{root} is not a folder")
    by_key: dict[tuple[str, str], list[Path]] = {}
    rejected: list[Rejected] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() != ".zip" or path.name.startswith("."):
            continue  # truth tables, notes, temp files: not participants
        parsed = parse_ukbb_name(path)
        if isinstance(parsed, str):
            rejected.append(
                Rejected(path, "UNRECOGNISED_FILE", f"{path.relative_to(root)}: {parsed}")
            )
            continue
        by_key.setdefault((parsed.participant_id, parsed.visit), []).append(path)
    groups: list[ParticipantVisit] = []
    for (pid, visit), paths in sorted(by_key.items(), key=lambda kv: (int(kv[0][0]), kv[0])):
        if len(paths) > 1:
            digests = {sha256_file(p) for p in paths}
            if len(digests) > 1:
                names = ", ".join(str(p.relative_to(root)) for p in paths)
                rejected.append(
                    Rejected(
                        paths[0],
                        "DUPLICATE_VISIT",
                        f"{len(paths)} different zips claim participant {pid} visit {visit}: "
                        f"{names}",
                        participant_id=pid,
                        visit=visit,
                    )
                )
                continue
            log.info("%s/%s: identical copies %s; reading the first", pid, visit, paths)
        groups.append(ParticipantVisit("ukbb", pid, visit, paths[0], root))
    return Discovery(groups, rejected)


def _discover_manifest(source: Path) -> Discovery:
    """Group manifest rows by participant and visit."""
    path = manifest_path(source)
    entries, rejected = read_manifest(path)
    by_key: dict[tuple[str, str], list] = {}
    for e in entries:
        by_key.setdefault((e.participant_id, e.visit), []).append(e)
    groups = [
        ParticipantVisit("manifest", pid, visit, path, path.parent, tuple(rows))
        for (pid, visit), rows in sorted(by_key.items())
    ]
    return Discovery(groups, rejected)


# --------------------------------------------------------------------------- load


@dataclass
class LoadedVisit:
    """What :func:`load_visit` read for one participant-visit.

    Attributes
    ----------
    group
        The participant-visit.
    input_sha256
        ukbb: sha256 of the zip; other layouts: sha256 of the lines
        ``<sequence>/<channel>/<station>:<content_sha256>`` of every station, sorted.
    sequences
        Sequence -> channel -> stations ordered along the body (lowest first). Holds every
        sequence read, usable or not.
    errors
        Sequence -> why it cannot be stitched (absent when usable).
    """

    group: ParticipantVisit
    input_sha256: str
    sequences: dict[str, dict[str, list[Station]]]
    errors: dict[str, MrcohortError] = field(default_factory=dict)

    def images(self, sequence: str = "dixon") -> dict[str, list[sitk.Image]]:
        """Channel -> station images (lowest first) of a usable sequence.

        Raises
        ------
        MrcohortError
            The sequence's own failure, or ``MISSING_SEQUENCE`` when it was not found.
        """
        if sequence in self.errors:
            raise self.errors[sequence]
        if sequence not in self.sequences:
            found = ", ".join(sorted(self.sequences)) or "none"
            raise IngestError(
                "MISSING_SEQUENCE",
                f"{self.group.label}: no {sequence} series (found: {found})",
            )
        return {c: [s.image for s in v] for c, v in self.sequences[sequence].items()}


def load_visit(group: ParticipantVisit, *, config: LayoutConfig | None = None) -> LoadedVisit:
    """Read every station of one participant-visit and check each sequence.

    Parameters
    ----------
    group
        From :func:`discover`.
    config
        Layout settings; default ``load_layout(group.layout)``.

    Returns
    -------
    LoadedVisit

    Raises
    ------
    IngestError
        When nothing usable can be read: the zip / DICOM / image codes
        (docs/failures.md), ``NO_IMAGES``. Per-sequence problems go to
        :attr:`LoadedVisit.errors` instead.
    """
    config = config or load_layout(group.layout)
    if group.layout == "ukbb":
        stations, input_sha = _read_ukbb(group, config), sha256_file(group.source)
    elif group.layout == "nako":
        stations = _read_folder(group, config)
        input_sha = _combined_sha(stations)
    else:
        stations = _read_manifest_group(group, config)
        input_sha = _combined_sha(stations)
    if not stations:
        raise IngestError("NO_IMAGES", f"{group.label}: no image series matched the layout")
    sequences, errors = _assemble(stations, group.label)
    return LoadedVisit(group, input_sha, sequences, errors)


def load_dixon(
    group: ParticipantVisit, *, config: LayoutConfig | None = None
) -> dict[str, list[sitk.Image]]:
    """Dixon channel -> station images (lowest first) of one participant-visit.

    Shorthand for ``load_visit(group).images("dixon")``; raises the Dixon sequence's
    failure (``MISSING_CHANNEL``, ``GRID_MISMATCH``, ...) or ``MISSING_SEQUENCE``.
    """
    return load_visit(group, config=config).images("dixon")


def _series_station(
    series: DicomSeries,
    sequence: str,
    channel: str,
    source: str,
    limits,
    *,
    hint: int | None = None,
) -> Station:
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


def _read_ukbb(group: ParticipantVisit, config: LayoutConfig) -> list[Station]:
    scan = scan_ukbb_zip(
        group.source,
        description_filter=lambda d: config.classify(d) is not None,
        require_manifest=config.require_manifest,
        max_voxels=config.limits.max_voxels,
    )
    source = relative_path(group.source, group.root)
    out = []
    for series in scan.series:
        kind = config.classify(series.series_description)
        if kind is not None:
            out.append(_series_station(series, *kind, source, config.limits))
    return out


def _is_dicom_file(path: Path) -> bool:
    """A file with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        return bool(pydicom.misc.is_dicom(path))
    except OSError:
        return False


def _read_folder(group: ParticipantVisit, config: LayoutConfig) -> list[Station]:
    """NAKO visit folder: DICOM series anywhere below it, and image files."""
    folder = group.source
    if not folder.is_dir():
        raise IngestError("FILE_NOT_FOUND", f"{folder} does not exist")
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    out: list[Station] = []
    dicom_files: list[Path] = []
    for path in files:
        fmt = image_format(path)
        rel = relative_path(path, group.root)
        if fmt is None:
            if _is_dicom_file(path):
                dicom_files.append(path)
            else:
                log.info("%s: ignored %s (not DICOM, not an image file)", group.label, rel)
            continue
        kind = config.classify(image_stem(path))
        if kind is None:
            log.info("%s: ignored %s (no series rule matches its name)", group.label, rel)
            continue
        image = read_station_file(path, limits=config.limits, label=rel)
        out.append(Station(image, *kind, rel, fmt, sha256_file(path)))
    if dicom_files:
        scan = scan_dicom(
            dicom_files,
            description_filter=lambda d: config.classify(d) is not None,
            max_voxels=config.limits.max_voxels,
        )
        for name, reason in scan.ignored:
            log.info("%s: ignored %s: %s", group.label, name, reason)
        for series in scan.series:
            kind = config.classify(series.series_description)
            if kind is None:
                continue
            parent = Path(os.path.commonpath([Path(f).parent for f in series.files]))
            rel = relative_path(parent, group.root)
            out.append(_series_station(series, *kind, rel, config.limits))
    return out


def _read_manifest_group(group: ParticipantVisit, config: LayoutConfig) -> list[Station]:
    """Manifest rows: image files, single DICOM files or one-series DICOM folders."""
    out: list[Station] = []
    for e in group.entries:
        rel = relative_path(e.path, group.root)
        where = f"{group.source.name} line {e.line}: {rel}"
        if e.path.is_dir():
            paths = sorted(p for p in e.path.rglob("*") if p.is_file() and _visible(p))
            out.append(_one_series(paths, e, rel, where, config))
        elif not e.path.is_file():
            raise IngestError("FILE_NOT_FOUND", f"{where} does not exist")
        elif (fmt := image_format(e.path)) is not None or not _is_dicom_file(e.path):
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


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _one_series(paths: list[Path], entry, rel: str, where: str, config: LayoutConfig) -> Station:
    dicom = [p for p in paths if _is_dicom_file(p)]
    scan = scan_dicom(dicom, max_voxels=config.limits.max_voxels)
    if not scan.series:
        what = "; ".join(sorted({reason for _, reason in scan.ignored})) or "no DICOM files"
        raise IngestError("NOT_AN_IMAGE", f"{where}: no image series ({what})")
    if len(scan.series) > 1:
        raise IngestError(
            "MULTIPLE_SERIES",
            f"{where}: {len(scan.series)} image series; a manifest row must name one",
        )
    return _series_station(
        scan.series[0], entry.sequence, entry.channel, rel, config.limits, hint=entry.station
    )


def _combined_sha(stations: Sequence[Station]) -> str:
    lines = sorted(f"{s.sequence}/{s.channel}/{s.source}:{s.content_sha256}" for s in stations)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# --------------------------------------------------------------------------- assemble


def _order(stations: list[Station], label: str) -> list[Station]:
    """Order one channel's stations along the body (by position; by manifest station
    number when the headers put them all at the same place)."""
    images = [s.image for s in stations]
    hints = [s.station_hint for s in stations]
    if lacks_positions(images):
        if None in hints or len(set(hints)) != len(hints):
            raise IngestError(
                "DUPLICATE_SERIES",
                f"{label}: {len(images)} series at the same position and no distinct "
                "station numbers",
            )
        return sorted(stations, key=lambda s: s.station_hint)  # type: ignore[arg-type,return-value]
    ordered = order_stations(images, label=label)
    return [stations[next(i for i, im in enumerate(images) if im is o)] for o in ordered]


def _assemble(
    stations: Sequence[Station], label: str
) -> tuple[dict[str, dict[str, list[Station]]], dict[str, MrcohortError]]:
    """Group stations by sequence and channel, order them, check each sequence."""
    grouped: dict[str, dict[str, list[Station]]] = {}
    for s in stations:
        grouped.setdefault(s.sequence, {}).setdefault(s.channel, []).append(s)
    sequences: dict[str, dict[str, list[Station]]] = {}
    errors: dict[str, MrcohortError] = {}
    for seq in sorted(grouped):
        channels = grouped[seq]
        names = [c for c in CHANNELS if c in channels] + sorted(
            c for c in channels if c not in CHANNELS
        )
        sequences[seq] = {c: channels[c] for c in names}
        try:
            ordered = {c: _order(channels[c], f"{label} {seq} {c}") for c in names}
            sequences[seq] = ordered
            if seq == "dixon":
                missing = [c for c in CHANNELS if c not in ordered]
                if missing:
                    raise IngestError(
                        "MISSING_CHANNEL",
                        f"{label}: no series for channel(s) {', '.join(missing)}",
                    )
            counts = {c: len(v) for c, v in ordered.items()}
            if len(set(counts.values())) > 1:
                raise IngestError(
                    "STATION_MISMATCH", f"{label} {seq}: stations per channel {counts}"
                )
            if not lacks_positions([s.image for s in next(iter(ordered.values()))]):
                check_channels({c: [s.image for s in v] for c, v in ordered.items()})
        except MrcohortError as err:
            errors[seq] = MrcohortError(err.code, f"{seq}: {err.message}", stage=err.stage)
    return sequences, errors
