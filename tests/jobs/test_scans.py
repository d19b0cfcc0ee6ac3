"""Tests for mrcohort.jobs.scans: the ingest job writes the scans and failures tables for
every layout; bad input becomes failure rows."""

from __future__ import annotations

import struct
import zipfile
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import numpy as np
import pyarrow as pa
import pydicom
import pytest
import SimpleITK as sitk

from mrcohort import __version__
from mrcohort.cohort import discover, load_layout
from mrcohort.cohort.channels import CHANNELS
from mrcohort.io.zips import ZipLimits
from mrcohort.jobs.scans import ingest, layout_params_hash
from mrcohort.phantoms import write_nako_participant
from mrcohort.schemas.rows import NO_MODEL_KEY
from mrcohort.schemas.store import read_table
from mrcohort.schemas.tables import SCANS, SCHEMA_VERSION
from tests.builders import (
    description_of,
    dicom_series,
    encode,
    members_of,
    nifti,
    non_image_object,
    rezip,
    station,
    stations_dict,
    ukbb_zip,
    with_identity,
    write_manifest,
)
from tests.conftest import shared_data
from tests.hostile import lying_zip, zip_bomb

# --------------------------------------------------------------------------- ukbb


def ukbb_cohort(root: Path, good_zip: Path) -> dict[str, str | None]:
    """A folder of UK Biobank zips, good and bad; returns eid -> expected failure code."""
    good = members_of(good_zip)
    dcm = [n for n in good if n.endswith(".dcm")]
    desc = {n: description_of(good[n]) for n in dcm}

    def put(eid: str, members: dict[str, bytes], *, instance: int = 2, sub: str = "") -> None:
        # PatientID inside the files stays 1000001: ingest takes ids from file names
        rezip(root / sub / f"{eid}_20201_{instance}_0.zip", members)

    expected: dict[str, str | None] = {}
    put("1000001", good)
    put("1000001", good, instance=3)  # repeat imaging visit: kept apart
    expected["1000001"] = None
    (root / "1000002_20201_2_0.zip").write_text("not a zip")
    expected["1000002"] = "NOT_A_ZIP"
    put("1000003", {})
    expected["1000003"] = "EMPTY_ZIP"
    put("1000004", {n: d for n, d in good.items() if n != "manifest.csv"})
    expected["1000004"] = "MISSING_MANIFEST"
    with zipfile.ZipFile(root / "1000005_20201_2_0.zip", "w") as zf:  # manifest kept whole
        for name, data in good.items():
            if name not in dcm[:3]:
                zf.writestr(name, data)
    expected["1000005"] = "MANIFEST_MISMATCH"
    put("1000006", {n: d for n, d in good.items() if not desc.get(n, "").endswith("_F")})
    expected["1000006"] = "MISSING_CHANNEL"
    ukbb_zip(root, "1000007", stations=stations_dict([0, 1, 2, 4, 5]))
    expected["1000007"] = "STATION_GAP"
    ukbb_zip(root, "1000008", stations=stations_dict(5))
    expected["1000008"] = None
    shifted = stations_dict()
    shifted["w"][2] = station(2, "w", dx=1.0)  # water of station 3 on another in-plane grid
    ukbb_zip(root, "1000009", stations=shifted)
    expected["1000009"] = "GRID_MISMATCH"
    dup = dict(good)
    dicom_series(
        station(2, "opp"), dup, number=50, description="Dixon_BH_17s_opp", acquisition_time="120000"
    )
    put("1000010", dup)
    expected["1000010"] = "DUPLICATE_SERIES"
    cut = dict(good)
    cut[dcm[5]] = cut[dcm[5]][: len(cut[dcm[5]]) // 2]
    put("1000011", cut)
    expected["1000011"] = "DICOM_UNREADABLE"
    put("1000012", {**good, "sr.dcm": non_image_object("sr"), "doc.dcm": non_image_object("pdf")})
    expected["1000012"] = None
    put(
        "1000013",
        {
            "sr.dcm": non_image_object("sr"),
            "doc.dcm": non_image_object("pdf"),
            "manifest.csv": b"filename\nsr.dcm\ndoc.dcm\n",
        },
    )
    expected["1000013"] = "EMPTY_ZIP"
    put("1000014", good)
    put("1000014", {n: d for n, d in good.items() if n != dcm[0]}, sub="other")
    expected["1000014"] = "DUPLICATE_VISIT"
    put("1000015", good)
    put("1000015", good, sub="copy")  # byte-identical copy: harmless
    expected["1000015"] = None
    # hostile inputs: refused before they cost anything, the rest of the cohort goes on
    zip_bomb(root / "1000016_20201_2_0.zip", declared=2**31)  # 2 MB declaring 2 GiB
    expected["1000016"] = "ZIP_TOO_LARGE"
    lying_zip(root / "1000017_20201_2_0.zip", actual=256 * 2**20, declared=70_000)
    expected["1000017"] = "ZIP_CORRUPT"
    flat = dict(good)
    ds = pydicom.dcmread(BytesIO(flat[dcm[7]]))
    ds.PixelSpacing = [0.0, 2.2]  # once read as 1 mm, now refused from the header
    flat[dcm[7]] = encode(ds)
    put("1000018", flat)
    expected["1000018"] = "BAD_SPACING"
    (root / "abc_20201_2_0.zip").write_bytes(good_zip.read_bytes())
    (root / "truth.csv").write_text("not a participant\n")
    return expected


@pytest.fixture(scope="module")
def ukbb_ingested(tmp_path_factory: pytest.TempPathFactory, good_zip: Path):
    root = tmp_path_factory.mktemp("ukbb_cohort")
    expected = ukbb_cohort(root, good_zip)
    store = tmp_path_factory.mktemp("store")
    summary = ingest("ukbb", root, cohort="ukbb", store=store)
    return root, store, expected, summary


def test_ukbb_bad_inputs_become_failure_rows(ukbb_ingested) -> None:
    _, store, expected, summary = ukbb_ingested
    failures = read_table(store, "failures").to_pylist()
    by_pid: dict[str, set[str]] = {}
    for f in failures:
        by_pid.setdefault(f["participant_id"], set()).add(f["code"])
    for eid, code in expected.items():
        assert by_pid.get(eid, set()) == ({code} if code else set()), eid
    assert by_pid[""] == {"UNRECOGNISED_FILE"}  # abc_20201_2_0.zip: no usable id
    assert len(failures) == summary.n_failed == sum(c is not None for c in expected.values()) + 1
    for f in failures:
        assert f["message"] and "\n" not in f["message"]
        assert f["model_key"] == NO_MODEL_KEY and f["code_version"] == __version__
        assert f["schema_version"] == SCHEMA_VERSION and f["computed_at"].tzinfo is not None
        assert f["cohort"] == "ukbb" and f["params_hash"]
    stages = {f["participant_id"]: f["stage"] for f in failures}
    assert stages["1000007"] == "stitch" and stages["1000002"] == "ingest"
    dup = next(f for f in failures if f["code"] == "DUPLICATE_VISIT")
    assert "other/1000014_20201_2_0.zip" in dup["message"] and dup["visit"] == "2_0"
    gap = next(f for f in failures if f["code"] == "STATION_GAP")
    assert gap["message"].startswith("dixon: ") and gap["input_sha256"]


def test_ukbb_scans_rows(ukbb_ingested) -> None:
    _, store, _, summary = ukbb_ingested
    rows = read_table(store, "scans").to_pylist()
    assert summary.n_scan_rows == len(rows)
    visits = {(r["participant_id"], r["visit"]) for r in rows}
    assert ("1000001", "2_0") in visits and ("1000001", "3_0") in visits
    good = [r for r in rows if r["participant_id"] == "1000001" and r["visit"] == "2_0"]
    assert len(good) == 24
    assert {(r["channel"], r["station"]) for r in good} == {
        (c, s) for c in CHANNELS for s in range(1, 7)
    }
    for r in good:
        assert r["usable"] and r["problem_code"] is None
        assert (r["n_stations"], r["stations_expected"]) == (6, 6)
        assert r["layout"] == "ukbb" and r["format"] == "dicom" and r["modality"] == "MR"
        assert r["source"] == "1000001_20201_2_0.zip" and r["sequence"] == "dixon"
        assert (r["size_x_vox"], r["size_y_vox"], r["size_z_vox"]) == (6, 5, 4)
        want = station(r["station"] - 1, r["channel"])
        np.testing.assert_allclose(
            [r["origin_x_mm"], r["origin_y_mm"], r["origin_z_mm"]], want.GetOrigin(), atol=1e-4
        )
        np.testing.assert_allclose(
            [r["spacing_x_mm"], r["spacing_y_mm"], r["spacing_z_mm"]], want.GetSpacing()
        )
        np.testing.assert_allclose(r["direction"], np.eye(3).ravel(), atol=1e-9)
        assert len(r["content_sha256"]) == 64 and len(r["input_sha256"]) == 64
    # stations are numbered by position: z grows with the station number
    z = [r["origin_z_mm"] for r in sorted(good, key=lambda r: r["station"]) if r["channel"] == "f"]
    assert z == sorted(z)
    assert len({r["content_sha256"] for r in good}) == 24
    # a top station missing: stitched as it is, visible as 5 of 6 stations
    short = [r for r in rows if r["participant_id"] == "1000008"]
    assert {(r["n_stations"], r["stations_expected"], r["usable"]) for r in short} == {(5, 6, True)}
    # a middle station missing: rows kept, marked unusable with the failure code
    gap = [r for r in rows if r["participant_id"] == "1000007"]
    assert len(gap) == 20 and {(r["usable"], r["problem_code"]) for r in gap} == {
        (False, "STATION_GAP")
    }
    missing = [r for r in rows if r["participant_id"] == "1000006"]
    assert {r["channel"] for r in missing} == {"in", "opp", "w"}
    assert all(r["problem_code"] == "MISSING_CHANNEL" for r in missing)
    # SR and PDF objects next to the images are skipped, not failures
    assert len([r for r in rows if r["participant_id"] == "1000012"]) == 24
    assert len([r for r in rows if r["participant_id"] == "1000015"]) == 24


def test_ukbb_reingest_reads_nothing_and_writes_nothing(ukbb_ingested) -> None:
    root, store, _, summary = ukbb_ingested
    before = sorted(p for p in store.rglob("*.parquet"))
    again = ingest("ukbb", root, cohort="ukbb", store=store)
    assert again.files == [] and again.n_loaded == 0
    assert again.n_up_to_date == summary.n_visits + len(discover("ukbb", root).rejected)
    assert sorted(p for p in store.rglob("*.parquet")) == before
    assert read_table(store, "scans").num_rows == summary.n_scan_rows
    assert read_table(store, "failures").num_rows == summary.n_failed


def test_a_run_after_ingest_writes_no_second_scans_rows(tmp_path, monkeypatch) -> None:
    """``ingest`` then ``run`` on one store: the run knows the inputs' hashes and scans."""
    from mrcohort.jobs.run import run_job
    from tests.jobs.fakes import job_config, thread_client, use_fake_segmenter

    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000001")
    store = tmp_path / "store"
    ingest("ukbb", tmp_path / "in", cohort="t", store=store)
    client = thread_client()
    try:
        run_job(job_config(tmp_path / "in", store), client=client)
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    assert read_table(store, "scans").num_rows == 24
    assert read_table(store, "organ_metrics").num_rows == 40


def test_scans_table_schema() -> None:
    expected = {
        "cohort": pa.string(),
        "participant_id": pa.string(),
        "visit": pa.string(),
        "sequence": pa.string(),
        "channel": pa.string(),
        "station": pa.int16(),
        "n_stations": pa.int16(),
        "stations_expected": pa.int16(),
        "layout": pa.string(),
        "source": pa.string(),
        "format": pa.string(),
        "series_number": pa.int32(),
        "modality": pa.string(),
        "content_sha256": pa.string(),
        "size_x_vox": pa.int32(),
        "size_y_vox": pa.int32(),
        "size_z_vox": pa.int32(),
        "spacing_x_mm": pa.float64(),
        "spacing_y_mm": pa.float64(),
        "spacing_z_mm": pa.float64(),
        "origin_x_mm": pa.float64(),
        "origin_y_mm": pa.float64(),
        "origin_z_mm": pa.float64(),
        "direction": pa.list_(pa.float64(), 9),
        "usable": pa.bool_(),
        "problem_code": pa.string(),
        "input_sha256": pa.string(),
        "model_key": pa.string(),
        "measure_key": pa.string(),
        "code_version": pa.string(),
        "params_hash": pa.string(),
        "schema_version": pa.string(),
        "computed_at": pa.timestamp("us", tz="UTC"),
        "run_id": pa.string(),
    }
    assert {f.name: f.type for f in SCANS} == expected
    assert list(SCANS.names) == list(expected)
    for f in SCANS:
        assert set(f.metadata) == {b"unit", b"description"}
    assert SCANS.field("size_x_vox").metadata[b"unit"] == b"{voxel}"
    assert SCANS.field("origin_z_mm").metadata[b"unit"] == b"mm"


def test_nothing_identifying_reaches_the_tables(tmp_path: Path, good_zip: Path) -> None:
    members = {
        n: with_identity(d) if n.endswith(".dcm") else d for n, d in members_of(good_zip).items()
    }
    members["sr.dcm"] = non_image_object("sr")
    root = tmp_path / "in"
    rezip(root / "1000001_20201_2_0.zip", members)
    # and one that fails, so a failure message is written too
    rezip(root / "1000002_20201_2_0.zip", {**members, "x.dcm": members[next(iter(members))][:99]})
    store = tmp_path / "store"
    summary = ingest("ukbb", root, cohort="c1", store=store)
    assert summary.n_scan_rows == 24 and summary.n_failed == 1
    blob = b"".join(p.read_bytes() for p in store.rglob("*.parquet"))
    text = str(read_table(store, "scans").to_pylist()) + str(
        read_table(store, "failures").to_pylist()
    )
    for secret in ("Doe", "Jane", "19480229", "Hidden Lane", "Sometown", "anxious"):
        assert secret.encode() not in blob and secret not in text, secret


# --------------------------------------------------------------------------- manifest


def manifest_cohort(root: Path) -> dict[str, str | None]:
    """Files + manifest.csv; returns participant -> expected failure code."""
    rng = np.random.default_rng(0)
    rows: list[tuple[object, ...]] = []
    expected: dict[str, str | None] = {}

    def add(*row: object) -> None:
        rows.append(row)

    for ch in CHANNELS:
        for s in range(3):
            nifti(root / "p01" / f"{ch}_{s}.nii.gz", rng.uniform(0, 9, (5, 4, 3)), z0=12.0 * s)
            add("p01", "base", "dixon", ch, s + 1, f"p01/{ch}_{s}.nii.gz")
    expected["p01"] = None
    add("../evil", "base", "dixon", "in", 1, "p01/in_0.nii.gz")
    add("a/b", "base", "dixon", "in", 1, "p01/in_0.nii.gz")
    bad = np.ones((5, 4, 3), np.float32)
    bad[1, 1, 1] = np.nan
    nifti(root / "p03" / "nan.nii.gz", bad)
    add("p03", "base", "t1", "t1", 1, "p03/nan.nii.gz")
    expected["p03"] = "NONFINITE_VOXELS"
    nifti(root / "p04" / "flat.nii.gz", np.ones((4, 3), np.float32))
    add("p04", "base", "t1", "t1", 1, "p04/flat.nii.gz")
    expected["p04"] = "BAD_DIMENSION"
    nifti(root / "p05" / "dyn.nii.gz", np.ones((2, 5, 4, 3), np.float32))
    add("p05", "base", "t1", "t1", 1, "p05/dyn.nii.gz")
    expected["p05"] = "BAD_DIMENSION"
    add("p06", "base", "t1", "t1", 1, "p06/gone.nii.gz")
    expected["p06"] = "FILE_NOT_FOUND"
    (root / "p07").mkdir()
    (root / "p07" / "report.dcm").write_bytes(non_image_object("sr"))
    (root / "p07" / "doc").mkdir()
    (root / "p07" / "doc" / "a.dcm").write_bytes(non_image_object("pdf"))
    add("p07", "base", "t1", "t1", 1, "p07/report.dcm")
    add("p07", "base", "t1", "t1", 2, "p07/doc")
    expected["p07"] = "NOT_AN_IMAGE"
    huge = nifti(root / "p08" / "huge.nii", np.ones((4, 4, 4), np.float32))
    data = bytearray(huge.read_bytes())
    struct.pack_into("<8h", data, 40, 3, 30000, 30000, 30000, 1, 1, 1, 1)
    huge.write_bytes(bytes(data))
    add("p08", "base", "t1", "t1", 1, "p08/huge.nii")
    expected["p08"] = "IMAGE_TOO_LARGE"
    # stations whose headers share one origin: ordered by the manifest's station numbers
    for s in (2, 1):
        nifti(root / "p09" / f"leg{s}.nii.gz", np.full((4, 3, 3), float(s), np.float32))
        add("p09", "1", "legs", "water", s, f"p09/leg{s}.nii.gz")
    expected["p09"] = None
    for s in (1, 2):  # same position AND same station number: which is which?
        nifti(root / "p10" / f"x{s}.nii.gz", np.full((4, 3, 3), s, np.float32))
        add("p10", "1", "t1", "t1", 1, f"p10/x{s}.nii.gz")
    expected["p10"] = "DUPLICATE_SERIES"
    add("p11", "v 1", "t1", "t1", 1, "p01/in_0.nii.gz")
    expected["p11"] = "BAD_MANIFEST_ROW"
    write_manifest(root / "manifest.csv", rows)
    return expected


def test_manifest_layout(tmp_path: Path) -> None:
    expected = manifest_cohort(tmp_path / "in")
    store = tmp_path / "store"
    summary = ingest("manifest", tmp_path / "in", cohort="gen", store=store)
    failures = read_table(store, "failures").to_pylist()
    by_pid: dict[str, set[str]] = {}
    for f in failures:
        by_pid.setdefault(f["participant_id"], set()).add(f["code"])
    for pid, code in expected.items():
        assert by_pid.get(pid, set()) == ({code} if code else set()), pid
    bad_ids = [f for f in failures if f["code"] == "BAD_PARTICIPANT_ID"]
    assert len(bad_ids) == 2 and all(f["participant_id"] == "" for f in bad_ids)
    assert "'../evil'" in bad_ids[0]["message"] and "line 14" in bad_ids[0]["message"]
    assert not any(store.rglob("*evil*"))
    rows = read_table(store, "scans").to_pylist()
    assert summary.n_scan_rows == len(rows) == 12 + 2 + 2
    p10 = [r for r in rows if r["participant_id"] == "p10"]  # read, but not usable
    assert {(r["usable"], r["problem_code"]) for r in p10} == {(False, "DUPLICATE_SERIES")}
    p01 = [r for r in rows if r["participant_id"] == "p01"]
    assert {(r["visit"], r["layout"], r["format"]) for r in p01} == {("base", "manifest", "nifti")}
    assert {r["stations_expected"] for r in p01} == {None}
    legs = sorted((r for r in rows if r["participant_id"] == "p09"), key=lambda r: r["station"])
    assert [r["source"] for r in legs] == ["p09/leg1.nii.gz", "p09/leg2.nii.gz"]
    assert all(r["usable"] for r in legs)


@pytest.mark.shared_data
def test_real_ct_dicom_through_a_manifest(tmp_path: Path) -> None:
    totalseg = shared_data("totalsegmentator")
    write_manifest(
        tmp_path / "manifest.csv", [("ct01", 1, "ct", "ct", 1, totalseg / "example_ct_dicom")]
    )
    store = tmp_path / "store"
    summary = ingest("manifest", tmp_path, cohort="ts", store=store)
    assert summary.n_failed == 0
    (row,) = read_table(store, "scans").to_pylist()
    assert (row["sequence"], row["channel"], row["station"], row["n_stations"]) == (
        "ct",
        "ct",
        1,
        1,
    )
    assert (row["modality"], row["format"], row["usable"]) == ("CT", "dicom", True)
    # geometry against the NIfTI TotalSegmentator wrote on the same series (rows flipped
    # there: compare in one orientation)
    ref = sitk.DICOMOrient(sitk.ReadImage(str(totalseg / "example_seg_dicom.nii.gz")), "LPS")
    assert (row["size_x_vox"], row["size_y_vox"], row["size_z_vox"]) == ref.GetSize()
    got = [row[f"spacing_{a}_mm"] for a in "xyz"]
    np.testing.assert_allclose(got, ref.GetSpacing(), atol=1e-3)
    got = [row[f"origin_{a}_mm"] for a in "xyz"]
    np.testing.assert_allclose(got, ref.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(row["direction"], ref.GetDirection(), atol=1e-4)
    # content hash: sha256 of the sorted-by-position slice files' sha256 lines
    assert len(row["content_sha256"]) == 64


# --------------------------------------------------------------------------- nako


@pytest.mark.parametrize("fmt", [pytest.param("dicom", marks=pytest.mark.slow), "nifti"])
def test_nako_layout(tmp_path: Path, mini_nako, fmt: str) -> None:
    p = mini_nako
    root = tmp_path / "nako"
    write_nako_participant(p, root, fmt=fmt)
    write_nako_participant(p, root, visit="2", fmt=fmt, haste=False)
    (root / "p 1" / "1").mkdir(parents=True)
    (root / p.participant_id / "v.1").mkdir()
    (root / "stray.txt").write_text("x")
    store = tmp_path / "store"
    summary = ingest("nako", root, cohort="nako", store=store)
    codes = sorted(f["code"] for f in summary.failures)
    assert codes == ["BAD_PARTICIPANT_ID", "BAD_VISIT", "UNRECOGNISED_FILE"]
    rows = read_table(store, "scans").to_pylist()
    v1 = [r for r in rows if r["visit"] == "1"]
    assert len(v1) == 16 + 2 and len(rows) == 16 + 18
    haste = [r for r in v1 if r["sequence"] == "t2haste"]
    assert [(r["channel"], r["n_stations"], r["stations_expected"]) for r in haste] == [
        ("t2", 2, 2)
    ] * 2
    assert {(r["n_stations"], r["stations_expected"]) for r in v1 if r["sequence"] == "dixon"} == {
        (4, 4)
    }
    assert {r["format"] for r in rows} == {fmt}


def test_bad_cohort_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cohort name"):
        ingest("manifest", tmp_path, cohort="../x", store=tmp_path / "s")


def test_zip_limits_leave_the_params_hash_alone() -> None:
    """Raising a zip limit accepts refused zips (``--retry-failed``) without making every
    stored result stale; image limits and rules still count."""
    base = load_layout("ukbb")
    wider = replace(base, zip_limits=ZipLimits(max_member_bytes=2**40))
    assert layout_params_hash(wider) == layout_params_hash(base)
    assert layout_params_hash(replace(base, require_manifest=False)) != layout_params_hash(base)
