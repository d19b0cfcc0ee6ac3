"""Errors that a batch turns into a ``failures`` row (code + stage + message), and the one
guard that maps any exception of a stage to a code."""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from mrcohort.failure_codes import environment_codes

log = logging.getLogger(__name__)


class MrcohortError(Exception):
    """An expected, user-facing failure with a stable machine-readable ``code``.

    Parameters
    ----------
    code
        Short UPPER_SNAKE identifier, stable across versions (documented in docs/failures.md).
    message
        One human-readable line.
    stage
        Pipeline stage that raised it: ``ingest``, ``stitch``, ``segment``, ``measure``, ``write``.
    """

    def __init__(self, code: str, message: str, *, stage: str = "ingest") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.stage = stage


class IngestError(MrcohortError):
    """Input files unreadable, incomplete or inconsistent."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, stage="ingest")


class StitchError(MrcohortError):
    """Stations cannot be put onto one grid."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, stage="stitch")


class SegmentationError(MrcohortError):
    """Model folder missing/incomplete or inference failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, stage="segment")


#: Codes of failures caused by the environment rather than the input (retried on a re-run):
#: the ``retryable`` entries of :data:`mrcohort.failure_codes.FAILURE_CODES`.
ENVIRONMENT_CODES: frozenset[str] = environment_codes()


def as_error(exc: BaseException, stage: str) -> MrcohortError:
    """The coded error for any exception raised in ``stage``.

    A :class:`MrcohortError` is returned as it is; ``MemoryError`` becomes
    ``OUT_OF_MEMORY``, a full disk or quota ``DISK_FULL``, ``PermissionError``
    ``PERMISSION_DENIED``; anything else (a bug or
    an unforeseen input) ``UNEXPECTED_ERROR`` with the exception's type and first line.
    """
    if isinstance(exc, MrcohortError):
        return exc
    if isinstance(exc, MemoryError):
        return MrcohortError("OUT_OF_MEMORY", f"ran out of memory: {exc}", stage=stage)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return MrcohortError(
            "DISK_FULL",
            f"{exc.filename or 'a file'}: no space left on its device (or quota exceeded); free "
            "space and run again",
            stage=stage,
        )
    if isinstance(exc, PermissionError):
        return MrcohortError(
            "PERMISSION_DENIED",
            f"{exc.filename or 'a file'}: not readable or writable (permission denied); fix "
            "its permissions and run again",
            stage=stage,
        )
    first = str(exc).splitlines()[0] if str(exc) else ""
    return MrcohortError("UNEXPECTED_ERROR", f"{type(exc).__name__}: {first}", stage=stage)


@contextmanager
def guard(stage: str) -> Iterator[None]:
    """Re-raise any exception of the block as a coded :class:`MrcohortError` of ``stage``.

    The one exception → code mapping every stage uses (:func:`as_error`), so one bad
    participant becomes one failures row and never stops a batch::

        with guard("stitch"):
            stitched = stitch_channels(...)
    """
    try:
        yield
    except MrcohortError:
        raise
    except Exception as exc:  # every unforeseen error becomes a code; the batch goes on
        err = as_error(exc, stage)
        if err.code == "UNEXPECTED_ERROR":  # the others are expected: no traceback
            log.exception("unexpected error in stage %s", stage)
        raise err from exc
