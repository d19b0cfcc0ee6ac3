"""Tests for mrcohort.io.zips: members read as zipfile reads them, broken ones refused alike."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from mrcohort.io import zips
from mrcohort.io.zips import ZipLimits, ZipMembers, check_zip_sizes, zip_directory_entries
from tests.hostile import lying_zip, with_entry_count, zip_bomb

BROKEN = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


def members() -> dict[str, bytes]:
    rng = np.random.default_rng(5)
    return {
        "a.dcm": rng.integers(0, 4000, 5000, dtype="<u2").tobytes(),
        "sub/b.dcm": b"x" * 10_000,
        "empty.dcm": b"",
        "caf\u00e9.dcm": b"utf-8 name",
        "manifest.csv": b"filename\na.dcm\n",
    }


def write(path: Path, data: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, blob in data.items():
            zf.writestr(name, blob)
    return path


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_members_equal_zipfile(tmp_path: Path, compression: int) -> None:
    path = write(tmp_path / "a.zip", members(), compression)
    with zipfile.ZipFile(path) as zf, ZipMembers(zf) as reader:
        for info in zf.infolist():
            assert reader.read(info) == zf.read(info)


def test_other_compression_is_read_by_zipfile(tmp_path: Path) -> None:
    path = write(tmp_path / "a.zip", members(), zipfile.ZIP_BZIP2)
    with zipfile.ZipFile(path) as zf, ZipMembers(zf) as reader:
        assert [reader.read(i) for i in zf.infolist()] == [zf.read(i) for i in zf.infolist()]


def test_zip_in_memory_is_read_by_zipfile(tmp_path: Path) -> None:
    buf = io.BytesIO(write(tmp_path / "a.zip", members()).read_bytes())
    with zipfile.ZipFile(buf) as zf, ZipMembers(zf) as reader:
        assert reader.read(zf.getinfo("a.dcm")) == members()["a.dcm"]


def _corrupt(path: Path, name: str, where: str) -> Path:
    """Flip bytes of one member: its compressed data or its directory CRC."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    raw = bytearray(path.read_bytes())
    if where == "data":
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        for k in range(start + 5, start + 25):
            raw[k] ^= 0x5A
    else:  # the CRC in the local header and the central directory
        crc = info.CRC.to_bytes(4, "little")
        raw = bytearray(bytes(raw).replace(crc, (info.CRC ^ 1).to_bytes(4, "little")))
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("where", ["data", "crc"])
def test_broken_member_fails_like_zipfile(tmp_path: Path, where: str) -> None:
    path = _corrupt(write(tmp_path / "a.zip", members()), "a.dcm", where)
    with zipfile.ZipFile(path) as zf, ZipMembers(zf) as reader:
        info = zf.getinfo("a.dcm")
        with pytest.raises(BROKEN):
            zf.read(info)
        with pytest.raises(BROKEN):
            reader.read(info)
        assert reader.read(zf.getinfo("sub/b.dcm")) == b"x" * 10_000


def test_truncated_archive_fails_like_zipfile(tmp_path: Path) -> None:
    path = write(tmp_path / "a.zip", {"a.dcm": members()["a.dcm"], "z.dcm": b"z" * 100})
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    data = path.read_bytes()
    # cut inside the first member but keep a readable directory: shift the directory back
    cut = infos[0].header_offset + 30 + len("a.dcm") + infos[0].compress_size // 2
    directory = data.index(b"PK\x01\x02")
    broken = tmp_path / "cut.zip"
    broken.write_bytes(data[:cut] + data[directory:])
    try:
        zf = zipfile.ZipFile(broken)
    except zipfile.BadZipFile:
        pytest.skip("zipfile refuses the whole archive")
    with zf, ZipMembers(zf) as reader:
        with pytest.raises(BROKEN):
            zf.read(zf.getinfo("a.dcm"))
        with pytest.raises(BROKEN):
            reader.read(zf.getinfo("a.dcm"))


# --------------------------------------------------------------------------- hostile zips


def _info(name: str, size: int, packed: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.file_size, info.compress_size = size, packed
    return info


def test_declared_sizes_within_limits_pass(tmp_path: Path) -> None:
    path = write(tmp_path / "a.zip", members())
    with zipfile.ZipFile(path) as zf:
        assert check_zip_sizes(zf.infolist(), ZipLimits()) is None
    # a UK Biobank-sized zip: 1,600 slices of 70 KB at a ratio of 3
    real = [_info(f"{k}.dcm", 70_000, 23_000) for k in range(1_600)]
    assert check_zip_sizes(real, ZipLimits()) is None


@pytest.mark.parametrize(
    ("infos", "limits", "words"),
    [
        ([_info("bomb.dcm", 2**31, 2_000_000)], ZipLimits(), "per member"),
        ([_info("a.dcm", 64 * 2**20 + 1, 2**26)], ZipLimits(), "per member"),
        ([_info("a.dcm", 10, 64 * 2**20 + 1)], ZipLimits(), "per member"),
        (
            [_info(f"{k}.dcm", 2**20, 2**19) for k in range(6)],
            ZipLimits(max_archive_bytes=5 * 2**20),
            "in all",
        ),
        ([_info("z.dcm", 2**20, 2**20 // 101)], ZipLimits(), "ratio 10"),
        (
            [_info(f"{k}.dcm", 2**19, 2**19 // 200) for k in range(4)],
            ZipLimits(),
            "members declare 2.0 MiB",
        ),
        ([_info(f"{k}.dcm", 10, 10) for k in range(11)], ZipLimits(max_members=10), "11 members"),
    ],
    ids=[
        "bomb",
        "member",
        "compressed-member",
        "archive",
        "member-ratio",
        "archive-ratio",
        "members",
    ],
)
def test_declared_sizes_above_limits_are_refused(
    infos: list[zipfile.ZipInfo], limits: ZipLimits, words: str
) -> None:
    reason = check_zip_sizes(infos, limits)
    assert reason is not None and words in reason


def test_limits_are_inclusive() -> None:
    limits = ZipLimits(max_member_bytes=2**20, max_archive_bytes=2**20, max_compression_ratio=4)
    assert check_zip_sizes([_info("a.dcm", 2**20, 2**18)], limits) is None
    assert check_zip_sizes([_info("a.dcm", 2**20, 2**18 - 1)], limits) is not None


def test_small_members_are_not_held_to_the_ratio() -> None:
    # a manifest of repeated lines deflates 300x; under 1 MiB it costs nothing
    assert check_zip_sizes([_info("manifest.csv", 300_000, 1_000)], ZipLimits()) is None


def test_entry_count_is_read_from_the_end_record(tmp_path: Path) -> None:
    path = with_entry_count(write(tmp_path / "a.zip", members()), 60_000)
    with path.open("rb") as fp:
        assert zip_directory_entries(fp) == 60_000
    (tmp_path / "no.zip").write_bytes(b"not a zip" * 100)
    with (tmp_path / "no.zip").open("rb") as fp:
        assert zip_directory_entries(fp) is None


@pytest.mark.parametrize("inflater", ["libdeflate", "zlib"])
def test_lying_directory_costs_no_more_than_it_declares(
    tmp_path: Path, inflater: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if inflater == "zlib":
        monkeypatch.setattr(zips, "_libdeflate", None)
    path = lying_zip(tmp_path / "lie.zip", actual=256 * 2**20, declared=70_000)
    with zipfile.ZipFile(path) as zf, ZipMembers(zf) as reader:
        info = zf.getinfo("0001.dcm")
        tracemalloc.start()
        try:
            with pytest.raises(BROKEN):
                reader.read(info)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 4 * 2**20  # 256 MiB inflated would be 64 times more


def test_zip_bomb_is_real(tmp_path: Path) -> None:
    """The test bomb is no fake: its member inflates to the 64 MiB it declares."""
    path = zip_bomb(tmp_path / "bomb.zip", declared=64 * 2**20)
    assert path.stat().st_size < 2**20
    with zipfile.ZipFile(path) as zf, ZipMembers(zf) as reader:
        data = reader.read(zf.getinfo("0001.dcm"))
        assert len(data) == 64 * 2**20 and not any(data[:: 2**16])
