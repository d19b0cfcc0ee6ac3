"""Tests for mrcohort.cohort.layouts.config: YAML defaults, rules, user overrides."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mrcohort.cohort.layouts import LAYOUTS, load_layout
from mrcohort.io.images import Limits
from mrcohort.io.zips import ZipLimits


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Dixon_BH_17s_in", ("dixon", "in")),
        ("Dixon_noBH_opp", ("dixon", "opp")),
        ("Dixon_noBH_F", ("dixon", "f")),
        ("Dixon_BH_17s_W", ("dixon", "w")),
        ("dixon_nobh_IN", ("dixon", "in")),
        ("wb_dixon_fat", ("dixon", "f")),
        ("WB_Dixon_Water", ("dixon", "w")),
        ("Dixon_noBH_win", None),
        ("localizer", None),
    ],
)
def test_ukbb_rules(description: str, expected: tuple[str, str] | None) -> None:
    assert load_layout("ukbb").classify(description) == expected


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("3D_GRE_TRA_in", ("dixon", "in")),
        ("3D_GRE_TRA_opp", ("dixon", "opp")),
        ("3D_GRE_TRA_W", ("dixon", "w")),
        ("3D_GRE_TRA_F", ("dixon", "f")),
        ("3D_GRE_TRA_in_s2", ("dixon", "in")),  # NIfTI file stem
        ("T2_HASTE_TRA", ("t2haste", "t2")),
        ("T2_HASTE_TRA_s1", ("t2haste", "t2")),
        ("3D_GRE_TRA_W_COMPOSED", None),  # scanner-stitched: ignored
        ("3D_GRE_TRA_fatsat", None),
        ("localizer", None),
    ],
)
def test_nako_rules(description: str, expected: tuple[str, str] | None) -> None:
    assert load_layout("nako").classify(description) == expected


def test_defaults() -> None:
    nako = load_layout("nako")
    assert nako.expected("dixon") == 4 and nako.expected("t2haste") == 2
    assert nako.folder_levels() == ("{participant_id}", "{visit}")
    ukbb = load_layout("ukbb")
    assert ukbb.expected("dixon") == 6 and ukbb.expected("t2haste") is None
    assert ukbb.require_manifest
    assert ukbb.limits == Limits(max_voxels=2**28, max_axis=4096)
    assert ukbb.zip_limits == ZipLimits(
        max_member_bytes=64 * 2**20,
        max_archive_bytes=1024 * 2**20,
        max_compression_ratio=100.0,
        max_members=20_000,
    )
    assert ukbb.zip_limits == ZipLimits()  # layouts.yaml and the dataclass agree
    assert load_layout("manifest").rules == ()
    assert set(LAYOUTS) == {"ukbb", "nako", "manifest"}
    # picklable: participant-visits and settings travel to Dask workers
    assert pickle.loads(pickle.dumps(nako)).classify("T2_HASTE_TRA") == ("t2haste", "t2")


def test_user_file_replaces_a_layout(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "nako:\n"
        "  folders: '{participant_id}'\n"
        "  default_visit: base\n"
        "  expected_stations: {dixon: 3}\n"
        "  series:\n"
        "    - {pattern: '(?i)wasser', sequence: dixon, channel: w}\n"
        "limits: {max_voxels: 1000, max_axis: 50}\n"
    )
    nako = load_layout("nako", path)
    assert nako.classify("WB_Wasser") == ("dixon", "w")
    assert nako.classify("3D_GRE_TRA_W") is None  # the default rules are replaced
    assert nako.folder_levels() == ("{participant_id}",) and nako.default_visit == "base"
    assert nako.expected("dixon") == 3
    assert nako.limits == Limits(1000, 50)
    assert nako.zip_limits == ZipLimits()  # keys left out keep their defaults
    assert load_layout("ukbb", path).classify("Dixon_noBH_F") == ("dixon", "f")  # untouched


def test_zip_limits_from_a_user_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "limits: {max_member_mb: 0.5, max_archive_mb: 2, max_compression_ratio: 8.5, "
        "max_members: 10}\n"
    )
    limits = load_layout("ukbb", path).zip_limits
    assert limits == ZipLimits(2**19, 2 * 2**20, 8.5, 10)
    assert load_layout("ukbb", path).limits == Limits()  # image limits keep their defaults


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("nako:\n  series:\n    - {pattern: '(', sequence: dixon, channel: w}\n", "bad pattern"),
        ("nako:\n  series:\n    - {pattern: 'x', sequence: Dixon, channel: w}\n", "a-z0-9"),
        ("nako:\n  series:\n    - {pattern: 'x'}\n", "needs pattern"),
        ("nako:\n  folders: '{visit}/{participant}'\n", "levels"),
        ("- a list\n", "mapping"),
        ("limits: {max_member_gb: 1}\n", "unknown key"),
        ("limits: {max_member_mb: 0}\n", "positive"),
        ("limits: {max_compression_ratio: many}\n", "positive"),
        ("limits: {max_archive_mb: true}\n", "positive"),
    ],
)
def test_bad_settings(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_layout("nako", path)


def test_unknown_layout() -> None:
    with pytest.raises(ValueError, match="unknown layout"):
        load_layout("oasis")
