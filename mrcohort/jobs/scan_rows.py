"""The ``scans`` rows of a loaded participant-visit: one row per sequence x channel x station
(geometry, content sha256; nothing that identifies a person)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict

import SimpleITK as sitk

from mrcohort.cohort import LayoutConfig, LoadedVisit
from mrcohort.schemas.rows import provenance

__all__ = ["geometry_columns", "layout_params_hash", "scan_rows"]


def layout_params_hash(config: LayoutConfig) -> str:
    """Hash of the layout settings that shaped the rows (``params_hash``), 16 hex digits.

    The zip limits are left out: they only refuse hostile archives, never change a row of
    an accepted one, so raising them must not make every stored result stale (retry the
    refused zips with ``mrcohort run --retry-failed``).
    """
    data = asdict(config)
    data.pop("zip_limits", None)
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
