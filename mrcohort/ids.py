"""Identifier validators: every value that becomes a path component or partition value.

One rule per kind of identifier, used by every layout, the store and the command line:

* participant id and visit: ``[A-Za-z0-9_-]+`` (they become folder and file names);
* names of sequences, channels and layouts: ``[a-z0-9_]+``;
* partition values and file keys (cohort, model_key): ``[A-Za-z0-9_.-]+`` without ``..``.
"""

from __future__ import annotations

import re

from mrcohort.errors import IngestError

__all__ = [
    "ID_PATTERN",
    "NAME_PATTERN",
    "PARTITION_PATTERN",
    "check_name",
    "check_partition_value",
    "is_id",
    "is_name",
    "is_partition_value",
    "validate_participant_id",
    "validate_visit",
]

ID_PATTERN = "[A-Za-z0-9_-]+"
NAME_PATTERN = "[a-z0-9_]+"
PARTITION_PATTERN = "[A-Za-z0-9_.-]+"

_ID = re.compile(ID_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_PARTITION = re.compile(PARTITION_PATTERN)


def is_id(value: object) -> bool:
    """True for a string that is a valid participant id or visit."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_name(value: object) -> bool:
    """True for a valid sequence, channel or layout name."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def is_partition_value(value: object) -> bool:
    """True for a value safe as a hive partition value or file key (no ``..``)."""
    return isinstance(value, str) and _PARTITION.fullmatch(value) is not None and ".." not in value


def validate_participant_id(participant_id: object) -> str:
    """Return ``participant_id`` if it is safe as a path component.

    Raises
    ------
    IngestError
        ``BAD_PARTICIPANT_ID``.
    """
    if not is_id(participant_id):
        raise IngestError(
            "BAD_PARTICIPANT_ID", f"participant id {participant_id!r} is not {ID_PATTERN}"
        )
    return participant_id  # type: ignore[return-value]


def validate_visit(visit: object) -> str:
    """Return ``visit`` if it is safe as a path component.

    Raises
    ------
    IngestError
        ``BAD_VISIT``.
    """
    if not is_id(visit):
        raise IngestError("BAD_VISIT", f"visit {visit!r} is not {ID_PATTERN}")
    return visit  # type: ignore[return-value]


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a valid name, else raise ``ValueError`` naming ``what``."""
    if not is_name(value):
        raise ValueError(f"{what} {value!r} is not {NAME_PATTERN}")
    return value  # type: ignore[return-value]


def check_partition_value(value: object, what: str) -> str:
    """Return ``value`` if it is a safe partition value, else raise ``ValueError``."""
    if not is_partition_value(value):
        raise ValueError(f"{what} must match {PARTITION_PATTERN} without '..', got {value!r}")
    return value  # type: ignore[return-value]
