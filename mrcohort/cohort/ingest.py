"""Layout-independent ingest: discover participant-visits, load their stations, write ``scans``.

The one entry point for every layout (``ukbb``, ``nako``, ``manifest``)::

    found = discover("ukbb", "/data/20201")          # Discovery(groups, rejected)
    for group in found.groups:
        visit = load_group(group)                      # LoadedVisit
        stations = visit.images("dixon")               # channel -> stations, lowest first
        sha = visit.input_sha256

:func:`ingest` runs discovery and loading over a whole cohort and writes the ``scans`` table
(one row per participant x visit x sequence x channel x station) and ``failures`` rows to the
Parquet store. Expected problems never stop the batch: each becomes one failure row with a
stable code (docs/failures.md).

Checks per sequence after reading (a failing sequence keeps its ``scans`` rows, marked
``usable = false``, and gets one failure row; the other sequences of the visit go on):

* ``MISSING_CHANNEL`` (Dixon without one of in/opp/w/f), ``DUPLICATE_SERIES`` (two series of
  one channel at one station), ``STATION_MISMATCH`` (channels with different station
  counts), ``GRID_MISMATCH`` / ``STATION_GAP`` (what :func:`~mrcohort.cohort.stitch.
  check_channels` finds). A station missing at either end is not an error: the ``scans``
  table shows ``n_stations`` below ``stations_expected``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pydicom.misc
import SimpleITK as sitk

from mrcohort import __version__
from mrcohort.cohort.channels import CHANNELS
from mrcohort.cohort.imagefile import check_image, image_format, image_stem, read_station_file
from mrcohort.cohort.layouts import LayoutConfig, load_layout
from mrcohort.cohort.manifest import manifest_path, read_manifest
from mrcohort.cohort.nako import discover_nako
from mrcohort.cohort.placement import lacks_positions
from mrcohort.cohort.records import Discovery, Rejected, ScanGroup, Station
from mrcohort.cohort.stitch import check_channels
from mrcohort.cohort.ukbb import order_stations, parse_ukbb_name, scan_ukbb_zip
from mrcohort.errors import IngestError, MrcohortError
from mrcohort.io.dicom import DicomSeries, scan_dicom
from mrcohort.io.files import sha256_file

__all__ = [
    "NO_MODEL_KEY",
    "IngestSummary",
    "LoadedVisit",
    "discover",
    "failure_row",
    "geometry_columns",
    "ingest",
    "layout_params_hash",
    "load_dixon",
    "load_group",
    "scan_rows",
]

log = logging.getLogger(__name__)

#: ``model_key`` partition value of tables written before any model runs (scans, ingest
#: failures).
NO_MODEL_KEY = "none"
_SAFE_RE = re.compile(r"[A-Za-z0-9_.-]+")


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
    groups: list[ScanGroup] = []
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
        groups.append(ScanGroup("ukbb", pid, visit, paths[0], root))
    return Discovery(groups, rejected)


def _discover_manifest(source: Path) -> Discovery:
    """Group manifest rows by participant and visit."""
    path = manifest_path(source)
    entries, rejected = read_manifest(path)
    by_key: dict[tuple[str, str], list] = {}
    for e in entries:
        by_key.setdefault((e.participant_id, e.visit), []).append(e)
    groups = [
        ScanGroup("manifest", pid, visit, path, path.parent, tuple(rows))
        for (pid, visit), rows in sorted(by_key.items())
    ]
    return Discovery(groups, rejected)


# --------------------------------------------------------------------------- load


@dataclass
class LoadedVisit:
    """What :func:`load_group` read for one participant-visit.

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

    group: ScanGroup
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


def load_group(group: ScanGroup, *, config: LayoutConfig | None = None) -> LoadedVisit:
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
    group: ScanGroup, *, config: LayoutConfig | None = None
) -> dict[str, list[sitk.Image]]:
    """Dixon channel -> station images (lowest first) of one participant-visit.

    Shorthand for ``load_group(group).images("dixon")``; raises the Dixon sequence's
    failure (``MISSING_CHANNEL``, ``GRID_MISMATCH``, ...) or ``MISSING_SEQUENCE``.
    """
    return load_group(group, config=config).images("dixon")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


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


def _read_ukbb(group: ScanGroup, config: LayoutConfig) -> list[Station]:
    scan = scan_ukbb_zip(
        group.source,
        description_filter=lambda d: config.classify(d) is not None,
        require_manifest=config.require_manifest,
        max_voxels=config.limits.max_voxels,
    )
    source = _relative(group.source, group.root)
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


def _read_folder(group: ScanGroup, config: LayoutConfig) -> list[Station]:
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
        rel = _relative(path, group.root)
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
            out.append(_series_station(series, *kind, _relative(parent, group.root), config.limits))
    return out


def _read_manifest_group(group: ScanGroup, config: LayoutConfig) -> list[Station]:
    """Manifest rows: image files, single DICOM files or one-series DICOM folders."""
    out: list[Station] = []
    for e in group.entries:
        rel = _relative(e.path, group.root)
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


# --------------------------------------------------------------------------- rows


def layout_params_hash(config: LayoutConfig) -> str:
    """Hash of the layout settings that shaped the rows (``params_hash``), 16 hex digits."""
    data = asdict(config)
    data["rules"] = [(r.pattern.pattern, r.sequence, r.channel) for r in config.rules]
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _provenance(
    input_sha256: str | None, params_hash: str, now: dt.datetime, model_key: str = NO_MODEL_KEY
) -> dict:
    return {
        "input_sha256": input_sha256,
        "model_key": model_key,
        "code_version": __version__,
        "params_hash": params_hash,
        "computed_at": now,
    }


def geometry_columns(img: sitk.Image) -> dict[str, object]:
    """The ``scans`` geometry columns of an image (size, spacing, origin, direction)."""
    out: dict[str, object] = {}
    out |= {f"size_{a}_vox": int(n) for a, n in zip("xyz", img.GetSize(), strict=True)}
    out |= {f"spacing_{a}_mm": float(v) for a, v in zip("xyz", img.GetSpacing(), strict=True)}
    out |= {f"origin_{a}_mm": float(v) for a, v in zip("xyz", img.GetOrigin(), strict=True)}
    out["direction"] = [float(v) for v in img.GetDirection()]
    return out


def scan_rows(
    visit: LoadedVisit,
    *,
    cohort: str,
    config: LayoutConfig,
    now: dt.datetime | None = None,
) -> list[dict[str, object]]:
    """``scans`` rows of one loaded participant-visit (every sequence read, usable or not)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    params = layout_params_hash(config)
    g = visit.group
    rows: list[dict[str, object]] = []
    for seq, channels in visit.sequences.items():
        err = visit.errors.get(seq)
        for channel, stations in channels.items():
            for number, s in enumerate(stations, start=1):
                img = s.image
                rows.append(
                    {
                        "cohort": cohort,
                        "participant_id": g.participant_id,
                        "visit": g.visit,
                        "sequence": seq,
                        "channel": channel,
                        "station": number,
                        "n_stations": len(stations),
                        "stations_expected": config.expected(seq),
                        "layout": g.layout,
                        "source": s.source,
                        "format": s.format,
                        "series_number": s.series_number,
                        "modality": s.modality,
                        "content_sha256": s.content_sha256,
                        **geometry_columns(img),
                        "usable": err is None,
                        "problem_code": None if err is None else err.code,
                        **_provenance(visit.input_sha256, params, now),
                    }
                )
    return rows


def failure_row(
    *,
    cohort: str,
    err: MrcohortError | Rejected,
    participant_id: str,
    visit: str | None,
    source: str | None,
    input_sha256: str | None,
    params_hash: str,
    now: dt.datetime | None = None,
    model_key: str = NO_MODEL_KEY,
) -> dict[str, object]:
    """One ``failures`` row; ``model_key`` is ``none`` when nothing was to be segmented
    (ingest) and the job's model otherwise."""
    return {
        "cohort": cohort,
        "participant_id": participant_id,
        "visit": visit,
        "stage": err.stage,
        "code": err.code,
        "message": err.message,
        "source": source,
        **_provenance(
            input_sha256, params_hash, now or dt.datetime.now(dt.timezone.utc), model_key
        ),
    }


# --------------------------------------------------------------------------- ingest


@dataclass
class IngestSummary:
    """What :func:`ingest` did."""

    n_groups: int = 0
    n_loaded: int = 0
    n_scan_rows: int = 0
    failures: list[dict[str, object]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def n_failed(self) -> int:
        return len(self.failures)


def _guarded_load(group: ScanGroup, config: LayoutConfig) -> LoadedVisit | MrcohortError:
    """load_group, with unexpected exceptions turned into coded errors (batch goes on)."""
    try:
        return load_group(group, config=config)
    except MrcohortError as err:
        return err
    except MemoryError as exc:
        return MrcohortError("OUT_OF_MEMORY", f"ran out of memory: {exc}", stage="ingest")
    except Exception as exc:  # an unforeseen input must not stop the cohort
        log.exception("unexpected error on %s", group.label)
        return MrcohortError("UNEXPECTED_ERROR", f"{type(exc).__name__}: {exc}", stage="ingest")


def ingest(
    layout: str,
    source: str | os.PathLike[str],
    *,
    cohort: str,
    store: str | os.PathLike[str],
    config: LayoutConfig | None = None,
    batch_size: int = 200,
    on_progress: Callable[[ScanGroup, LoadedVisit | MrcohortError], None] | None = None,
    discovery: Discovery | None = None,
) -> IngestSummary:
    """Discover and read a cohort; write its ``scans`` and ``failures`` tables.

    Parameters
    ----------
    layout
        ``ukbb``, ``nako`` or ``manifest``.
    source
        Cohort folder or manifest.
    cohort
        Cohort name (partition value, ``[A-Za-z0-9_.-]+``).
    store
        Store root (:mod:`mrcohort.schemas.store`).
    config
        Layout settings; default ``load_layout(layout)``.
    batch_size
        Participant-visits per Parquet file.
    on_progress
        Called after each participant-visit with its result.
    discovery
        The result of ``discover(layout, source, config=config)`` if already at hand.

    Returns
    -------
    IngestSummary

    Notes
    -----
    Files go to ``<store>/scans/cohort=<cohort>/model_key=none/`` and
    ``<store>/failures/cohort=<cohort>/model_key=none/``, named
    ``part-ingest-<layout>-<hash of the source path>-<batch>.parquet``: ingesting the same
    source again replaces its earlier files (stale batch files of that source are removed).
    """
    if not isinstance(cohort, str) or not _SAFE_RE.fullmatch(cohort) or ".." in cohort:
        raise ValueError(f"cohort name {cohort!r} must match [A-Za-z0-9_.-]+")
    config = config or load_layout(layout)
    root = Path(source)
    found = discovery if discovery is not None else discover(layout, root, config=config)
    params = layout_params_hash(config)
    now = dt.datetime.now(dt.timezone.utc)
    summary = IngestSummary(n_groups=len(found.groups))
    base = found.groups[0].root if found.groups else root
    failures: list[dict[str, object]] = []
    for r in found.rejected:
        failures.append(
            failure_row(
                cohort=cohort,
                err=r,
                participant_id=r.participant_id,
                visit=r.visit,
                source=_relative(r.source, base),
                input_sha256=None,
                params_hash=params,
                now=now,
            )
        )
    source_key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    prefix = f"ingest-{layout}-{source_key}"
    written: list[Path] = []
    batch_rows: list[dict[str, object]] = []
    batch_fail: list[dict[str, object]] = failures
    n_in_batch = 0
    batch = 0

    def flush() -> None:
        nonlocal batch_rows, batch_fail, n_in_batch, batch
        written.extend(
            _write_batch(Path(store), cohort, f"{prefix}-{batch:05d}", batch_rows, batch_fail)
        )
        summary.n_scan_rows += len(batch_rows)
        summary.failures.extend(batch_fail)
        batch_rows, batch_fail, n_in_batch = [], [], 0
        batch += 1

    for group in found.groups:
        result = _guarded_load(group, config)
        rel = _relative(group.source, group.root)
        if isinstance(result, MrcohortError):
            batch_fail.append(
                failure_row(
                    cohort=cohort,
                    err=result,
                    participant_id=group.participant_id,
                    visit=group.visit,
                    source=rel,
                    input_sha256=None,
                    params_hash=params,
                    now=now,
                )
            )
        else:
            summary.n_loaded += 1
            batch_rows.extend(scan_rows(result, cohort=cohort, config=config, now=now))
            for err in result.errors.values():
                batch_fail.append(
                    failure_row(
                        cohort=cohort,
                        err=err,
                        participant_id=group.participant_id,
                        visit=group.visit,
                        source=rel,
                        input_sha256=result.input_sha256,
                        params_hash=params,
                        now=now,
                    )
                )
        if on_progress is not None:
            on_progress(group, result)
        n_in_batch += 1
        if n_in_batch >= batch_size:
            flush()
    if n_in_batch or batch_fail or batch == 0:
        flush()
    _remove_stale(Path(store), cohort, prefix, written)
    summary.files = written
    return summary


def _write_batch(
    store: Path,
    cohort: str,
    file_key: str,
    scans: list[dict[str, object]],
    failures: list[dict[str, object]],
) -> list[Path]:
    from mrcohort.schemas.store import write_table
    from mrcohort.schemas.tables import table_from_rows

    partition = {"cohort": cohort, "model_key": NO_MODEL_KEY}
    out = []
    for name, rows in (("scans", scans), ("failures", failures)):
        if rows:
            table = table_from_rows(name, rows)
            out.append(write_table(store, name, table, partition=partition, file_key=file_key))
    return out


def _remove_stale(store: Path, cohort: str, prefix: str, written: Iterable[Path]) -> None:
    """Delete files an earlier ingest of the same source wrote and this one did not."""
    keep = {p.resolve() for p in written}
    for name in ("scans", "failures"):
        folder = store / name / f"cohort={cohort}" / f"model_key={NO_MODEL_KEY}"
        if not folder.is_dir():
            continue
        for old in folder.glob(f"part-{prefix}-*.parquet"):
            if old.resolve() not in keep:
                old.unlink(missing_ok=True)
