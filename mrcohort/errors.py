"""Errors that a batch turns into a ``failures`` row (code + stage + message)."""

from __future__ import annotations


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
