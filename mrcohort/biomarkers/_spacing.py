"""The one validator for ``spacing_mm`` (house rule: required, keyword-only, validated once)."""

from __future__ import annotations

import math
from collections.abc import Iterable


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
