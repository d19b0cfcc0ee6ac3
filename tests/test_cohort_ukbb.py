"""Tests for mrcohort.cohort.ukbb: discover, write and read field-20201 zips."""

from __future__ import annotations

import hashlib
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from mrcohort.cohort.channels import CHANNELS
from mrcohort.cohort.ukbb import UkbbZip, channel_of_description, discover_ukbb, read_ukbb_zip
from mrcohort.errors import IngestError
from mrcohort.ids import validate_participant_id
from mrcohort.phantoms.writers.dicom import write_series
from mrcohort.phantoms.writers.ukbb import write_ukbb_zip

N_STATIONS = 6


def station(index: int, channel: str, *, n_slices: int = 4) -> sitk.Image:
    """Small station image; stations overlap by one slice along z (3 mm slices)."""
    rng = np.random.default_rng(100 * index + CHANNELS.index(channel))
    arr = rng.uniform(0.0, 500.0, (n_slices, 5, 6)).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((2.2, 2.2, 3.0))
    img.SetOrigin((-5.5, -4.4, -400.0 + index * (n_slices - 1) * 3.0))
    return img


def stations_dict(n: int = N_STATIONS) -> dict[str, list[sitk.Image]]:
    """Channel -> n stations, inferior -> superior."""
    return {c: [station(i, c) for i in range(n)] for c in CHANNELS}


def zip_members(path: Path) -> dict[str, bytes]:
    """All members of a zip."""
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rezip(path: Path, members: dict[str, bytes], *, fix_manifest: bool = True) -> Path:
    """Write members as a zip at path; the manifest keeps only rows of members present."""
    if fix_manifest and "manifest.csv" in members:
        lines = members["manifest.csv"].decode().splitlines()
        kept = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[0] in members]
        members = {**members, "manifest.csv": ("\n".join(kept) + "\n").encode()}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def descriptions(members: dict[str, bytes]) -> dict[str, str]:
    """File name -> SeriesDescription for the DICOM members."""
    return {
        n: str(pydicom.dcmread(BytesIO(d), stop_before_pixels=True).SeriesDescription)
        for n, d in members.items()
        if n.endswith(".dcm")
    }


@pytest.fixture(scope="module")
def ukbb_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ukbb") / "1000001_20201_2_0.zip"
    return write_ukbb_zip(out, participant_id="1000001", stations=stations_dict())


def code_of(path: Path) -> str:
    """Code of the IngestError that read_ukbb_zip raises."""
    with pytest.raises(IngestError) as info:
        read_ukbb_zip(path)
    assert info.value.stage == "ingest"
    return info.value.code


def test_round_trip(ukbb_zip: Path) -> None:
    original = stations_dict()
    out = read_ukbb_zip(ukbb_zip)
    assert list(out) == list(CHANNELS)
    for c in CHANNELS:
        assert len(out[c]) == N_STATIONS
        for got, want in zip(out[c], original[c], strict=True):
            assert got.GetSize() == want.GetSize()
            np.testing.assert_allclose(got.GetOrigin(), want.GetOrigin(), atol=1e-4)
            np.testing.assert_allclose(got.GetSpacing(), want.GetSpacing(), atol=1e-4)
            np.testing.assert_allclose(got.GetDirection(), want.GetDirection(), atol=1e-4)
            step = 500.0 / 65535
            np.testing.assert_allclose(
                sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(want), atol=step
            )


def test_zip_contents(ukbb_zip: Path) -> None:
    members = zip_members(ukbb_zip)
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
    descs = set(descriptions(zip_members(path)).values())
    assert "Dixon_BH_17s_F" in descs and "Dixon_noBH_W" in descs


def test_stations_ordered_by_position_not_time_or_number(tmp_path: Path) -> None:
    # stations handed over superior -> inferior: acquisition time and series number
    # then decrease with height, the reader must still return inferior -> superior
    original = stations_dict()
    reversed_stations = {c: v[::-1] for c, v in original.items()}
    path = write_ukbb_zip(tmp_path / "r.zip", participant_id="8", stations=reversed_stations)
    out = read_ukbb_zip(path)
    for c in CHANNELS:
        z = [img.GetOrigin()[2] for img in out[c]]
        assert z == sorted(z)
        np.testing.assert_allclose(z, [img.GetOrigin()[2] for img in original[c]], atol=1e-4)


def test_manifest_cvs_and_unknown_series_accepted(tmp_path: Path, ukbb_zip: Path) -> None:
    members = zip_members(ukbb_zip)
    members["manifest.cvs"] = members.pop("manifest.csv")
    extra: dict[str, bytes] = {}
    write_series(
        station(0, "in"),
        extra,
        series_description="localizer",
        series_number=99,
        series_uid="1.2.826.0.1.3680043.10.99",
        study_uid="1.2.826.0.1.3680043.10.98",
        frame_uid="1.2.826.0.1.3680043.10.97",
        participant_id="1000001",
        acquisition_time="080000",
    )
    members.update(extra)
    out = read_ukbb_zip(rezip(tmp_path / "m.zip", members))
    assert [len(v) for v in out.values()] == [N_STATIONS] * 4


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "1000001_20201_2_0.zip"
    path.write_text("not a zip")
    assert code_of(path) == "NOT_A_ZIP"


def test_missing_file(tmp_path: Path) -> None:
    assert code_of(tmp_path / "nope.zip") == "FILE_NOT_FOUND"


def test_empty_zip(tmp_path: Path, ukbb_zip: Path) -> None:
    assert code_of(rezip(tmp_path / "e.zip", {})) == "EMPTY_ZIP"
    manifest_only = {"manifest.csv": zip_members(ukbb_zip)["manifest.csv"]}
    assert code_of(rezip(tmp_path / "m.zip", manifest_only)) == "EMPTY_ZIP"


def test_missing_channel_named(tmp_path: Path, ukbb_zip: Path) -> None:
    members = zip_members(ukbb_zip)
    descs = descriptions(members)
    kept = {n: d for n, d in members.items() if not descs.get(n, "").endswith("_F")}
    with pytest.raises(IngestError) as info:
        read_ukbb_zip(rezip(tmp_path / "f.zip", kept))
    assert info.value.code == "MISSING_CHANNEL"
    assert "channel(s) f" in info.value.message


def test_station_mismatch(tmp_path: Path, ukbb_zip: Path) -> None:
    members = zip_members(ukbb_zip)
    numbers = {
        n: int(pydicom.dcmread(BytesIO(d), stop_before_pixels=True).SeriesNumber)
        for n, d in members.items()
        if n.endswith(".dcm")
    }
    w_of_station_3 = 1 + 4 * 3 + CHANNELS.index("w")
    kept = {n: d for n, d in members.items() if numbers.get(n) != w_of_station_3}
    assert code_of(rezip(tmp_path / "s.zip", kept)) == "STATION_MISMATCH"


def test_duplicate_series(tmp_path: Path, ukbb_zip: Path) -> None:
    members = zip_members(ukbb_zip)
    write_series(
        station(2, "opp"),
        members,
        series_description="Dixon_BH_17s_opp",
        series_number=50,
        series_uid="1.2.826.0.1.3680043.10.50",
        study_uid="1.2.826.0.1.3680043.10.51",
        frame_uid="1.2.826.0.1.3680043.10.52",
        participant_id="1000001",
        acquisition_time="120000",
    )
    assert code_of(rezip(tmp_path / "d.zip", members)) == "DUPLICATE_SERIES"


def test_corrupt_dicom_in_zip(tmp_path: Path, ukbb_zip: Path) -> None:
    members = zip_members(ukbb_zip)
    name = next(n for n in members if n.endswith(".dcm"))
    members[name] = members[name][:300]
    assert code_of(rezip(tmp_path / "c.zip", members)) == "DICOM_UNREADABLE"


@pytest.mark.parametrize(
    ("description", "channel"),
    [
        ("Dixon_BH_17s_in", "in"),
        ("Dixon_noBH_opp", "opp"),
        ("Dixon_noBH_F", "f"),
        ("Dixon_BH_17s_W", "w"),
        ("dixon_nobh_IN", "in"),
        ("wb_dixon_fat", "f"),
        ("WB_Dixon_Water", "w"),
        ("localizer", None),
        ("Dixon_noBH_win", None),
    ],
)
def test_channel_of_description(description: str, channel: str | None) -> None:
    assert channel_of_description(description) == channel


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


def test_discover(tmp_path: Path) -> None:
    good = ["1000002_20201_2_0.zip", "1000001_20201_3_0.zip", "1000001_20201_2_0.zip"]
    for name in good:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    bad = {
        "sub/1000001_20201_2_0.zip": "duplicate of",
        "1000003_20204_2_0.zip": "field 20204",
        "abc_20201_2_0.zip": "not all digits",
        "1000004_20201_0_0.zip": "instance 0",
        "1000005_20201_2.zip": "name is not",
        "readme.txt": "not a .zip",
        ".tmp-123.zip": "hidden",
    }
    for name in bad:
        (tmp_path / name).write_bytes(b"")
    zips, rejected = discover_ukbb(tmp_path)
    assert [(z.participant_id, z.visit) for z in zips] == [
        ("1000001", "2_0"),
        ("1000001", "3_0"),
        ("1000002", "2_0"),
    ]
    assert zips[0] == UkbbZip("1000001", "2_0", 2, 0, tmp_path / "1000001_20201_2_0.zip")
    reasons = {p.relative_to(tmp_path).as_posix(): r for p, r in rejected}
    assert set(reasons) == set(bad)
    for name, fragment in bad.items():
        assert fragment in reasons[name], (name, reasons[name])


def test_discover_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as info:
        discover_ukbb(tmp_path / "absent")
    assert info.value.code == "FILE_NOT_FOUND"


def test_manifest_names_with_unquoted_date_commas() -> None:
    from mrcohort.cohort.ukbb import read_manifest_names

    text = (
        "\ufefffilename,patientid,studyid,aet,date,seriesdescription\n"
        "1.2.3.dcm,1000001,1.2,AET,Mar 3, 2017,Dixon_noBH_in\n"
        "\n"
        "1.2.4.dcm,1000001,1.2,AET,Mar 3, 2017,Dixon_noBH_in\n"
    )
    assert read_manifest_names(text.encode()) == ["1.2.3.dcm", "1.2.4.dcm"]
    assert read_manifest_names(b"name,x\na.dcm,1\n") == ["a.dcm"]  # no filename column
    assert read_manifest_names(b"") == []


def test_missing_manifest_and_mismatch(tmp_path: Path, ukbb_zip: Path) -> None:
    members = zip_members(ukbb_zip)
    no_manifest = {n: d for n, d in members.items() if n != "manifest.csv"}
    path = rezip(tmp_path / "n.zip", no_manifest)
    assert code_of(path) == "MISSING_MANIFEST"
    assert len(read_ukbb_zip(path, require_manifest=False)["in"]) == N_STATIONS
    first = next(n for n in members if n.endswith(".dcm"))
    short = {n: d for n, d in members.items() if n != first}
    with pytest.raises(IngestError) as info:
        read_ukbb_zip(rezip(tmp_path / "s.zip", short, fix_manifest=False))
    assert info.value.code == "MANIFEST_MISMATCH" and first in info.value.message
