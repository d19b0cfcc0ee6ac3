"""Resolve and check the label ids a biomarker function is asked to measure."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mrcohort.labels import MRSEG_LABEL_MAP, LabelMap


def resolve_label_ids(
    label_ids: Iterable[int] | None, label_map: LabelMap = MRSEG_LABEL_MAP
) -> tuple[int, ...]:
    """Requested ids of ``label_map``, de-duplicated, in the order given.

    ``None`` means every id of the map (MRSegmentator's 40 by default) in ascending order.
    Unknown ids (including the background 0) raise ``ValueError``.
    """
    if label_ids is None:
        return label_map.ids()
    out: list[int] = []
    for raw in label_ids:
        if isinstance(raw, bool) or not isinstance(raw, (int, np.integer)):
            raise ValueError(f"label ids must be integers, got {raw!r}")
        lid = int(raw)
        if lid not in label_map:
            ids = label_map.ids()
            contiguous = bool(ids) and ids == tuple(range(ids[0], ids[-1] + 1))
            valid = f"{ids[0]}..{ids[-1]}" if contiguous else list(ids)
            raise ValueError(f"unknown label id {lid} in the {label_map.name} map (valid: {valid})")
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
