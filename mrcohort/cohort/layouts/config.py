"""Layout settings (series-description patterns, folder layout, size limits) from YAML.

The defaults live in ``layouts.yaml`` beside this module; a user file given to
:func:`load_layout` replaces whole top-level keys of it (precedence: user file > defaults).
Nothing is read at import time. The layouts themselves are :mod:`mrcohort.cohort.layouts`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mrcohort.ids import check_name
from mrcohort.io.images import Limits
from mrcohort.io.zips import ZipLimits

__all__ = ["IGNORE", "LayoutConfig", "SeriesRule", "load_layout"]

#: Sequence/channel value of a rule that drops the series it matches.
IGNORE = "ignore"


@dataclass(frozen=True)
class SeriesRule:
    """Map series descriptions (or file-name stems) matching ``pattern`` to a channel."""

    pattern: re.Pattern[str]
    sequence: str
    channel: str


@dataclass(frozen=True)
class LayoutConfig:
    """Settings of one layout.

    Attributes
    ----------
    name
        ``ukbb``, ``nako`` or ``manifest``.
    rules
        Series rules, first match wins.
    expected_stations
        ``(sequence, number)`` pairs: stations a complete acquisition has (the ``scans``
        table reports it next to the number found); see :meth:`expected`.
    folders
        Folder template below the source, e.g. ``{participant_id}/{visit}`` (nako only).
    default_visit
        Visit when ``folders`` has no ``{visit}``.
    require_manifest
        ukbb: a zip without ``manifest.csv`` is a failure.
    limits
        Largest image accepted.
    zip_limits
        Largest zip accepted (ukbb), checked from its central directory.
    """

    name: str
    rules: tuple[SeriesRule, ...] = ()
    expected_stations: tuple[tuple[str, int], ...] = ()
    folders: str = "{participant_id}/{visit}"
    default_visit: str = "1"
    require_manifest: bool = True
    limits: Limits = field(default_factory=Limits)
    zip_limits: ZipLimits = field(default_factory=ZipLimits)

    def classify(self, description: str) -> tuple[str, str] | None:
        """``(sequence, channel)`` of the first rule matching ``description``.

        Returns ``None`` when no rule matches or the matching rule says ``ignore``.
        """
        for rule in self.rules:
            if rule.pattern.search(description.strip()):
                if IGNORE in (rule.sequence, rule.channel):
                    return None
                return rule.sequence, rule.channel
        return None

    def expected(self, sequence: str) -> int | None:
        """Stations a complete acquisition of ``sequence`` has; ``None`` if not known."""
        return dict(self.expected_stations).get(sequence)

    def folder_levels(self) -> tuple[str, ...]:
        """The ``folders`` template split into path levels."""
        return tuple(p for p in self.folders.strip("/").split("/") if p)


def _defaults() -> dict[str, Any]:
    text = resources.files("mrcohort.cohort.layouts").joinpath("layouts.yaml").read_text("utf-8")
    return dict(yaml.safe_load(text))


def _rule(raw: Mapping[str, Any], where: str) -> SeriesRule:
    try:
        pattern = re.compile(str(raw["pattern"]))
        sequence, channel = str(raw["sequence"]), str(raw["channel"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where}: a rule needs pattern, sequence and channel") from exc
    except re.error as exc:
        raise ValueError(f"{where}: bad pattern {raw.get('pattern')!r}: {exc}") from exc
    check_name(sequence, f"{where}: sequence")
    check_name(channel, f"{where}: channel")
    return SeriesRule(pattern, sequence, channel)


def load_layout(name: str, path: str | os.PathLike[str] | None = None) -> LayoutConfig:
    """Settings of layout ``name`` from the defaults, overridden by the file at ``path``.

    Parameters
    ----------
    name
        A layout of :data:`mrcohort.cohort.layouts.LAYOUTS`.
    path
        Optional YAML file with the same structure as the defaults (``layouts.yaml``).

    Raises
    ------
    ValueError
        Unknown layout or malformed settings.
    """
    from mrcohort.cohort.layouts import get_layout  # the registry imports this module

    get_layout(name)  # unknown layout: ValueError
    data = _defaults()
    if path is not None:
        user = yaml.safe_load(Path(path).read_text("utf-8")) or {}
        if not isinstance(user, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        data.update(user)
    raw = data.get(name) or {}
    limits, zip_limits = _limits(data.get("limits") or {})
    rules = tuple(_rule(r, f"{name}.series[{i}]") for i, r in enumerate(raw.get("series") or []))
    expected = tuple(
        sorted((str(k), int(v)) for k, v in (raw.get("expected_stations") or {}).items())
    )
    config = LayoutConfig(
        name=name,
        rules=rules,
        expected_stations=expected,
        folders=str(raw.get("folders", LayoutConfig.folders)),
        default_visit=str(raw.get("default_visit", LayoutConfig.default_visit)),
        require_manifest=bool(raw.get("require_manifest", True)),
        limits=limits,
        zip_limits=zip_limits,
    )
    levels = config.folder_levels()
    if name == "nako" and (
        "{participant_id}" not in levels or any("{" in p and p not in _LEVELS for p in levels)
    ):
        raise ValueError(
            f"nako.folders {config.folders!r}: levels must be literal names, "
            "{participant_id} (required) or {visit}"
        )
    return config


_LEVELS = ("{participant_id}", "{visit}")
_MIB = 2**20
_LIMIT_KEYS = (
    "max_voxels",
    "max_axis",
    "max_member_mb",
    "max_archive_mb",
    "max_compression_ratio",
    "max_members",
)


def _limits(raw: Mapping[str, Any]) -> tuple[Limits, ZipLimits]:
    """The image and zip limits of the ``limits`` block (each a positive number)."""
    if not isinstance(raw, Mapping):
        raise ValueError("limits: expected a mapping")
    unknown = sorted(set(raw) - set(_LIMIT_KEYS))
    if unknown:
        raise ValueError(f"limits: unknown key(s) {', '.join(map(str, unknown))}")
    values: dict[str, float] = {}
    for key in _LIMIT_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"limits.{key}: {value!r} is not a positive number")
        values[key] = value
    zips = ZipLimits()
    return (
        Limits(
            max_voxels=int(values.get("max_voxels", Limits.max_voxels)),
            max_axis=int(values.get("max_axis", Limits.max_axis)),
        ),
        ZipLimits(
            max_member_bytes=int(values.get("max_member_mb", zips.max_member_bytes / _MIB) * _MIB),
            max_archive_bytes=int(
                values.get("max_archive_mb", zips.max_archive_bytes / _MIB) * _MIB
            ),
            max_compression_ratio=float(
                values.get("max_compression_ratio", zips.max_compression_ratio)
            ),
            max_members=int(values.get("max_members", zips.max_members)),
        ),
    )
