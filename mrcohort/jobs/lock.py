"""One writer per store: an exclusive ``flock`` on ``<store>/.mrcohort.lock`` that names its
holder, and :func:`holder` to ask who holds it.

The operating system drops the lock when the holding process ends, however it ends (a
SIGKILL, an ``scancel``, a lost node), so a dead run never leaves a stale lock behind. The
lock file itself stays; its contents (the holder JSON) only mean something while it is locked.
On NFS, Linux emulates ``flock`` with POSIX byte-range locks, which NFSv4 shares across hosts.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from mrcohort.errors import MrcohortError

__all__ = [
    "LOCK_NAME",
    "StoreBusy",
    "StoreLock",
    "describe_holder",
    "holder",
    "holder_summary",
    "utc_iso",
]

#: The lock file's name inside a store.
LOCK_NAME = ".mrcohort.lock"
#: How long a non-waiting acquire retries before it reports the store busy: a :func:`holder`
#: probe holds the lock for microseconds, which must not read as "busy".
_GRACE_S = 0.2
_RETRY_S = 0.02


class StoreBusy(MrcohortError):
    """Another process holds the store's lock (code ``STORE_BUSY``)."""

    def __init__(self, message: str) -> None:
        super().__init__("STORE_BUSY", message, stage="run")


def utc_iso(epoch: float) -> str:
    """``epoch`` seconds as a UTC ISO 8601 string to the second: ``2026-12-01T15:45:00Z``."""
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def holder_summary(info: dict | None) -> str:
    """Who a holder JSON names: ``run <id> (pid 123 on host h, started 2026-...Z)``."""
    info = info or {}
    if info.get("run_id"):
        who = f"run {info['run_id']}"
    elif info.get("command"):
        who = repr(info["command"])
    else:
        who = "another process"
    details = ", ".join(
        part
        for part in (
            f"pid {info['pid']} on host {info.get('host', '?')}" if "pid" in info else "",
            f"started {info['started_at']}" if info.get("started_at") else "",
        )
        if part
    )
    return f"{who} ({details})" if details else who


def describe_holder(store: Path, info: dict | None) -> str:
    """The one-line :class:`StoreBusy` message for ``store`` held by ``info`` (holder JSON).

    ``store /x is in use by run <id> (pid 123 on host h, started ...); wait for it or stop it``
    """
    return f"store {store} is in use by {holder_summary(info)}; wait for it or stop it"


def _lock_path(store: Path) -> Path:
    return Path(store) / LOCK_NAME


def _try_flock(fd: int, mode: int = fcntl.LOCK_EX) -> bool:
    """Take the lock on ``fd`` without blocking; False when someone else has it."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_info(path: Path) -> dict:
    """The holder JSON in the lock file; ``{}`` when empty or half written."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def holder(store: Path) -> dict | None:
    """Who holds ``store``'s lock now (the holder JSON, ``{}`` if it wrote none yet), or None.

    Probes with a non-blocking shared ``flock`` (it needs only read access, also on NFS) on a
    fresh descriptor, released at once, so it never leaves the lock taken; a lock held by
    this very process also counts as held.
    """
    path = _lock_path(store)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if _try_flock(fd, fcntl.LOCK_SH):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
    finally:
        os.close(fd)
    for _ in range(3):  # the holder may be between its truncate and its write
        info = _read_info(path)
        if info:
            return info
        time.sleep(_RETRY_S)
    return {}


class StoreLock:
    """Exclusive lock on a store for the life of a ``with`` block.

    Parameters
    ----------
    store
        The store folder (created if missing); the lock file is ``<store>/.mrcohort.lock``.
    wait
        When another process holds the lock: False raises :class:`StoreBusy` at once (after
        a short grace for :func:`holder` probes); True polls until it is free.
    timeout_s
        With ``wait``: give up after this many seconds with :class:`StoreBusy` (None: never).
    run_id
        The run taking the lock, recorded in the holder JSON.
    command
        The command line recorded in the holder JSON (default: ``sys.argv`` joined).
    poll_s
        Seconds between attempts while waiting.

    Examples
    --------
    >>> with StoreLock(store, run_id=run_id):  # doctest: +SKIP
    ...     run_the_job()
    """

    def __init__(
        self,
        store: Path,
        *,
        wait: bool = False,
        timeout_s: float | None = None,
        run_id: str | None = None,
        command: str | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.store = Path(store)
        self.wait = wait
        self.timeout_s = timeout_s
        self.run_id = run_id
        self.command = command if command is not None else " ".join(sys.argv)
        self.poll_s = poll_s
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """The lock file."""
        return _lock_path(self.store)

    def holder_info(self) -> dict:
        """The holder JSON this lock writes when it is taken."""
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": utc_iso(time.time()),
            "run_id": self.run_id,
            "command": self.command,
        }

    def acquire(self) -> None:
        """Take the lock and write the holder JSON; :class:`StoreBusy` if it stays taken."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this StoreLock")
        self.store.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            self._wait_for(fd)
            data = (json.dumps(self.holder_info()) + "\n").encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)  # closing drops the lock if it was taken
            raise
        self._fd = fd

    def _wait_for(self, fd: int) -> None:
        start = time.monotonic()
        limit = (self.timeout_s if self.timeout_s is not None else float("inf")) if self.wait else 0
        while not _try_flock(fd):
            waited = time.monotonic() - start
            if waited >= max(limit, _GRACE_S):
                message = describe_holder(self.store, _read_info(self.path))
                if self.wait:
                    message += f" (waited {waited:.0f}s)"
                raise StoreBusy(message)
            pause = _RETRY_S if waited < _GRACE_S else min(self.poll_s, limit - waited)
            time.sleep(max(pause, _RETRY_S))

    def release(self) -> None:
        """Clear the holder JSON and drop the lock (no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
