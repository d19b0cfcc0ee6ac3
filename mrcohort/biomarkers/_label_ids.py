"""Resolve and check the label ids a biomarker function is asked to measure."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mrcohort.labels import MRSEG_LABELS
from mrcohort.labels import label_ids as all_label_ids


def resolve_label_ids(label_ids: Iterable[int] | None) -> tuple[int, ...]:
    """Requested MRSegmentator ids, de-duplicated, in the order given.

    ``None`` means all 40 MRSegmentator ids in ascending order. Unknown ids (including the
    background 0) raise ``ValueError``.
    """
    if label_ids is None:
        return all_label_ids()
    out: list[int] = []
    for raw in label_ids:
        if isinstance(raw, bool) or not isinstance(raw, (int, np.integer)):
            raise ValueError(f"label ids must be integers, got {raw!r}")
        lid = int(raw)
        if lid not in MRSEG_LABELS:
            raise ValueError(f"unknown MRSegmentator label id {lid} (valid: 1..40)")
        if lid not in out:
            out.append(lid)
    return tuple(out)


def check_label_map(labels: np.ndarray, *, ndim: int = 3) -> None:
    """Raise ``ValueError`` unless ``labels`` is an ``ndim``-D array of non-negative integers."""
    if not isinstance(labels, np.ndarray):
        raise ValueError(f"labels must be a numpy array, got {type(labels).__name__}")
    if labels.ndim != ndim:
        raise ValueError(f"labels must be {ndim}-D, got shape {labels.shape}")
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must have an integer dtype, got {labels.dtype}")
    if np.issubdtype(labels.dtype, np.signedinteger) and labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative")
