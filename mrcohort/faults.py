"""Fail points: named places in the job where a rehearsal makes the process die, a write fail
as on a full disk, or a step pause. Set through the environment, so that they reach the Dask
worker processes and a ``mrcohort run`` started by a test (or by an operator rehearsing a
failure on a copy of a store)::

    MRCOHORT_FAILPOINTS="flush.data_written=kill@2,store.write.qc=enospc"
    MRCOHORT_FAILPOINTS_ONCE=/tmp/fired    # optional: each point fires once, all processes

Actions:

``kill``
    ``SIGKILL`` of this very process: nothing runs after it (no ``finally``, no atexit), as
    with a node failure, the OOM killer or ``kill -9``.
``enospc``
    ``OSError`` with ``errno.ENOSPC`` naming the file being written, as a full disk raises.
``sleep:S``
    Pause ``S`` seconds (keeps a run busy, e.g. to hold the store's lock).

``@n`` fires at the *n*-th time this process passes the point (default: the first); other
passes do nothing. With ``MRCOHORT_FAILPOINTS_ONCE`` a point fires at most once across every
process sharing that folder: the first to create ``<folder>/<point>`` (its pid inside) fires —
a worker killed in a stage is then not killed again on the worker that retries the task.

Unset (always, in production) a point costs one environment lookup. The points are listed in
:data:`POINTS`; a name not there is an error, so a typo cannot silently rehearse nothing.

Hand-written: the fail-point libraries (Rust's ``fail``, FreeBSD's ``fail(9)``) have no
maintained Python counterpart.
"""

from __future__ import annotations

import errno
import functools
import math
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV", "ENV_ONCE", "POINTS", "FailpointError", "check_failpoints", "failpoint", "parse"]

ENV = "MRCOHORT_FAILPOINTS"
ENV_ONCE = "MRCOHORT_FAILPOINTS_ONCE"

#: Every point and where it sits (docs/reliability.md shows this list).
POINTS: dict[str, str] = {
    "run.planned": "driver: the plan is printed; nothing is submitted and no flush written "
    "(the run's config, log and models row are)",
    "flush.journaled": "driver: a flush's journal entry is on disk, none of its data files",
    "flush.data_written": "driver: a flush's data files are written, its ledger file not",
    "flush.committed": "driver: a flush's ledger file is written; the rows it supersedes are "
    "not removed yet and its journal entry is still there",
    "flush.rolling_back": "driver: rolling back an uncommitted flush (in a run's recovery, or "
    "after a failed write): its data files are deleted, its journal entry not yet",
    "run.flushed": "driver: the last flush is committed; no accounting check, no runs row yet",
    "stage.prepare": "worker: prepare has read and stitched a visit (scratch written), its "
    "result not yet returned",
    "stage.segment": "worker: the segmentation is written into the store, the result not yet "
    "returned",
    "stage.measure": "worker: the rows are measured and the QC picture written, the result not "
    "yet returned",
    "store.write.<table>": "any: a Parquet file of <table> is written to its temp file, not yet "
    "renamed into place",
}

_ACTIONS = ("kill", "enospc", "sleep")


class FailpointError(ValueError):
    """``MRCOHORT_FAILPOINTS`` does not parse or names an unknown point."""


@dataclass(frozen=True)
class Rule:
    """One point's action: fire at the ``nth`` pass (``seconds`` for ``sleep``)."""

    action: str
    nth: int = 1
    seconds: float = 0.0


def _known(name: str) -> bool:
    from mrcohort.schemas.tables import SCHEMAS  # the tables a store.write point can name

    return name in POINTS or (name.startswith("store.write.") and name[12:] in SCHEMAS)


def parse(text: str) -> dict[str, Rule]:
    """``name=action[@n],...`` -> rules; `FailpointError` on anything else."""
    rules: dict[str, Rule] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, spec = part.partition("=")
        if not sep or not _known(name.strip()):
            raise FailpointError(f"{ENV}: unknown fail point in {part!r} (known: {sorted(POINTS)})")
        spec, _, nth = spec.strip().partition("@")
        action, _, arg = spec.partition(":")
        try:
            rule = Rule(action, int(nth or 1), float(arg or 0))
        except ValueError:
            raise FailpointError(f"{ENV}: bad count or seconds in {part!r}") from None
        if (
            action not in _ACTIONS
            or rule.nth < 1
            or (action == "sleep") != bool(arg)
            or not 0 <= rule.seconds < math.inf
        ):
            raise FailpointError(
                f"{ENV}: {part!r}: the action is kill, enospc or sleep:SECONDS, then @N (N >= 1)"
            )
        if action == "enospc" and not name.strip().startswith("store.write."):
            raise FailpointError(f"{ENV}: {part!r}: enospc is for the store.write.<table> points")
        rules[name.strip()] = rule
    return rules


def check_failpoints() -> None:
    """``BAD_CONFIG`` (one line) when ``MRCOHORT_FAILPOINTS`` is set but wrong: checked when a
    job starts, so that a typo stops it instead of rehearsing nothing."""
    from mrcohort.errors import MrcohortError

    try:
        parse(os.environ.get(ENV, ""))
    except FailpointError as err:
        raise MrcohortError("BAD_CONFIG", str(err), stage="run") from None
    once = os.environ.get(ENV_ONCE)
    if once and not Path(once).is_dir():
        raise MrcohortError("BAD_CONFIG", f"{ENV_ONCE}: {once} is not a folder", stage="run")


_passes: Counter[str] = Counter()
_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _rules(text: str) -> dict[str, Rule]:
    return parse(text)


def _claim(name: str) -> bool:
    """With ``MRCOHORT_FAILPOINTS_ONCE``: True for the one process that fires ``name``."""
    folder = os.environ.get(ENV_ONCE)
    if not folder:
        return True
    try:
        fd = os.open(Path(folder, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        os.fsync(fh.fileno())
    return True


def failpoint(name: str, *, path: str | os.PathLike[str] | None = None) -> None:
    """Pass fail point ``name`` (see the module docstring); ``path``: the file an ``enospc``
    names."""
    text = os.environ.get(ENV)
    if not text:
        return
    rule = _rules(text).get(name)
    if rule is None:
        return
    with _lock:
        _passes[name] += 1
        fire = _passes[name] == rule.nth and _claim(name)
    if not fire:
        return
    if rule.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # the signal is delivered at once; never carry on meanwhile
    elif rule.action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else str(path))
    else:
        time.sleep(rule.seconds)
