"""Write Dixon stations as a UK Biobank-style field-20201 zip (phantoms and tests only).

The reader of these zips is :mod:`mrcohort.cohort.layouts.ukbb`; the per-slice DICOM files come from
:func:`mrcohort.phantoms.writers.dicom.write_series`.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import SimpleITK as sitk
from pydicom.uid import generate_uid

from mrcohort.cohort.channels import CHANNELS
from mrcohort.ids import validate_participant_id
from mrcohort.io.files import atomic_target
from mrcohort.phantoms.writers.dicom import write_series

__all__ = ["series_description", "write_ukbb_zip"]

#: Suffix written for each channel (as UK Biobank writes it).
_WRITE_SUFFIX: dict[str, str] = {"in": "in", "opp": "opp", "f": "F", "w": "W"}
#: Fixed zip member timestamp, so that the same images give byte-identical zips.
_ZIP_DATE_TIME = (2020, 1, 1, 0, 0, 0)


def series_description(station: int, channel: str, *, breath_hold: bool) -> str:
    """UK Biobank-style series description of one station/channel.

    ``Dixon_BH_17s_<ch>`` for breath-hold stations, ``Dixon_noBH_<ch>`` otherwise, with
    ``<ch>`` one of ``in``, ``opp``, ``F``, ``W``. ``station`` is accepted for symmetry
    and does not appear (as in real UK Biobank data).
    """
    del station
    prefix = "Dixon_BH_17s" if breath_hold else "Dixon_noBH"
    return f"{prefix}_{_WRITE_SUFFIX[channel]}"


def _acquisition_time(station: int, *, start_s: int = 9 * 3600, step_s: int = 90) -> str:
    """DICOM TM of a station's acquisition: ``start_s + station * step_s`` seconds."""
    t = start_s + station * step_s
    return f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}.000000"


def _manifest(rows: list[dict[str, str]]) -> bytes:
    """CSV bytes of the manifest rows."""
    buf = io.StringIO()
    columns = [
        "filename",
        "patientid",
        "studyid",
        "seriesid",
        "seriesnumber",
        "seriesdescription",
        "acquisitiontime",
    ]
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _check_stations(stations: Mapping[str, Sequence[sitk.Image]]) -> int:
    """Validate the channel -> stations mapping; return the number of stations."""
    if set(stations) != set(CHANNELS):
        raise ValueError(f"stations must have the channels {CHANNELS}, got {sorted(stations)}")
    counts = {c: len(stations[c]) for c in CHANNELS}
    if len(set(counts.values())) != 1 or counts[CHANNELS[0]] == 0:
        raise ValueError(f"every channel needs the same, non-zero number of stations: {counts}")
    return counts[CHANNELS[0]]


def write_ukbb_zip(
    zip_path: str | os.PathLike[str],
    *,
    participant_id: str,
    stations: Mapping[str, Sequence[sitk.Image]],
    instance: int = 2,
    breath_hold_stations: tuple[int, ...] = (1, 2),
) -> Path:
    """Write stations as a UK Biobank-style field-20201 zip.

    Parameters
    ----------
    zip_path
        Destination; written atomically (temporary name in the same folder, then
        ``os.replace``). Conventionally ``<eid>_20201_<instance>_0.zip``.
    participant_id
        Written as PatientID; must match ``[A-Za-z0-9_-]+``.
    stations
        Channel (``"in"``, ``"opp"``, ``"w"``, ``"f"``) -> station images, the same number
        for every channel; station ``i`` of every channel is acquired together.
    instance
        UK Biobank instance (visit); enters the UIDs.
    breath_hold_stations
        Station indices described ``Dixon_BH_17s_*``; the others are ``Dixon_noBH_*``.

    Returns
    -------
    Path
        The zip written. Contents: one ``<SOPInstanceUID>.dcm`` per slice (series number
        ``1 + 4 * station + channel index``, acquisition time increasing with station) and
        ``manifest.csv`` (one row per file). Identical inputs give identical bytes.
    """
    validate_participant_id(participant_id)
    n_stations = _check_stations(stations)
    seed = ["mrcohort-ukbb", participant_id, str(instance)]
    study_uid = str(generate_uid(entropy_srcs=[*seed, "study"]))
    frame_uid = str(generate_uid(entropy_srcs=[*seed, "frame"]))

    files: dict[str, bytes] = {}
    rows: list[dict[str, str]] = []
    for s in range(n_stations):
        for ci, channel in enumerate(CHANNELS):
            description = series_description(s, channel, breath_hold=s in breath_hold_stations)
            series_uid = str(generate_uid(entropy_srcs=[*seed, "series", str(s), channel]))
            number = 1 + 4 * s + ci
            time = _acquisition_time(s)
            names = write_series(
                stations[channel][s],
                files,
                series_description=description,
                series_number=number,
                series_uid=series_uid,
                study_uid=study_uid,
                frame_uid=frame_uid,
                participant_id=participant_id,
                acquisition_time=time,
            )
            rows.extend(
                {
                    "filename": n,
                    "patientid": participant_id,
                    "studyid": study_uid,
                    "seriesid": series_uid,
                    "seriesnumber": str(number),
                    "seriesdescription": description,
                    "acquisitiontime": time,
                }
                for n in names
            )
    files["manifest.csv"] = _manifest(rows)
    return _write_zip_atomic(Path(zip_path), files)


def _write_zip_atomic(dest: Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` (name -> bytes) as a deflated zip at ``dest``, atomically."""
    with atomic_target(dest, suffix=".zip") as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compresslevel=1)
    return dest
