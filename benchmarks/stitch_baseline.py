"""Baseline merge the stitching benchmarks compare against (not used by mrcohort itself).

Imported by ``stitch_seams.py`` and ``stitch_speed.py`` (run from this folder).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from mrcohort.cohort.stitch import union_grid
from mrcohort.errors import StitchError


def maximum_merge(
    stations: Sequence[sitk.Image], *, reference: sitk.Image | None = None
) -> sitk.Image:
    """Voxel-wise maximum of the resampled stations (the seed's merge; a baseline only).

    Each station is resampled (linear, 0 outside) onto the grid and the largest value
    wins, as AIAH_utility does. It biases the overlaps upwards (the maximum of two noisy
    samples) and leaves a visible seam; :func:`mrcohort.cohort.stitch.stitch` blends instead.
    """
    if not stations:
        raise StitchError("NO_STATIONS", "no stations to stitch")
    ref = reference if reference is not None else union_grid(stations)
    out = np.zeros(tuple(reversed(ref.GetSize())), dtype=np.float32)
    for img in stations:
        resampled = sitk.Resample(
            img, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32
        )
        np.maximum(out, sitk.GetArrayViewFromImage(resampled), out=out)
    result = sitk.GetImageFromArray(out)
    result.CopyInformation(ref)
    return result
