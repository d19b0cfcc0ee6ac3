"""Zip members read fast: inflated straight from a memory map of the archive, CRC-checked.

``zipfile`` inflates with zlib through a file object per member: about 0.7 s for the 1,560
members (110 MB) of a UK Biobank Dixon zip on one core. Here each member's raw deflate stream
is sliced from a memory map of the archive and inflated in one call by libdeflate (the
``deflate`` package: about twice as fast as zlib; zlib when it is not installed), and its
CRC-32 and size are checked as ``zipfile`` checks them.

``zipfile`` does not hand out a member's raw bytes, so finding them behind the local file
header (the fixed 30-byte record of the zip format, APPNOTE 4.3.7) is hand-written. Members
it does not fully understand — encrypted, another compression method, a local header that
disagrees with the central directory or overlaps the next member — are read by ``zipfile``
itself, so they fail (or not) exactly as with ``zipfile``.

Hostile archives are refused from the central directory, before anything is inflated
(:func:`check_zip_sizes`, :class:`ZipLimits`): a member or an archive declaring more bytes
than the limits, or a compression ratio no image data has (a zip bomb: 2 MB declaring
2 GiB). A directory that lies (a member inflating past its declared size) costs no more
than the declared size: inflation stops there and the member is corrupt.
"""

from __future__ import annotations

import mmap
import struct
import zipfile
import zlib
from dataclasses import dataclass

try:  # libdeflate: whole-buffer inflate, about twice as fast as zlib
    import deflate as _libdeflate
except ImportError:  # pragma: no cover - a dependency; zlib gives the same bytes
    _libdeflate = None

__all__ = ["ZipLimits", "ZipMembers", "check_zip_sizes", "zip_directory_entries"]

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # APPNOTE 4.3.7, as zipfile.structFileHeader
_LOCAL_MAGIC = b"PK\x03\x04"
_ENCRYPTED = 0x1
_UTF8 = 0x800
_MIB = 2**20
#: Compression ratios are checked only above this declared size (bytes): a small member or
#: archive cannot cost much memory, whatever its ratio (a manifest of repeated lines).
RATIO_CHECKED_FROM = _MIB


@dataclass(frozen=True)
class ZipLimits:
    """Largest zip accepted, checked from its central directory before inflating anything.

    The defaults leave wide room for real UK Biobank field-20201 zips (about 1,560 members
    of about 70 KB, 100-200 MB inflated; DICOM deflates 2-4x) and stop zip bombs.

    Attributes
    ----------
    max_member_bytes
        Declared size of any one member, inflated or compressed, inclusive (the layouts
        that read DICOM files from disk hold each file to it too).
    max_archive_bytes
        Declared (inflated) size of all members together, inclusive.
    max_compression_ratio
        Declared size / compressed size of a member, and of the archive, inclusive;
        checked only from :data:`RATIO_CHECKED_FROM` bytes declared.
    max_members
        Entries of the central directory, inclusive (checked before ``zipfile`` parses it).
    """

    max_member_bytes: int = 64 * _MIB
    max_archive_bytes: int = 1024 * _MIB
    max_compression_ratio: float = 100.0
    max_members: int = 20_000


def zip_directory_entries(fp: object) -> int | None:
    """Entries the central directory of the open zip file ``fp`` declares (from its end
    record, ZIP64 included); ``None`` when no end record is found (not a zip)."""
    try:
        end = zipfile._EndRecData(fp)  # type: ignore[attr-defined]  # stable since Python 2
    except (OSError, struct.error):
        return None
    return None if not end else int(end[zipfile._ECD_ENTRIES_TOTAL])  # type: ignore[attr-defined]


def check_zip_sizes(infos: list[zipfile.ZipInfo], limits: ZipLimits) -> str | None:
    """Why the declared sizes of ``infos`` (a central directory) exceed ``limits``;
    ``None`` when they are within them. Nothing is read or inflated."""
    if len(infos) > limits.max_members:
        return f"{len(infos)} members, limit {limits.max_members}"
    total = packed = 0
    for info in infos:
        size, stored = int(info.file_size), max(int(info.compress_size), 1)
        if max(size, stored) > limits.max_member_bytes:  # a stored member is copied whole
            return (
                f"member {info.filename!r} declares {_mib(max(size, stored))}, "
                f"limit {_mib(limits.max_member_bytes)} per member"
            )
        if size >= RATIO_CHECKED_FROM and size / stored > limits.max_compression_ratio:
            return (
                f"member {info.filename!r} declares {_mib(size)} from {stored} bytes "
                f"(ratio {size / stored:.0f}, limit {limits.max_compression_ratio:g})"
            )
        total, packed = total + size, packed + stored
    if total > limits.max_archive_bytes:
        return f"members declare {_mib(total)} in all, limit {_mib(limits.max_archive_bytes)}"
    if total >= RATIO_CHECKED_FROM and total / max(packed, 1) > limits.max_compression_ratio:
        return (
            f"members declare {_mib(total)} from {packed} bytes "
            f"(ratio {total / max(packed, 1):.0f}, limit {limits.max_compression_ratio:g})"
        )
    return None


def _mib(n: int) -> str:
    return f"{n / _MIB:.1f} MiB"


class ZipMembers:
    """Read members of an open zip (``with ZipMembers(zf) as members: members.read(info)``).

    :meth:`read` raises what ``zipfile`` raises for a broken member: ``zipfile.BadZipFile``
    (bad header, size or CRC), ``zlib.error`` (a corrupt deflate stream), ``EOFError``,
    ``OSError``.
    """

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self._zf = zf
        self._map = _memory_map(zf.fp)
        self._limits = _data_limits(zf, len(self._map)) if self._map is not None else {}

    def __enter__(self) -> ZipMembers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def read(self, info: zipfile.ZipInfo) -> bytes | bytearray:
        """The member's bytes (checked as ``zipfile`` checks them)."""
        if self._map is None:
            return self._zf.read(info)
        view = memoryview(self._map)
        try:
            raw = _raw_member(view, info, self._limits.get(info.header_offset, len(view)))
            try:
                return self._zf.read(info) if raw is None else _decoded(info, raw)
            finally:
                if raw is not None:
                    raw.release()
        finally:
            view.release()


def _memory_map(fp: object) -> mmap.mmap | None:
    """A read-only memory map of the file behind the zip; None when it cannot be mapped."""
    try:
        return mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None


def _data_limits(zf: zipfile.ZipFile, size: int) -> dict[int, int]:
    """Header offset of each member -> where the next member (or the directory) starts."""
    starts = sorted({i.header_offset for i in zf.infolist()})
    directory = getattr(zf, "start_dir", size)
    return dict(zip(starts, [*starts[1:], directory], strict=True))


def _raw_member(view: memoryview, info: zipfile.ZipInfo, limit: int) -> memoryview | None:
    """The member's stored bytes behind its local header; None when ``zipfile`` should read
    it (encrypted, not stored or deflated, a header that disagrees, data past ``limit``)."""
    if info.flag_bits & _ENCRYPTED or info.compress_type not in (
        zipfile.ZIP_STORED,
        zipfile.ZIP_DEFLATED,
    ):
        return None
    offset = info.header_offset
    if offset + _LOCAL_HEADER.size > len(view):
        return None
    fields = _LOCAL_HEADER.unpack_from(view, offset)
    magic, name_len, extra_len = fields[0], fields[10], fields[11]
    start = offset + _LOCAL_HEADER.size
    name = view[start : start + name_len].tobytes()
    encoding = "utf-8" if info.flag_bits & _UTF8 else "cp437"
    if magic != _LOCAL_MAGIC or name != info.orig_filename.encode(encoding, "replace"):
        return None
    start += name_len + extra_len
    stop = start + info.compress_size
    return None if stop > min(limit, len(view)) else view[start:stop]


def _decoded(info: zipfile.ZipInfo, raw: memoryview) -> bytes | bytearray:
    """Inflate (or take) a member's bytes and check their size and CRC-32."""
    if info.compress_type == zipfile.ZIP_STORED:
        data: bytes | bytearray = raw.tobytes()
    else:
        data = _inflate(raw, info.file_size)
    if len(data) != info.file_size:
        raise zipfile.BadZipFile(f"Bad size for file {info.filename!r}")
    if _crc32(data) != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return data


def _inflate(raw: memoryview, size: int) -> bytes | bytearray:
    """A raw deflate stream inflated to at most ``size`` + 1 bytes (a stream longer than
    its directory says stops there and fails the size check: a lying directory costs no
    more than it declares)."""
    if _libdeflate is None:
        inflater = zlib.decompressobj(-15)
        return inflater.decompress(raw, size + 1)
    try:
        return _libdeflate.deflate_decompress(raw, size)
    except _libdeflate.DeflateError as exc:  # corrupt or longer than the directory says
        raise zlib.error(f"{exc}: corrupt, or longer than its declared {size} bytes") from exc


def _crc32(data: bytes | bytearray) -> int:
    return zlib.crc32(data) if _libdeflate is None else _libdeflate.crc32(data)
