"""Tests for mrcohort.io.zips: members read as zipfile reads them, broken ones refused alike."""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from mrcohort.io.zips import ZipMembers

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
