"""The ingest job: discover and read a whole cohort, write its ``scans`` and ``failures``.

One ``scans`` row per participant x visit x sequence x channel x station (geometry, content
sha256; nothing that identifies a person). Expected problems never stop the batch: each
becomes one failure row with a stable code (docs/failures.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import SimpleITK as sitk

from mrcohort.cohort import (
    Discovery,
    LayoutConfig,
    LoadedVisit,
    ParticipantVisit,
    discover,
    load_layout,
    load_visit,
    relative_path,
)
from mrcohort.errors import MrcohortError, guard
from mrcohort.ids import check_partition_value
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.rows import NO_MODEL_KEY, failure_row, provenance
from mrcohort.schemas.store import write_table

__all__ = ["IngestSummary", "geometry_columns", "ingest", "layout_params_hash", "scan_rows"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- rows


def layout_params_hash(config: LayoutConfig) -> str:
    """Hash of the layout settings that shaped the rows (``params_hash``), 16 hex digits."""
    data = asdict(config)
    data["rules"] = [(r.pattern.pattern, r.sequence, r.channel) for r in config.rules]
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


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
    run_id: str | None = None,
) -> list[dict[str, object]]:
    """``scans`` rows of one loaded participant-visit (every sequence read, usable or not)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    params = layout_params_hash(config)
    pv = visit.pv
    rows: list[dict[str, object]] = []
    for seq, channels in visit.sequences.items():
        err = visit.errors.get(seq)
        for channel, stations in channels.items():
            for number, s in enumerate(stations, start=1):
                img = s.image
                rows.append(
                    {
                        "cohort": cohort,
                        "participant_id": pv.participant_id,
                        "visit": pv.visit,
                        "sequence": seq,
                        "channel": channel,
                        "station": number,
                        "n_stations": len(stations),
                        "stations_expected": config.expected(seq),
                        "layout": pv.layout,
                        "source": s.source,
                        "format": s.format,
                        "series_number": s.series_number,
                        "modality": s.modality,
                        "content_sha256": s.content_sha256,
                        **geometry_columns(img),
                        "usable": err is None,
                        "problem_code": None if err is None else err.code,
                        **provenance(
                            input_sha256=visit.input_sha256,
                            params_hash=params,
                            now=now,
                            run_id=run_id,
                        ),
                    }
                )
    return rows


# --------------------------------------------------------------------------- ingest


@dataclass
class IngestSummary:
    """What :func:`ingest` did."""

    n_visits: int = 0
    n_loaded: int = 0
    n_scan_rows: int = 0
    failures: list[dict[str, object]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def n_failed(self) -> int:
        return len(self.failures)


def _guarded_load(pv: ParticipantVisit, config: LayoutConfig) -> LoadedVisit | MrcohortError:
    """load_visit, with every exception turned into a coded error (the batch goes on)."""
    try:
        with guard("ingest"):
            return load_visit(pv, config=config)
    except MrcohortError as err:
        return err


def ingest(
    layout: str,
    source: str | os.PathLike[str],
    *,
    cohort: str,
    store: str | os.PathLike[str],
    config: LayoutConfig | None = None,
    batch_size: int = 200,
    on_progress: Callable[[ParticipantVisit, LoadedVisit | MrcohortError], None] | None = None,
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
    check_partition_value(cohort, "cohort name")
    config = config or load_layout(layout)
    root = Path(source)
    found = discovery if discovery is not None else discover(layout, root, config=config)
    params = layout_params_hash(config)
    now = dt.datetime.now(dt.timezone.utc)
    summary = IngestSummary(n_visits=len(found.pvs))
    base = found.pvs[0].root if found.pvs else root
    failures: list[dict[str, object]] = []
    for r in found.rejected:
        failures.append(
            failure_row(
                r,
                cohort=cohort,
                participant_id=r.participant_id,
                visit=r.visit,
                source=relative_path(r.source, base),
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

    for pv in found.pvs:
        result = _guarded_load(pv, config)

        def fail(err: MrcohortError, input_sha256: str | None, pv: ParticipantVisit = pv) -> None:
            batch_fail.append(
                failure_row(
                    err,
                    cohort=cohort,
                    participant_id=pv.participant_id,
                    visit=pv.visit,
                    source=pv.relative_source,
                    input_sha256=input_sha256,
                    params_hash=params,
                    now=now,
                )
            )

        if isinstance(result, MrcohortError):
            fail(result, None)
        else:
            summary.n_loaded += 1
            batch_rows.extend(scan_rows(result, cohort=cohort, config=config, now=now))
            for err in result.errors.values():
                fail(err, result.input_sha256)
        if on_progress is not None:
            on_progress(pv, result)
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
