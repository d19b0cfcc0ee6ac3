"""Hostile inputs built in the test: zip bombs, lying zip directories, zips with too many
entries, image headers with absurd sizes or broken geometry. Nothing binary is stored.

A zip bomb here is real: its member inflates to every byte it declares. The deflate stream
is one full-flushed segment of zeros repeated (a full flush byte-aligns the stream and
makes the segment independent of what came before), closed by an empty final block: a
2 GiB member is built in well under a second.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk

_SEGMENT = 16 * 2**20  # bytes of zeros per repeated deflate segment
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # zipfile.structFileHeader
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # zipfile.structCentralDir
_END = struct.Struct("<4s4H2LH")  # zipfile.structEndArchive


def zeros_deflate(size: int) -> tuple[bytes, int]:
    """``(raw deflate stream, CRC-32)`` of ``size`` zero bytes (a multiple of 16 MiB)."""
    if size % _SEGMENT:
        raise ValueError(f"size must be a multiple of {_SEGMENT}")
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = packer.compress(bytes(_SEGMENT)) + packer.flush(zlib.Z_FULL_FLUSH)
    tail = packer.flush(zlib.Z_FINISH)
    zeros, crc = bytes(_SEGMENT), 0
    for _ in range(size // _SEGMENT):  # CRC-32 of the inflated bytes, 16 MiB at a time
        crc = zlib.crc32(zeros, crc)
    return segment * (size // _SEGMENT) + tail, crc


def raw_zip(
    path: Path,
    members: Mapping[str, tuple[bytes, int, int]],
) -> Path:
    """Write a zip of deflated members given as ``name -> (raw deflate stream, CRC-32,
    declared size)``: the declared size goes into the directories as it is (it may lie)."""
    body, central = bytearray(), bytearray()
    for name, (raw, crc, size) in members.items():
        encoded = name.encode()
        offset = len(body)
        body += _LOCAL.pack(
            b"PK\x03\x04", 20, 0, 0, 8, 0, 0x21, crc, len(raw), size, len(encoded), 0
        )
        body += encoded + raw
        central += _CENTRAL.pack(
            b"PK\x01\x02", 20, 3, 20, 0, 0, 8, 0, 0x21, crc, len(raw), size,
            len(encoded), 0, 0, 0, 0, 0o644 << 16, offset,
        )  # fmt: skip
        central += encoded
    end = _END.pack(b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(body), 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(body + central + end))
    return path


def deflated(data: bytes) -> tuple[bytes, int, int]:
    """``(raw deflate stream, CRC-32, size)`` of ``data`` (an honest member)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(), zlib.crc32(data), len(data)


def zip_bomb(path: Path, *, declared: int = 2**31, member: str = "0001.dcm") -> Path:
    """A UK Biobank-shaped zip (manifest + one DICOM-named member) whose member really
    inflates to ``declared`` zero bytes (2 GiB by default, about 2 MB on disk)."""
    raw, crc = zeros_deflate(declared)
    manifest = f"filename\n{member}\n".encode()
    return raw_zip(path, {"manifest.csv": deflated(manifest), member: (raw, crc, declared)})


def lying_zip(path: Path, *, actual: int = 2**31, declared: int = 70_000) -> Path:
    """A zip whose DICOM-named member declares ``declared`` bytes (a slice's size) but
    inflates to ``actual`` zero bytes."""
    raw, crc = zeros_deflate(actual)
    manifest = b"filename\n0001.dcm\n"
    return raw_zip(path, {"manifest.csv": deflated(manifest), "0001.dcm": (raw, crc, declared)})


def with_entry_count(path: Path, entries: int) -> Path:
    """Rewrite the end record of the (plain, comment-free) zip at ``path`` to declare
    ``entries`` members (the directory itself is left as it is)."""
    data = bytearray(path.read_bytes())
    end = len(data) - _END.size
    if data[end : end + 4] != b"PK\x05\x06":
        raise ValueError(f"{path}: no plain end record")
    count = min(entries, 0xFFFF)
    struct.pack_into("<2H", data, end + 8, count, count)
    path.write_bytes(bytes(data))
    return path


def nifti_with_header(
    path: Path,
    *,
    pixdim: tuple[float, float, float] | None = None,
    srow: np.ndarray | None = None,
    dims: tuple[int, ...] | None = None,
    datatype: int | None = None,
) -> Path:
    """A small float32 NIfTI-1 file (4 x 5 x 6 voxels, 2 x 2 x 3 mm) with header fields
    overwritten in place: ``pixdim[1:4]``, the sform (qform code set to 0, ``srow``
    3 x 4), ``dim`` or ``datatype`` — what ITK and nibabel would refuse to write."""
    img = sitk.GetImageFromArray(np.ones((6, 5, 4), np.float32))
    img.SetSpacing((2.0, 2.0, 3.0))
    plain = path.with_name("plain_" + path.name.removesuffix(".gz"))
    sitk.WriteImage(img, str(plain))
    raw = bytearray(plain.read_bytes())
    plain.unlink()
    if pixdim is not None:
        struct.pack_into("<3f", raw, 80, *pixdim)
    if srow is not None:
        struct.pack_into("<2h", raw, 252, 0, 1)  # qform_code 0, sform_code 1
        struct.pack_into("<12f", raw, 280, *np.asarray(srow, dtype=float).ravel())
    if dims is not None:
        struct.pack_into("<8h", raw, 40, len(dims), *dims, *([1] * (7 - len(dims))))
    if datatype is not None:
        struct.pack_into("<h", raw, 70, datatype)
    if path.name.endswith(".gz"):
        import gzip

        path.write_bytes(gzip.compress(bytes(raw)))
    else:
        path.write_bytes(bytes(raw))
    return path
