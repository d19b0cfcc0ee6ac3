"""Fingerprints: a cheap identity of an input's files (relative path, size, modification and
status-change time), computed without reading them.

The content hash (``input_sha256``) stays the identity of an input; a fingerprint is only the
key under which the ledger caches that hash, so that a re-run over 100,000 participant-visits
stats their files instead of hashing terabytes. A changed fingerprint means "hash again", not
"changed": the job re-reads the input and compares hashes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from mrcohort.cohort.layouts import get_layout
from mrcohort.cohort.layouts.base import visible_files
from mrcohort.cohort.records import ParticipantVisit, relative_path

__all__ = ["input_fingerprint", "path_fingerprint"]


def _stat_line(path: Path, root: Path) -> str:
    rel = relative_path(path, root)
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{rel}|unreadable:{exc.errno}"
    return f"{rel}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def _digest(lines: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


def input_fingerprint(pv: ParticipantVisit) -> str:
    """Fingerprint of a participant-visit: its layout, source, manifest rows (if any) and the
    path, size, modification and status-change time of every file that makes up its input
    (``ctime`` catches a same-size file written back with its old ``mtime``)."""
    lines = [f"layout={pv.layout}", f"source={pv.relative_source}"]
    lines += sorted(
        f"entry={e.sequence}/{e.channel}/{e.station}/{relative_path(e.path, pv.root)}"
        for e in pv.entries
    )
    lines += sorted(_stat_line(f, pv.root) for f in get_layout(pv.layout).input_files(pv))
    return _digest(lines)


def path_fingerprint(path: Path, root: Path) -> str:
    """Fingerprint of an input discovery rejected: the file, or every file below the folder."""
    return _digest(
        [f"source={relative_path(path, root)}", *(_stat_line(f, root) for f in visible_files(path))]
    )
