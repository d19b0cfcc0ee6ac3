"""Files: atomic writes shared by every writer (images, zips, Parquet files) and content hashes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_target(
    dest: Path, *, staging_dir: Path | None = None, suffix: str = ".tmp"
) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces ``dest`` in one ``os.replace``.

    The temp file lives in ``staging_dir`` (default: beside ``dest``; it must be on the same
    filesystem) and gets the usual permissions (0666 minus the umask) rather than
    ``mkstemp``'s 0600, so written files are readable like any other. On an exception the
    temp file is removed and ``dest`` is left as it was.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    folder = staging_dir or dest.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".tmp-{dest.name}-", suffix=suffix, dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: str | os.PathLike[str], *, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make the entries of folder ``path`` (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_durably(dest: Path, value: object) -> None:
    """Write ``value`` as JSON to ``dest`` atomically, on disk (file and folder fsynced)
    before returning: a journal entry that must exist before what it describes."""
    with atomic_target(dest, suffix=".json") as tmp, open(tmp, "w") as fh:
        fh.write(json.dumps(value))
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(dest.parent)
