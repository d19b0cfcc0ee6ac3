"""A corpus of bad inputs, written by code (nothing binary is checked in): each kind knows its
layout, how to write itself into a source folder, the failure code it must get and a fragment
its message must contain.

Every kind is one input with its own participant id (or folder) so that its failures row can
be told apart: :attr:`Kind.token` occurs in that row's participant id, source or message.
UK Biobank kinds are edits of one small good zip (6 stations x 4 channels of 4 x 5 x 6
voxels); NAKO and manifest kinds are NIfTI stations of 4 x 5 x 6 voxels.
"""

from __future__ import annotations

import functools
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.uid import generate_uid

from mrcohort.cohort.channels import CHANNELS
from tests.builders import (
    description_of,
    encode,
    members_of,
    nifti,
    non_image_object,
    rezip,
    station,
    stations_dict,
    ukbb_zip,
)
from tests.hostile import nifti_with_header, zip_bomb

Row = tuple[str, str, str, str, str, str]


@dataclass(frozen=True)
class Kind:
    """One kind of bad input.

    Attributes
    ----------
    layout
        ``ukbb``, ``nako`` or ``manifest``.
    code
        The failure code it must get.
    fragment
        Text its failures message must contain (what is wrong).
    token
        Text in its failures row (participant id, source or message) naming the input.
    write
        Writes the input into a source folder; returns manifest rows (manifest layout).
    unprivileged
        Run as a non-root user (permissions mean nothing to root).
    """

    layout: str
    code: str
    fragment: str
    token: str
    write: Callable[[Path], list[Row]]
    unprivileged: bool = False


# --------------------------------------------------------------------------- ukbb


@functools.cache
def _good_members() -> dict[str, bytes]:
    """Members of a small complete zip (built once per process)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return members_of(ukbb_zip(Path(tmp), "1000001"))


def _zip_name(eid: str) -> str:
    return f"{eid}_20201_2_0.zip"


def _dicom_names(members: dict[str, bytes], suffix: str) -> list[str]:
    """Members of the series whose description ends in ``suffix`` (e.g. ``_W``)."""
    return sorted(
        n for n, d in members.items() if n.endswith(".dcm") and description_of(d).endswith(suffix)
    )


def _edited(members: dict[str, bytes], names: list[str], edit: Callable[[pydicom.Dataset], None]):
    out = dict(members)
    for name in names:
        ds = pydicom.dcmread(BytesIO(out[name]))
        edit(ds)
        out[name] = encode(ds)
    return out


def _first_station(members: dict[str, bytes], suffix: str) -> list[str]:
    """The slices of the lowest station of one channel."""
    names = _dicom_names(members, suffix)
    uid = {n: str(pydicom.dcmread(BytesIO(members[n])).SeriesInstanceUID) for n in names}
    first = sorted(set(uid.values()))[0]
    return [n for n in names if uid[n] == first]


def _ukbb(eid: str, make: Callable[[], dict[str, bytes] | bytes]) -> Callable[[Path], list[Row]]:
    def write(src: Path) -> list[Row]:
        made = make()
        path = src / _zip_name(eid)
        if isinstance(made, bytes):
            src.mkdir(parents=True, exist_ok=True)
            path.write_bytes(made)
        else:
            rezip(path, made)
        return []

    return write


def _good_bytes() -> bytes:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _good_members().items():
            zf.writestr(name, data)
    return buf.getvalue()


def _truncated_zip() -> bytes:
    data = _good_bytes()
    return data[: len(data) // 2]


def _corrupt_middle() -> bytes:
    data = bytearray(_good_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)  # zeros in the middle of some member's deflate stream
    return bytes(data)


def _with_member(name: str) -> dict[str, bytes]:
    members = dict(_good_members())
    members[name] = members[_dicom_names(members, "_in")[0]]
    return members


def _stations_zip(stations: dict[str, list[sitk.Image]]) -> dict[str, bytes]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return members_of(ukbb_zip(Path(tmp), "1000001", stations=stations))


def _without_series(suffix: str) -> dict[str, bytes]:
    members = dict(_good_members())
    for name in _dicom_names(members, suffix):
        del members[name]
    return members


def _grid_mismatch() -> dict[str, bytes]:
    st = stations_dict(6)
    st["w"][2] = station(2, "w", shape_yx=(7, 6))
    return _stations_zip(st)


def _duplicate_series() -> dict[str, bytes]:
    members = dict(_good_members())
    uid = generate_uid()
    for name in _first_station(members, "_F"):
        ds = pydicom.dcmread(BytesIO(members[name]))
        ds.SeriesInstanceUID = uid
        ds.SeriesNumber = 99
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        members[f"{ds.SOPInstanceUID}.dcm"] = encode(ds)
    return members


def _truncated_dicom() -> dict[str, bytes]:
    members = dict(_good_members())
    name = _dicom_names(members, "_in")[0]
    members[name] = members[name][: len(members[name]) - 40]
    return members


def _bad_preamble() -> dict[str, bytes]:
    members = dict(_good_members())
    name = _dicom_names(members, "_in")[0]
    data = bytearray(members[name])
    data[128:160] = b"JUNK" * 8  # the DICM marker and the start of the file meta
    members[name] = bytes(data)
    return members


def _without_pixels() -> dict[str, bytes]:
    members = dict(_good_members())
    return _edited(members, _dicom_names(members, "_opp")[:1], lambda ds: delattr(ds, "PixelData"))


def _set(**values: object) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        for key, value in values.items():
            setattr(ds, key, value)

    return edit


def _series_edit(suffix: str, **values: object) -> Callable[[], dict[str, bytes]]:
    def make() -> dict[str, bytes]:
        members = dict(_good_members())
        return _edited(members, _first_station(members, suffix), _set(**values))

    return make


def _empty_zip() -> bytes:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.csv", "filename\n")
    return buf.getvalue()


def _bomb(src: Path) -> list[Row]:
    zip_bomb(src / _zip_name("1000103"), declared=2**27)  # 128 MiB of zeros from ~130 kB
    return []


def _duplicate_visit(src: Path) -> list[Row]:
    ukbb_zip(src / "site_a", "1000119")
    ukbb_zip(src / "site_b", "1000119", stations=stations_dict(5))
    return []


def _copy_name(src: Path) -> list[Row]:
    src.mkdir(parents=True, exist_ok=True)
    (src / "1000118_20201_2_0 (1).zip").write_bytes(_good_bytes())  # a browser's second copy
    return []


UKBB_KINDS: dict[str, Kind] = {
    "not_a_zip": Kind(
        "ukbb",
        "NOT_A_ZIP",
        "not a zip",
        "1000101",
        _ukbb("1000101", lambda: b"<html>download failed</html>"),
    ),
    "empty_zip": Kind("ukbb", "EMPTY_ZIP", "no DICOM", "1000102", _ukbb("1000102", _empty_zip)),
    "zip_bomb": Kind("ukbb", "ZIP_TOO_LARGE", "limit", "1000103", _bomb),
    "member_traversal": Kind(
        "ukbb",
        "ZIP_UNSAFE_NAME",
        "../../evil.dcm",
        "1000104",
        _ukbb("1000104", lambda: _with_member("../../evil.dcm")),
    ),
    "member_absolute": Kind(
        "ukbb",
        "ZIP_UNSAFE_NAME",
        "/tmp/evil.dcm",
        "1000105",
        _ukbb("1000105", lambda: _with_member("/tmp/evil.dcm")),
    ),
    "truncated_zip": Kind(
        "ukbb", "NOT_A_ZIP", "truncated", "1000106", _ukbb("1000106", _truncated_zip)
    ),
    "corrupt_middle": Kind(
        "ukbb",
        "ZIP_CORRUPT",
        ".dcm: File name in directory",
        "1000107",
        _ukbb("1000107", _corrupt_middle),
    ),
    "missing_station": Kind(
        "ukbb",
        "STATION_GAP",
        "gap of 6.0 mm after station 2",
        "1000108",
        _ukbb("1000108", lambda: _stations_zip(stations_dict([0, 1, 3, 4, 5]))),
    ),
    "missing_channel": Kind(
        "ukbb",
        "MISSING_CHANNEL",
        "channel(s) f",
        "1000109",
        _ukbb("1000109", lambda: _without_series("_F")),
    ),
    "duplicate_series": Kind(
        "ukbb",
        "DUPLICATE_SERIES",
        "dixon f: two series",
        "1000110",
        _ukbb("1000110", _duplicate_series),
    ),
    "truncated_dicom": Kind(
        "ukbb",
        "DICOM_UNREADABLE",
        ".dcm: truncated file",
        "1000111",
        _ukbb("1000111", _truncated_dicom),
    ),
    "dicom_bad_preamble": Kind(
        "ukbb",
        "DICOM_UNREADABLE",
        "'DICM' prefix is missing",
        "1000112",
        _ukbb("1000112", _bad_preamble),
    ),
    "dicom_no_pixels": Kind(
        "ukbb", "DICOM_UNREADABLE", "pixel data", "1000113", _ukbb("1000113", _without_pixels)
    ),
    "wrong_modality": Kind(
        "ukbb",
        "WRONG_MODALITY",
        "CT",
        "1000114",
        _ukbb("1000114", _series_edit("_W", Modality="CT")),
    ),
    "dicom_zero_spacing": Kind(
        "ukbb",
        "BAD_SPACING",
        "PixelSpacing",
        "1000115",
        _ukbb("1000115", _series_edit("_in", PixelSpacing=[0.0, 0.0])),
    ),
    "dicom_sheared": Kind(
        "ukbb",
        "BAD_DIRECTION",
        "ImageOrientationPatient",
        "1000116",
        _ukbb("1000116", _series_edit("_in", ImageOrientationPatient=[1, 0, 0, 0.6, 0.8, 0])),
    ),
    "grid_mismatch": Kind(
        "ukbb",
        "GRID_MISMATCH",
        "station 3: channel 'w'",
        "1000117",
        _ukbb("1000117", _grid_mismatch),
    ),
    "unrecognised_name": Kind("ukbb", "UNRECOGNISED_FILE", "(1).zip", "1000118", _copy_name),
    "duplicate_visit": Kind(
        "ukbb", "DUPLICATE_VISIT", "site_b/1000119_20201_2_0.zip", "1000119", _duplicate_visit
    ),
}


def _unreadable_zip(src: Path) -> list[Row]:
    rezip(src / _zip_name("1000121"), _good_members()).chmod(0)
    return []


def _unreadable_ukbb_folder(src: Path) -> list[Row]:
    folder = src / "batch_1000122"
    rezip(folder / _zip_name("1000122"), _good_members())
    folder.chmod(0)
    return []


UKBB_KINDS |= {
    "unreadable_zip": Kind(
        "ukbb", "PERMISSION_DENIED", "not readable", "1000121", _unreadable_zip, unprivileged=True
    ),
    "unreadable_ukbb_folder": Kind(
        "ukbb",
        "PERMISSION_DENIED",
        "folder not readable",
        "batch_1000122",
        _unreadable_ukbb_folder,
        unprivileged=True,
    ),
}

#: Good UK Biobank participants written beside the bad ones.
UKBB_GOOD = ("1000001", "1000002")


def write_good_ukbb(src: Path) -> None:
    for eid in UKBB_GOOD:
        rezip(src / _zip_name(eid), _good_members())


# --------------------------------------------------------------------------- nifti stations


def _volume(index: int, channel: str, dtype=np.float32) -> np.ndarray:
    return sitk.GetArrayFromImage(station(index, channel)).astype(dtype)


def _station_file(path: Path, index: int, channel: str, arr: np.ndarray | None = None) -> Path:
    """A NIfTI station ``index`` of ``channel`` (the small random ones of the zips)."""
    img = station(index, channel)
    if arr is not None:
        out = sitk.GetImageFromArray(arr)
        if arr.ndim == 3:
            out.CopyInformation(img)
        img = out
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path


def _nako_visit(src: Path, pid: str, n_stations: int = 3) -> Path:
    visit = src / pid / "1"
    for ch in CHANNELS:
        for s in range(n_stations):
            _station_file(visit / f"dixon_{ch}_s{s + 1}.nii.gz", s, ch)
    return visit


def _nako(pid: str, then: Callable[[Path], object] = lambda v: None) -> Callable[[Path], list[Row]]:
    def write(src: Path) -> list[Row]:
        then(_nako_visit(src, pid))
        return []

    return write


def _nan_station(visit: Path) -> None:
    arr = _volume(0, "in")
    arr[1, 2, 3] = np.nan
    _station_file(visit / "dixon_in_s1.nii.gz", 0, "in", arr)


def _outside_link(visit: Path) -> None:
    outside = visit.parents[2] / "outside"
    target = _station_file(outside / "dixon_f_s1.nii.gz", 0, "f")
    (visit / "dixon_f_s1.nii.gz").unlink()
    os.symlink(target, visit / "dixon_f_s1.nii.gz")


def _loop(visit: Path) -> None:
    (visit / "dixon_w_s1.nii.gz").unlink()
    os.symlink("loop_b.nii.gz", visit / "loop_a.nii.gz")
    os.symlink("loop_a.nii.gz", visit / "loop_b.nii.gz")
    os.symlink("dixon_w_s1.nii.gz", visit / "dixon_w_s1.nii.gz")


def _unreadable_file(visit: Path) -> None:
    (visit / "dixon_opp_s2.nii.gz").chmod(0)


def _unreadable_folder(visit: Path) -> None:
    sub = visit / "series_7"
    sub.mkdir()
    (visit / "dixon_opp_s3.nii.gz").rename(sub / "dixon_opp_s3.nii.gz")
    sub.chmod(0)


def _unreadable_participant(src: Path) -> list[Row]:
    _nako_visit(src, "N2023")
    (src / "N2023").chmod(0)
    return []


def _stray_file(src: Path) -> list[Row]:
    src.mkdir(parents=True, exist_ok=True)
    (src / "N2011_notes.txt").write_text("not a participant folder")
    return []


def _bad_folder(name: str) -> Callable[[Path], list[Row]]:
    def write(src: Path) -> list[Row]:
        _nako_visit(src, name)
        return []

    return write


def _bad_visit(src: Path) -> list[Row]:
    visit = _nako_visit(src, "N2013")
    visit.rename(visit.parent / "v 1")
    return []


NAKO_KINDS: dict[str, Kind] = {
    "nako_nan_voxels": Kind(
        "nako", "NONFINITE_VOXELS", "dixon_in_s1.nii.gz", "N2001", _nako("N2001", _nan_station)
    ),
    "symlink_outside_source": Kind(
        "nako",
        "SYMLINK_OUTSIDE_SOURCE",
        "dixon_f_s1.nii.gz",
        "N2002",
        _nako("N2002", _outside_link),
    ),
    "symlink_loop": Kind(
        "nako", "SYMLINK_LOOP", "dixon_w_s1.nii.gz", "N2003", _nako("N2003", _loop)
    ),
    "bad_id_dot": Kind("nako", "BAD_PARTICIPANT_ID", "N2004.1", "N2004.1", _bad_folder("N2004.1")),
    "bad_id_space": Kind(
        "nako", "BAD_PARTICIPANT_ID", "N2005 b", "N2005 b", _bad_folder("N2005 b")
    ),
    "bad_visit": Kind("nako", "BAD_VISIT", "v 1", "N2013", _bad_visit),
    "stray_file": Kind(
        "nako", "UNRECOGNISED_FILE", "N2011_notes.txt", "N2011_notes.txt", _stray_file
    ),
    "unreadable_file": Kind(
        "nako",
        "PERMISSION_DENIED",
        "dixon_opp_s2.nii.gz",
        "N2021",
        _nako("N2021", _unreadable_file),
        unprivileged=True,
    ),
    "unreadable_folder": Kind(
        "nako",
        "PERMISSION_DENIED",
        "series_7",
        "N2022",
        _nako("N2022", _unreadable_folder),
        unprivileged=True,
    ),
    "unreadable_participant_folder": Kind(
        "nako",
        "PERMISSION_DENIED",
        "folder not readable",
        "N2023",
        _unreadable_participant,
        unprivileged=True,
    ),
}

NAKO_GOOD = ("N1001", "N1002")


def write_good_nako(src: Path) -> None:
    for pid in NAKO_GOOD:
        _nako_visit(src, pid)


# --------------------------------------------------------------------------- manifest


def _rows(pid: str, src: Path, bad: str | None = None, path: str | None = None) -> list[Row]:
    """Rows of a 3-station Dixon visit of ``pid``; channel ``bad`` (station 1) at ``path``."""
    rows: list[Row] = []
    for ch in CHANNELS:
        for s in range(3):
            rel = f"{pid}/{ch}_{s + 1}.nii.gz"
            if ch == bad and s == 0:
                rel = path or rel
            else:
                _station_file(src / rel, s, ch)
            rows.append((pid, "base", "dixon", ch, str(s + 1), rel))
    return rows


def _manifest(pid: str, make: Callable[[Path], str] | None = None) -> Callable[[Path], list[Row]]:
    def write(src: Path) -> list[Row]:
        return _rows(pid, src, "in", make(src / pid) if make else None)

    return write


def _missing(folder: Path) -> str:
    return f"{folder.name}/gone_in_1.nii.gz"


def _array_file(arr: np.ndarray, name: str) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        nifti(folder / name, arr)
        return f"{folder.name}/{name}"

    return make


def _header_file(name: str, **fields: object) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        nifti_with_header(folder / name, **fields)  # type: ignore[arg-type]
        return f"{folder.name}/{name}"

    return make


def _four_d(folder: Path) -> str:
    """Two volumes of 4 x 5 x 6 voxels as one 4-D image (not a vector image)."""
    img = sitk.GetImageFromArray(np.ones((2, 4, 5, 6), np.float32), isVector=False)
    folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(folder / "time_in_1.nii.gz"))
    return f"{folder.name}/time_in_1.nii.gz"


def _inf_file(folder: Path) -> str:
    arr = _volume(0, "in")
    arr[0, 0, 0] = np.inf
    return _array_file(arr, "inf_in_1.nii.gz")(folder)


def _sr_file(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.dcm").write_bytes(non_image_object("sr"))
    return f"{folder.name}/report.dcm"


def _bad_id(pid: str) -> Callable[[Path], list[Row]]:
    def write(src: Path) -> list[Row]:
        return [(pid, "base", "dixon", "in", "1", "M2099/in_1.nii.gz")]

    return write


_SHEARED = np.array([[2.0, 1.0, 0, 0], [0, 2.0, 0, 0], [0, 0, 3.0, 0]])

MANIFEST_KINDS: dict[str, Kind] = {
    "manifest_missing_file": Kind(
        "manifest", "FILE_NOT_FOUND", "gone_in_1.nii.gz", "M2001", _manifest("M2001", _missing)
    ),
    "image_2d": Kind(
        "manifest",
        "BAD_DIMENSION",
        "flat_in_1.nii.gz",
        "M2002",
        _manifest("M2002", _array_file(np.ones((5, 6), np.float32), "flat_in_1.nii.gz")),
    ),
    "image_4d": Kind(
        "manifest", "BAD_DIMENSION", "time_in_1.nii.gz", "M2003", _manifest("M2003", _four_d)
    ),
    "nifti_zero_spacing": Kind(
        "manifest",
        "BAD_SPACING",
        "zero_in_1.nii",
        "M2004",
        _manifest("M2004", _header_file("zero_in_1.nii", pixdim=(2.0, 0.0, 3.0))),
    ),
    "nifti_sheared": Kind(
        "manifest",
        "BAD_DIRECTION",
        "shear_in_1.nii",
        "M2005",
        _manifest("M2005", _header_file("shear_in_1.nii", srow=_SHEARED)),
    ),
    "inf_voxels": Kind(
        "manifest", "NONFINITE_VOXELS", "inf_in_1.nii.gz", "M2006", _manifest("M2006", _inf_file)
    ),
    "not_an_image": Kind(
        "manifest", "NOT_AN_IMAGE", "report.dcm", "M2007", _manifest("M2007", _sr_file)
    ),
    "bad_id_slash": Kind(
        "manifest", "BAD_PARTICIPANT_ID", "M2010/x", "M2010/x", _bad_id("M2010/x")
    ),
    "bad_id_dotdot": Kind("manifest", "BAD_PARTICIPANT_ID", "'..'", "'..'", _bad_id("..")),
    "bad_id_spaces": Kind(
        "manifest", "BAD_PARTICIPANT_ID", "M2012 y", "M2012 y", _bad_id("M2012 y")
    ),
}

MANIFEST_GOOD = ("M1001", "M1002")


def write_good_manifest(src: Path) -> list[Row]:
    return [r for pid in MANIFEST_GOOD for r in _rows(pid, src)]


#: Every kind, by name.
KINDS: dict[str, Kind] = UKBB_KINDS | NAKO_KINDS | MANIFEST_KINDS
