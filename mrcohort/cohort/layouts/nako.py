"""NAKO layout: one folder per participant and visit, DICOM and/or NIfTI/MHA/NRRD inside.

Accepted layout (default ``folders: "{participant_id}/{visit}"`` in ``layouts.yaml``)::

    <source>/<participant_id>/<visit>/<any sub-folders>/<files>

* ``participant_id`` and ``visit`` folder names must be valid ids (:mod:`mrcohort.ids`);
  other names are rejected (``BAD_PARTICIPANT_ID``, ``BAD_VISIT``) and never used in a path.
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

import logging
import os
from pathlib import Path

from mrcohort.cohort.layouts.base import Layout, series_station
from mrcohort.cohort.layouts.config import LayoutConfig
from mrcohort.cohort.records import Discovery, ParticipantVisit, Rejected, Station, relative_path
from mrcohort.errors import IngestError
from mrcohort.ids import validate_participant_id, validate_visit
from mrcohort.io.dicom import is_dicom_file, scan_dicom
from mrcohort.io.files import sha256_file
from mrcohort.io.images import image_format, image_stem, read_station_file
from mrcohort.io.tree import permission_denied, walk_files

__all__ = ["NakoLayout"]

log = logging.getLogger(__name__)

#: Folder-template levels that name a participant or a visit, with their validators.
_ID_LEVELS = {"{participant_id}": validate_participant_id, "{visit}": validate_visit}


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


class NakoLayout(Layout):
    """Participant-visit folders (template ``nako.folders``) holding DICOM and image files."""

    name = "nako"

    def discover(self, source: Path, config: LayoutConfig) -> Discovery:
        """Walk the folder template; reject bad folder names and stray files."""
        if not source.is_dir():
            raise IngestError("FILE_NOT_FOUND", f"{source} is not a folder")
        levels = config.folder_levels()
        pvs: list[ParticipantVisit] = []
        rejected: list[Rejected] = []

        def walk(folder: Path, depth: int, found: dict[str, str]) -> None:
            if depth == len(levels):
                pvs.append(
                    ParticipantVisit(
                        layout=self.name,
                        participant_id=found["{participant_id}"],
                        visit=found.get("{visit}", config.default_visit),
                        source=folder,
                        root=source,
                    )
                )
                return
            level = levels[depth]
            pid = found.get("{participant_id}", "")
            try:
                children = sorted(filter(_visible, folder.iterdir()))
            except PermissionError:
                err = permission_denied(folder, source, folder=True)
                rejected.append(Rejected(folder, err.code, err.message, participant_id=pid))
                return
            for child in children:
                if not child.is_dir():
                    rejected.append(
                        Rejected(
                            child,
                            "UNRECOGNISED_FILE",
                            f"{child.relative_to(source)}: a file where the layout "
                            f"{config.folders!r} expects a {level.strip('{}')} folder",
                            participant_id=pid,
                        )
                    )
                elif level in _ID_LEVELS:
                    try:
                        _ID_LEVELS[level](child.name)
                    except IngestError as err:
                        msg = f"folder {child.relative_to(source)}: {err.message}"
                        rejected.append(Rejected(child, err.code, msg, participant_id=pid))
                        continue
                    walk(child, depth + 1, {**found, level: child.name})
                elif child.name == level:
                    walk(child, depth + 1, found)

        walk(source, 0, {})
        pvs.sort(key=lambda pv: (pv.participant_id, pv.visit))
        return Discovery(pvs, rejected)

    def read(self, pv: ParticipantVisit, config: LayoutConfig) -> list[Station]:
        """DICOM series anywhere below the visit folder, and image files."""
        folder = pv.source
        if not folder.is_dir():
            raise IngestError("FILE_NOT_FOUND", f"{folder} does not exist")
        walk = walk_files(folder, pv.root)
        walk.raise_first()  # an unreadable folder or file, a link looping or leaving the source
        files = walk.files
        out: list[Station] = []
        dicom_files: list[Path] = []
        for path in files:
            fmt = image_format(path)
            rel = relative_path(path, pv.root)
            if fmt is None:
                if is_dicom_file(path):
                    dicom_files.append(path)
                else:
                    log.info("%s: ignored %s (not DICOM, not an image file)", pv.label, rel)
                continue
            kind = config.classify(image_stem(path))
            if kind is None:
                log.info("%s: ignored %s (no series rule matches its name)", pv.label, rel)
                continue
            image = read_station_file(path, limits=config.limits, label=rel)
            out.append(Station(image, *kind, rel, fmt, sha256_file(path)))
        if dicom_files:
            out += _dicom_stations(pv, dicom_files, config)
        return out


def _dicom_stations(pv: ParticipantVisit, files: list[Path], config: LayoutConfig) -> list[Station]:
    """The series among ``files`` that the rules select; source = their common folder."""
    scan = scan_dicom(
        files,
        description_filter=lambda d: config.classify(d) is not None,
        max_voxels=config.limits.max_voxels,
        max_axis=config.limits.max_axis,
        max_file_bytes=config.zip_limits.max_member_bytes,
    )
    for name, reason in scan.ignored:
        log.info("%s: ignored %s: %s", pv.label, name, reason)
    out = []
    for series in scan.series:
        kind = config.classify(series.series_description)
        if kind is None:
            continue
        parent = Path(os.path.commonpath([Path(f).parent for f in series.files]))
        source = relative_path(parent, pv.root)
        out.append(series_station(series, *kind, source, config.limits, modality="MR"))
    return out
