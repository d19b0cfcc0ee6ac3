"""NAKO layout: one folder per participant and visit, DICOM and/or NIfTI/MHA/NRRD inside.

Accepted layout (default ``folders: "{participant_id}/{visit}"`` in ``layouts.yaml``)::

    <source>/<participant_id>/<visit>/<any sub-folders>/<files>

* ``participant_id`` and ``visit`` folder names must match ``[A-Za-z0-9_-]+``; other
  names are rejected (``BAD_PARTICIPANT_ID``, ``BAD_VISIT``) and never used in a path.
* Below the visit folder, any DICOM files (any names, any depth; recognised by their
  ``DICM`` preamble) are grouped into series by SeriesInstanceUID; image files
  (``.nii``, ``.nii.gz``, ``.mha``, ``.mhd``, ``.nrrd``, ``.nhdr``) are one station each.
* A series (description) or file (name without extension) is mapped to sequence and
  channel by the ``nako.series`` rules: by default Dixon ``in``/``opp``/``w``/``f`` from
  Siemens-style suffixes (``..._in``, ``..._opp``, ``..._W``, ``..._F``) and T2 HASTE
  (``haste`` anywhere); ``composed`` (scanner-stitched) series are ignored.
* Stations are ordered by position along the body, never by name or number.

With ``folders: "{participant_id}"`` the visit level is dropped and every participant
gets ``default_visit``. Files lying above the visit level are reported as
``UNRECOGNISED_FILE``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mrcohort.cohort.layouts import LayoutConfig
from mrcohort.cohort.records import Discovery, ParticipantVisit, Rejected
from mrcohort.errors import IngestError

__all__ = ["discover_nako"]

_ID_RE = re.compile(r"[A-Za-z0-9_-]+")


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def discover_nako(source: str | os.PathLike[str], config: LayoutConfig) -> Discovery:
    """Find the participant-visit folders of a NAKO-layout cohort.

    Parameters
    ----------
    source
        The cohort folder.
    config
        The ``nako`` layout settings (folder template).

    Returns
    -------
    Discovery
        Groups sorted by participant and visit; rejected folders and stray files.

    Raises
    ------
    IngestError
        ``FILE_NOT_FOUND`` when ``source`` is not a folder.
    """
    root = Path(source)
    if not root.is_dir():
        raise IngestError("FILE_NOT_FOUND", f"{root} is not a folder")
    levels = config.folder_levels()
    groups: list[ParticipantVisit] = []
    rejected: list[Rejected] = []

    def walk(folder: Path, depth: int, found: dict[str, str]) -> None:
        if depth == len(levels):
            groups.append(
                ParticipantVisit(
                    layout=config.name,
                    participant_id=found["{participant_id}"],
                    visit=found.get("{visit}", config.default_visit),
                    source=folder,
                    root=root,
                )
            )
            return
        level = levels[depth]
        for child in sorted(filter(_visible, folder.iterdir())):
            if not child.is_dir():
                rejected.append(
                    Rejected(
                        child,
                        "UNRECOGNISED_FILE",
                        f"{child.relative_to(root)}: a file where the layout "
                        f"{config.folders!r} expects a {level.strip('{}')} folder",
                        participant_id=found.get("{participant_id}", ""),
                    )
                )
                continue
            name = child.name
            if level in ("{participant_id}", "{visit}"):
                if not _ID_RE.fullmatch(name):
                    code = "BAD_PARTICIPANT_ID" if level == "{participant_id}" else "BAD_VISIT"
                    rejected.append(
                        Rejected(
                            child,
                            code,
                            f"folder name {name!r} is not [A-Za-z0-9_-]+ ({level.strip('{}')})",
                            participant_id=found.get("{participant_id}", ""),
                        )
                    )
                    continue
                walk(child, depth + 1, {**found, level: name})
            elif name == level:
                walk(child, depth + 1, found)

    walk(root, 0, {})
    groups.sort(key=lambda g: (g.participant_id, g.visit))
    return Discovery(groups, rejected)
