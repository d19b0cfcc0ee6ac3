"""Tests for mrcohort.cohort.load: one participant-visit read, grouped, ordered and checked."""

from __future__ import annotations

import shutil
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from mrcohort.cohort.channels import CHANNELS
from mrcohort.cohort.layouts import discover, load_layout
from mrcohort.cohort.layouts.base import combined_sha256
from mrcohort.cohort.load import load_visit
from mrcohort.cohort.stitch import stitch_channels
from mrcohort.errors import IngestError, MrcohortError
from mrcohort.io.images import Limits
from mrcohort.phantoms.writers.ukbb import write_ukbb_zip
from tests.builders import (
    N_STATIONS,
    dicom_series,
    members_of,
    nifti,
    rezip,
    station,
    stations_dict,
    without_channel,
    write_manifest,
    zip_visit,
)


def dixon_error(path: Path) -> MrcohortError:
    """The Dixon sequence's failure after loading a zip (the load itself succeeds)."""
    visit = load_visit(zip_visit(path))
    assert "dixon" in visit.sequences  # rows are kept, marked unusable
    with pytest.raises(MrcohortError) as info:
        visit.images("dixon")
    assert visit.errors["dixon"] is info.value
    return info.value


def test_round_trip(good_zip: Path) -> None:
    original = stations_dict()
    visit = load_visit(zip_visit(good_zip))
    assert visit.pv == zip_visit(good_zip) and not visit.errors
    out = visit.images("dixon")
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


def test_stations_ordered_by_position_not_time_or_number(tmp_path: Path) -> None:
    # stations handed over superior -> inferior: acquisition time and series number
    # then decrease with height, loading must still return inferior -> superior
    original = stations_dict()
    reversed_stations = {c: v[::-1] for c, v in original.items()}
    path = write_ukbb_zip(tmp_path / "r.zip", participant_id="8", stations=reversed_stations)
    out = load_visit(zip_visit(path, "8")).images("dixon")
    for c in CHANNELS:
        z = [img.GetOrigin()[2] for img in out[c]]
        assert z == sorted(z)
        np.testing.assert_allclose(z, [img.GetOrigin()[2] for img in original[c]], atol=1e-4)


def test_load_and_stitch(good_zip: Path, tmp_path: Path) -> None:
    shutil.copy(good_zip, tmp_path / "1000001_20201_2_0.zip")
    (pv,) = discover("ukbb", tmp_path).pvs
    assert (pv.participant_id, pv.visit, pv.layout) == ("1000001", "2_0", "ukbb")
    visit = load_visit(pv)
    assert list(visit.sequences) == ["dixon"] and not visit.errors
    dixon = visit.images("dixon")
    assert list(dixon) == list(CHANNELS)
    assert [len(v) for v in dixon.values()] == [6] * 4
    out = stitch_channels(dixon)
    assert out["f"].GetSize() == (6, 5, 19)
    with pytest.raises(IngestError) as info:
        visit.images("t2haste")
    assert info.value.code == "MISSING_SEQUENCE"


def test_missing_channel_named(tmp_path: Path, good_zip: Path) -> None:
    err = dixon_error(without_channel(good_zip, tmp_path / "f.zip", "_F"))
    assert err.code == "MISSING_CHANNEL"
    assert "channel(s) f" in err.message and err.message.startswith("dixon: ")


def test_station_mismatch(tmp_path: Path, good_zip: Path) -> None:
    members = members_of(good_zip)
    numbers = {
        n: int(pydicom.dcmread(BytesIO(d), stop_before_pixels=True).SeriesNumber)
        for n, d in members.items()
        if n.endswith(".dcm")
    }
    w_of_station_3 = 1 + 4 * 3 + CHANNELS.index("w")
    kept = {n: d for n, d in members.items() if numbers.get(n) != w_of_station_3}
    assert dixon_error(rezip(tmp_path / "s.zip", kept)).code == "STATION_MISMATCH"


def test_duplicate_series(tmp_path: Path, good_zip: Path) -> None:
    members = members_of(good_zip)
    dicom_series(
        station(2, "opp"),
        members,
        number=50,
        description="Dixon_BH_17s_opp",
        acquisition_time="120000",
    )
    assert dixon_error(rezip(tmp_path / "d.zip", members)).code == "DUPLICATE_SERIES"


def test_grid_mismatch_and_gap(tmp_path: Path) -> None:
    shifted = stations_dict()
    shifted["w"][2] = station(2, "w", dx=1.0)  # water of station 3 on another in-plane grid
    path = write_ukbb_zip(tmp_path / "g.zip", participant_id="9", stations=shifted)
    err = dixon_error(path)
    assert (err.code, err.stage) == ("GRID_MISMATCH", "stitch")
    gap = write_ukbb_zip(tmp_path / "m.zip", participant_id="9", stations=stations_dict([0, 2]))
    assert dixon_error(gap).code == "STATION_GAP"


def test_no_images(tmp_path: Path, good_zip: Path) -> None:
    members = members_of(good_zip)
    only_localizer = dicom_series(station(0, "in"), number=99, description="localizer")
    only_localizer["manifest.csv"] = members["manifest.csv"]
    path = rezip(tmp_path / "l.zip", only_localizer)
    with pytest.raises(IngestError) as info:
        load_visit(zip_visit(path))
    assert info.value.code == "NO_IMAGES"


def test_dicom_size_limit_before_stacking(good_zip: Path) -> None:
    small = replace(load_layout("ukbb"), limits=Limits(max_voxels=100, max_axis=4096))
    with pytest.raises(IngestError) as info:
        load_visit(zip_visit(good_zip), config=small)
    assert info.value.code == "IMAGE_TOO_LARGE"


def test_stations_without_positions_ordered_by_station_number(tmp_path: Path) -> None:
    rows = []
    for s in (2, 1):  # one origin in every header; listed out of order
        nifti(tmp_path / f"p09/leg{s}.nii.gz", np.full((4, 3, 3), float(s), np.float32))
        rows.append(("p09", "1", "legs", "water", s, f"p09/leg{s}.nii.gz"))
    for s in (1, 2):  # same position AND same station number: which is which?
        nifti(tmp_path / f"p10/x{s}.nii.gz", np.full((4, 3, 3), float(s), np.float32))
        rows.append(("p10", "1", "t1", "t1", 1, f"p10/x{s}.nii.gz"))
    write_manifest(tmp_path / "manifest.csv", rows)
    legs, same = discover("manifest", tmp_path).pvs
    visit = load_visit(legs)
    assert [s.source for s in visit.sequences["legs"]["water"]] == [
        "p09/leg1.nii.gz",
        "p09/leg2.nii.gz",
    ]
    assert visit.input_sha256 == combined_sha256(visit.sequences["legs"]["water"])
    assert [
        float(sitk.GetArrayViewFromImage(im).max()) for im in visit.images("legs")["water"]
    ] == [
        1.0,
        2.0,
    ]
    loaded = load_visit(same)
    assert loaded.errors["t1"].code == "DUPLICATE_SERIES"
    assert len(loaded.sequences["t1"]["t1"]) == 2
