"""Load one participant-visit in any layout: read its stations, group, order and check them.

::

    found = discover("ukbb", "/data/20201")          # Discovery(pvs, rejected)
    for pv in found.pvs:
        visit = load_visit(pv)                         # LoadedVisit
        stations = visit.images("dixon")               # channel -> stations, lowest first
        sha = visit.input_sha256

The job that writes the ``scans`` table from this is :mod:`mrcohort.jobs.scans`.

Checks per sequence after reading (a failing sequence keeps its ``scans`` rows, marked
``usable = false``, and gets one failure row; the other sequences of the visit go on):

* ``MISSING_CHANNEL`` (Dixon without one of in/opp/w/f), ``DUPLICATE_SERIES`` (two series of
  one channel at one station), ``STATION_MISMATCH`` (channels with different station
  counts), ``GRID_MISMATCH`` / ``STATION_GAP`` (what
  :func:`~mrcohort.cohort.channels.check_channels` finds). A station missing at either end
  is not an error: the ``scans`` table shows ``n_stations`` below ``stations_expected``.

Stations are ordered along the stacking axis (:func:`~mrcohort.cohort.geometry.
station_order`); stations whose headers all share one position are ordered by their
manifest station numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import SimpleITK as sitk

from mrcohort.cohort.channels import CHANNELS, canonical_order, check_channels
from mrcohort.cohort.geometry import centre, extent_along, stacking_axis, station_order
from mrcohort.cohort.layouts import LayoutConfig, get_layout, load_layout
from mrcohort.cohort.placement import lacks_positions
from mrcohort.cohort.records import ParticipantVisit, Station
from mrcohort.errors import IngestError, MrcohortError

__all__ = ["LoadedVisit", "load_visit"]


@dataclass
class LoadedVisit:
    """What :func:`load_visit` read for one participant-visit.

    Attributes
    ----------
    pv
        The participant-visit.
    input_sha256
        ukbb: sha256 of the zip; other layouts: sha256 of the lines
        ``<sequence>/<channel>/<source>:<content_sha256>`` of every station, sorted
        (:meth:`~mrcohort.cohort.layouts.base.Layout.input_sha256`).
    sequences
        Sequence -> channel -> stations ordered along the body (lowest first). Holds every
        sequence read, usable or not.
    errors
        Sequence -> why it cannot be stitched (absent when usable).
    """

    pv: ParticipantVisit
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
                f"{self.pv.label}: no {sequence} series (found: {found})",
            )
        return {c: [s.image for s in v] for c, v in self.sequences[sequence].items()}


def load_visit(
    pv: ParticipantVisit,
    *,
    config: LayoutConfig | None = None,
    input_sha256: str | None = None,
) -> LoadedVisit:
    """Read every station of one participant-visit and check each sequence.

    Parameters
    ----------
    pv
        From :func:`~mrcohort.cohort.layouts.discover`.
    config
        Layout settings; default ``load_layout(pv.layout)``.
    input_sha256
        The input's hash when the caller has it already
        (:meth:`~mrcohort.cohort.layouts.base.Layout.file_sha256`): not computed again.

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
    config = config or load_layout(pv.layout)
    layout = get_layout(pv.layout)
    stations = layout.read(pv, config)
    input_sha = input_sha256 or layout.input_sha256(pv, stations)
    if not stations:
        raise IngestError("NO_IMAGES", f"{pv.label}: no image series matched the layout")
    sequences, errors = _assemble(stations, pv.label)
    return LoadedVisit(pv, input_sha, sequences, errors)


def _order(stations: list[Station], label: str) -> list[Station]:
    """One channel's stations along the body (by position; by manifest station number when
    the headers put them all at the same place).

    Raises ``DUPLICATE_SERIES`` when two stations' centres are closer along the stack than
    half the smaller one's extent (the same station acquired twice), or when stations
    without positions lack distinct station numbers.
    """
    images = [s.image for s in stations]
    if lacks_positions(images):
        hints = [s.station_hint for s in stations]
        if None in hints or len(set(hints)) != len(hints):
            raise IngestError(
                "DUPLICATE_SERIES",
                f"{label}: {len(images)} series at the same position and no distinct "
                "station numbers",
            )
        return sorted(stations, key=lambda s: s.station_hint)  # type: ignore[arg-type,return-value]
    axis = stacking_axis(images)
    order = station_order(images, axis)
    for i, j in itertools.pairwise(order):
        t_low, t_high = float(centre(images[i]) @ axis), float(centre(images[j]) @ axis)
        half = 0.5 * min(_length(images[i], axis), _length(images[j], axis))
        if t_high - t_low <= half:
            raise IngestError(
                "DUPLICATE_SERIES",
                f"{label}: two series at {t_low:.1f} and {t_high:.1f} mm along the stack "
                "(same station twice?)",
            )
    return [stations[i] for i in order]


def _length(img: sitk.Image, axis) -> float:
    lo, hi = extent_along(img, axis)
    return hi - lo


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
        names = canonical_order(channels)
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
