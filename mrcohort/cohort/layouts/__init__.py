"""Cohort layouts: a registry of the layouts mrcohort reads, one module per layout.

Each :class:`~mrcohort.cohort.layouts.base.Layout` discovers participant-visits and reads
their stations; its settings come from ``layouts.yaml`` (:func:`load_layout`)::

    found = discover("ukbb", "/data/20201")          # Discovery(pvs, rejected)
    stations = get_layout("ukbb").read(found.pvs[0], load_layout("ukbb"))

Loading and checking a participant-visit is :func:`mrcohort.cohort.load.load_visit`.
"""

from __future__ import annotations

import os
from pathlib import Path

from mrcohort.cohort.layouts.base import Layout
from mrcohort.cohort.layouts.config import LayoutConfig, SeriesRule, load_layout
from mrcohort.cohort.layouts.manifest import ManifestLayout
from mrcohort.cohort.layouts.nako import NakoLayout
from mrcohort.cohort.layouts.ukbb import UkbbLayout
from mrcohort.cohort.records import Discovery

__all__ = [
    "LAYOUTS",
    "Layout",
    "LayoutConfig",
    "SeriesRule",
    "discover",
    "get_layout",
    "load_layout",
]

#: The layouts mrcohort can read, by name.
LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (UkbbLayout(), NakoLayout(), ManifestLayout())
}


def get_layout(name: str) -> Layout:
    """The layout called ``name``.

    Raises
    ------
    ValueError
        Unknown layout.
    """
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}") from None


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
        Layout settings; default :func:`load_layout` ``(layout)``.

    Returns
    -------
    Discovery
        ``(pvs, rejected)``: participant-visits to load (sorted by participant, visit)
        and inputs that cannot be, each with a failure code.

    Raises
    ------
    IngestError
        ``FILE_NOT_FOUND`` (no such folder / manifest), ``BAD_MANIFEST``.
    ValueError
        Unknown layout, or ``config`` of another layout.
    """
    impl = get_layout(layout)
    config = config or load_layout(layout)
    if config.name != layout:
        raise ValueError(f"config is for layout {config.name!r}, not {layout!r}")
    return impl.discover(Path(source), config)
