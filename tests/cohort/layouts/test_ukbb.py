"""Tests for mrcohort.cohort.layouts.ukbb: field-20201 names, discovery, zip checks, reading;
and the zips the phantom writer makes."""

from __future__ import annotations

import hashlib
import tracemalloc
import zipfile
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from mrcohort.cohort.channels import CHANNELS
from mrcohort.cohort.layouts import discover, get_layout, load_layout
from mrcohort.cohort.layouts.ukbb import UkbbZip, parse_ukbb_name, read_manifest_names
from mrcohort.cohort.records import ParticipantVisit, Station
from mrcohort.errors import IngestError
from mrcohort.ids import validate_participant_id
from mrcohort.io.zips import ZipLimits
from mrcohort.phantoms.writers.ukbb import write_ukbb_zip
from tests.builders import (
    N_STATIONS,
    description_of,
    dicom_series,
    members_of,
    rezip,
    station,
    stations_dict,
    zip_visit,
)
from tests.hostile import lying_zip, with_entry_count, zip_bomb


def read(path: Path, **settings: object) -> list[Station]:
    """Stations the ukbb layout reads from one zip (layout settings changed by ``settings``)."""
    config = replace(load_layout("ukbb"), **settings)
    return get_layout("ukbb").read(zip_visit(path), config)


def code_of(path: Path, **settings: object) -> str:
    """Code of the IngestError that reading the zip raises."""
    with pytest.raises(IngestError) as info:
        read(path, **settings)
    assert info.value.stage == "ingest"
    return info.value.code


def descriptions(members: dict[str, bytes]) -> dict[str, str]:
    """File name -> SeriesDescription for the DICOM members."""
    return {n: description_of(d) for n, d in members.items() if n.endswith(".dcm")}


# --------------------------------------------------------------------------- names, discovery


def test_parse_ukbb_name(tmp_path: Path) -> None:
    path = tmp_path / "1000001_20201_2_0.zip"
    assert parse_ukbb_name(path) == UkbbZip("1000001", "2_0", 2, 0, path)
    reasons = {
        "1000003_20204_2_0.zip": "field 20204",
        "abc_20201_2_0.zip": "not all digits",
        "1000004_20201_0_0.zip": "instance 0",
        "1000005_20201_2.zip": "name is not",
        "readme.txt": "not a .zip",
        ".tmp-123.zip": "hidden",
    }
    for name, fragment in reasons.items():
        assert fragment in parse_ukbb_name(tmp_path / name), name  # type: ignore[operator]


def test_discover(tmp_path: Path) -> None:
    for name in ("1000002_20201_2_0.zip", "1000001_20201_3_0.zip", "1000001_20201_2_0.zip"):
        (tmp_path / name).write_bytes(b"zip")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "1000001_20201_2_0.zip").write_bytes(b"zip")  # identical copy: read once
    (tmp_path / "sub" / "1000002_20201_2_0.zip").write_bytes(b"other")  # different: rejected
    unrecognised = {
        "1000003_20204_2_0.zip": "field 20204",
        "abc_20201_2_0.zip": "not all digits",
        "1000004_20201_0_0.zip": "instance 0",
        "1000005_20201_2.zip": "name is not",
    }
    for name in [*unrecognised, "readme.txt", ".tmp-123.zip", "truth.csv"]:
        (tmp_path / name).write_bytes(b"")
    pvs, rejected = discover("ukbb", tmp_path)
    assert pvs == [
        ParticipantVisit("ukbb", "1000001", "2_0", tmp_path / "1000001_20201_2_0.zip", tmp_path),
        ParticipantVisit("ukbb", "1000001", "3_0", tmp_path / "1000001_20201_3_0.zip", tmp_path),
    ]
    by_file = {r.source.relative_to(tmp_path).as_posix(): r for r in rejected}
    assert set(by_file) == {*unrecognised, "1000002_20201_2_0.zip"}  # other files: not looked at
    for name, fragment in unrecognised.items():
        assert by_file[name].code == "UNRECOGNISED_FILE" and fragment in by_file[name].message
        assert by_file[name].participant_id == ""
    dup = by_file["1000002_20201_2_0.zip"]
    assert (dup.code, dup.participant_id, dup.visit) == ("DUPLICATE_VISIT", "1000002", "2_0")
    assert "sub/1000002_20201_2_0.zip" in dup.message


def test_discovered_visit_reads_with_the_zip_as_input_hash(tmp_path: Path, good_zip: Path) -> None:
    (tmp_path / good_zip.name).write_bytes(good_zip.read_bytes())
    (pv,) = discover("ukbb", tmp_path).pvs
    layout = get_layout("ukbb")
    stations = layout.read(pv, load_layout("ukbb"))
    assert len(stations) == N_STATIONS * len(CHANNELS)
    assert {s.source for s in stations} == {good_zip.name}
    assert {(s.format, s.modality, s.sequence) for s in stations} == {("dicom", "MR", "dixon")}
    digest = hashlib.sha256(good_zip.read_bytes()).hexdigest()
    assert layout.input_sha256(pv, stations) == digest


# --------------------------------------------------------------------------- zip checks


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "1000001_20201_2_0.zip"
    path.write_text("not a zip")
    assert code_of(path) == "NOT_A_ZIP"


def test_missing_file(tmp_path: Path) -> None:
    assert code_of(tmp_path / "nope.zip") == "FILE_NOT_FOUND"


def test_empty_zip(tmp_path: Path, good_zip: Path) -> None:
    assert code_of(rezip(tmp_path / "e.zip", {})) == "EMPTY_ZIP"
    manifest_only = {"manifest.csv": members_of(good_zip)["manifest.csv"]}
    assert code_of(rezip(tmp_path / "m.zip", manifest_only)) == "EMPTY_ZIP"


def test_corrupt_dicom_in_zip(tmp_path: Path, good_zip: Path) -> None:
    members = members_of(good_zip)
    name = next(n for n in members if n.endswith(".dcm"))
    members[name] = members[name][:300]
    assert code_of(rezip(tmp_path / "c.zip", members)) == "DICOM_UNREADABLE"


def test_corrupt_member_is_zip_corrupt(tmp_path: Path, good_zip: Path) -> None:
    with zipfile.ZipFile(good_zip) as zf:
        info = zf.getinfo(sorted(n for n in zf.namelist() if n.endswith(".dcm"))[3])
    raw = bytearray(good_zip.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(start + 10, start + 40):  # inside the member's deflate stream
        raw[k] ^= 0xA5
    path = tmp_path / good_zip.name
    path.write_bytes(bytes(raw))
    assert code_of(path) == "ZIP_CORRUPT"


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    """A 2 MB zip whose member declares (and really inflates to) 2 GiB: refused from the
    central directory; nothing near its size is ever allocated."""
    path = zip_bomb(tmp_path / "1000001_20201_2_0.zip", declared=2**31)
    assert path.stat().st_size < 3 * 2**20
    tracemalloc.start()
    try:
        with pytest.raises(IngestError) as info:
            read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == "ZIP_TOO_LARGE" and "2048.0 MiB" in info.value.message
    assert peak < 8 * 2**20


def test_lying_directory_is_zip_corrupt(tmp_path: Path) -> None:
    path = lying_zip(tmp_path / "1000001_20201_2_0.zip", actual=256 * 2**20, declared=70_000)
    tracemalloc.start()
    try:
        assert code_of(path) == "ZIP_CORRUPT"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_too_many_entries_refused_before_the_directory_is_parsed(
    tmp_path: Path, good_zip: Path
) -> None:
    path = tmp_path / good_zip.name
    path.write_bytes(good_zip.read_bytes())
    with pytest.raises(IngestError) as info:
        read(with_entry_count(path, 65_000))
    assert info.value.code == "ZIP_TOO_LARGE" and "65000 members" in info.value.message


def test_zip_limits_come_from_the_layout_settings(tmp_path: Path, good_zip: Path) -> None:
    assert code_of(good_zip, zip_limits=ZipLimits(max_archive_bytes=1000)) == "ZIP_TOO_LARGE"
    settings = tmp_path / "mine.yaml"
    settings.write_text("limits: {max_members: 5}\n")
    with pytest.raises(IngestError) as info:
        get_layout("ukbb").read(zip_visit(good_zip), load_layout("ukbb", settings))
    assert info.value.code == "ZIP_TOO_LARGE" and "limit 5" in info.value.message
    assert len(read(good_zip)) == N_STATIONS * len(CHANNELS)  # the defaults accept it


def test_missing_manifest_and_mismatch(tmp_path: Path, good_zip: Path) -> None:
    members = members_of(good_zip)
    no_manifest = {n: d for n, d in members.items() if n != "manifest.csv"}
    path = rezip(tmp_path / "n.zip", no_manifest)
    assert code_of(path) == "MISSING_MANIFEST"
    assert len(read(path, require_manifest=False)) == N_STATIONS * len(CHANNELS)
    first = next(n for n in members if n.endswith(".dcm"))
    short = {n: d for n, d in members.items() if n != first}
    with pytest.raises(IngestError) as info:
        read(rezip(tmp_path / "s.zip", short, fix_manifest=False))
    assert info.value.code == "MANIFEST_MISMATCH" and first in info.value.message


def test_manifest_cvs_and_unknown_series_accepted(tmp_path: Path, good_zip: Path) -> None:
    members = members_of(good_zip)
    members["manifest.cvs"] = members.pop("manifest.csv")
    dicom_series(station(0, "in"), members, number=99, description="localizer")
    stations = read(rezip(tmp_path / "m.zip", members))
    assert len(stations) == N_STATIONS * len(CHANNELS)  # the localizer matches no rule


def test_manifest_names_with_unquoted_date_commas() -> None:
    text = (
        "\ufefffilename,patientid,studyid,aet,date,seriesdescription\n"
        "1.2.3.dcm,1000001,1.2,AET,Mar 3, 2017,Dixon_noBH_in\n"
        "\n"
        "1.2.4.dcm,1000001,1.2,AET,Mar 3, 2017,Dixon_noBH_in\n"
    )
    assert read_manifest_names(text.encode()) == ["1.2.3.dcm", "1.2.4.dcm"]
    assert read_manifest_names(b"name,x\na.dcm,1\n") == ["a.dcm"]  # no filename column
    assert read_manifest_names(b"") == []


# --------------------------------------------------------------------------- written zips


def test_zip_contents(good_zip: Path) -> None:
    members = members_of(good_zip)
    assert "manifest.csv" in members
    dcm = [n for n in members if n.endswith(".dcm")]
    assert len(dcm) == N_STATIONS * len(CHANNELS) * 4
    descs = descriptions(members)
    assert set(descs.values()) == {
        f"{p}_{s}" for p in ("Dixon_BH_17s", "Dixon_noBH") for s in ("in", "opp", "F", "W")
    }
    series = {
        (
            int(ds.SeriesNumber),
            str(ds.SeriesDescription),
            str(ds.AcquisitionTime),
            str(ds.SeriesInstanceUID),
        )
        for ds in (pydicom.dcmread(BytesIO(members[n]), stop_before_pixels=True) for n in dcm)
    }
    assert len(series) == 24
    by_number = sorted(series)
    # stations 1 and 2 are breath-hold; acquisition time increases with station
    for number, desc, _, _ in by_number:
        s = (number - 1) // 4
        assert desc.startswith("Dixon_BH_17s_" if s in (1, 2) else "Dixon_noBH_")
    times = [t for _, _, t, _ in by_number]
    assert times == sorted(times) and len(set(times)) == N_STATIONS
    manifest = members["manifest.csv"].decode().splitlines()
    header = manifest[0].split(",")
    assert {"filename", "seriesdescription", "seriesnumber"} <= set(header)
    assert sorted(r.split(",")[0] for r in manifest[1:]) == sorted(dcm)


def test_write_is_deterministic_and_atomic(tmp_path: Path) -> None:
    a = write_ukbb_zip(tmp_path / "a.zip", participant_id="7", stations=stations_dict(2))
    b = write_ukbb_zip(tmp_path / "b.zip", participant_id="7", stations=stations_dict(2))
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "b.zip"]


def test_breath_hold_stations_chosen_by_caller(tmp_path: Path) -> None:
    path = write_ukbb_zip(
        tmp_path / "z.zip",
        participant_id="7",
        stations=stations_dict(2),
        breath_hold_stations=(0,),
    )
    descs = set(descriptions(members_of(path)).values())
    assert "Dixon_BH_17s_F" in descs and "Dixon_noBH_W" in descs


@pytest.mark.parametrize("bad", ["../etc", "a b", "", "x/y", "é1"])
def test_bad_participant_id(bad: str, tmp_path: Path) -> None:
    with pytest.raises(IngestError) as info:
        validate_participant_id(bad)
    assert info.value.code == "BAD_PARTICIPANT_ID"
    with pytest.raises(IngestError):
        write_ukbb_zip(tmp_path / "x.zip", participant_id=bad, stations=stations_dict(1))


def test_write_rejects_incomplete_stations(tmp_path: Path) -> None:
    bad = stations_dict(2)
    del bad["f"]
    with pytest.raises(ValueError, match="channels"):
        write_ukbb_zip(tmp_path / "x.zip", participant_id="1", stations=bad)
    uneven = stations_dict(2)
    uneven["w"] = uneven["w"][:1]
    with pytest.raises(ValueError, match="same"):
        write_ukbb_zip(tmp_path / "x.zip", participant_id="1", stations=uneven)
