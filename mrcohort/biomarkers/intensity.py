"""Mean image intensity per label, all labels in one pass (no erosion).

The counterpart of TotalSegmentator's ``get_basic_statistics`` intensity (``np.average`` of
the image over each label mask), computed with one weighted ``bincount`` instead of one
full-volume comparison per label.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mrcohort.biomarkers._label_ids import check_label_map, resolve_label_ids
from mrcohort.labels import MRSEG_LABEL_MAP, LabelMap

#: Voxels per bincount call (bounds the temporary copies).
_CHUNK_VOX = 1 << 24


@dataclass(frozen=True)
class IntensityRecord:
    """Mean intensity of one label.

    Attributes
    ----------
    label_id, label_name : int, str
        MRSegmentator label.
    n_vox : int
        Voxels of the label.
    intensity_mean : float
        Mean image value over the label's voxels (image units); NaN when empty.
    """

    label_id: int
    label_name: str
    n_vox: int
    intensity_mean: float


def label_mean_intensity(
    labels: np.ndarray,
    image: np.ndarray,
    *,
    label_ids: Iterable[int] | None = None,
    label_map: LabelMap = MRSEG_LABEL_MAP,
) -> list[IntensityRecord]:
    """Mean of ``image`` over each label, in one pass over the volume.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of non-negative int
        Label map with the ids of ``label_map``.
    image : (Z, Y, X) ndarray of real numbers
        Image on the grid of ``labels``; non-finite values propagate into the mean.
    label_ids : iterable of int, optional
        Labels to report, in the order given (default: every id of ``label_map``).
    label_map : LabelMap, default MRSegmentator's
        The classes of the model that made ``labels`` (ids and names).

    Returns
    -------
    list of IntensityRecord
    """
    check_label_map(labels)
    if not isinstance(image, np.ndarray) or image.shape != labels.shape:
        raise ValueError(f"image has shape {getattr(image, 'shape', None)}, labels {labels.shape}")
    ids = resolve_label_ids(label_ids, label_map)
    flat_lab = labels.reshape(-1)
    flat_img = image.reshape(-1)
    top = int(flat_lab.max()) if flat_lab.size else 0
    counts = np.zeros(top + 1, dtype=np.int64)
    sums = np.zeros(top + 1, dtype=np.float64)
    for start in range(0, flat_lab.size, _CHUNK_VOX):
        lab = flat_lab[start : start + _CHUNK_VOX]
        counts += np.bincount(lab, minlength=top + 1)
        sums += np.bincount(lab, weights=flat_img[start : start + _CHUNK_VOX], minlength=top + 1)
    out = []
    for lid in ids:
        n = int(counts[lid]) if lid <= top else 0
        mean = float(sums[lid] / n) if n else math.nan
        out.append(IntensityRecord(lid, label_map[lid].name, n, mean))
    return out
