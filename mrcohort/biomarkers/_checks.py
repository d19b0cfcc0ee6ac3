"""Argument checks every measure shares: the label array, the label ids asked for, the voxel
spacing (house rule: ``spacing_mm`` required, keyword-only, validated once) and numeric
parameters."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from mrcohort.labels import MRSEG_LABEL_MAP, LabelMap


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


def validate_spacing(spacing_mm: Iterable[float], ndim: int) -> tuple[float, ...]:
    """Check a voxel spacing and return it as a tuple of floats.

    Parameters
    ----------
    spacing_mm : iterable of float, length ``ndim``
        Voxel size in mm per array axis, in array order (``(sz, sy, sx)`` for a
        ``(z, y, x)`` array; see ``mrcohort.io.images.spacing_zyx``).
    ndim : int
        Number of array axes the spacing must describe.

    Returns
    -------
    tuple of float, length ``ndim``
        The spacing as plain Python floats.

    Raises
    ------
    ValueError
        If ``spacing_mm`` is not ``ndim`` positive, finite numbers.
    """
    if isinstance(spacing_mm, (str, bytes)):
        raise ValueError(f"spacing_mm must be {ndim} numbers, got {spacing_mm!r}")
    try:
        values = tuple(spacing_mm)
    except TypeError:
        raise ValueError(f"spacing_mm must be {ndim} numbers, got {spacing_mm!r}") from None
    if len(values) != ndim:
        raise ValueError(
            f"spacing_mm has {len(values)} values but the array has {ndim} axes: {spacing_mm!r}"
        )
    out: list[float] = []
    for value in values:
        if isinstance(value, bool):
            raise ValueError(f"spacing_mm values must be numbers, got {spacing_mm!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"spacing_mm values must be numbers, got {spacing_mm!r}") from None
        if not math.isfinite(f) or f <= 0.0:
            raise ValueError(f"spacing_mm values must be positive and finite, got {spacing_mm!r}")
        out.append(f)
    return tuple(out)


def positive(name: str, value: float) -> float:
    """``value`` as a float; ``ValueError`` naming ``name`` unless finite and > 0."""
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return v


def non_negative(name: str, value: float) -> float:
    """``value`` as a float; ``ValueError`` naming ``name`` unless finite and >= 0."""
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def int_at_least(name: str, value: int, minimum: int) -> int:
    """``value`` as an int; ``ValueError`` naming ``name`` unless an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
