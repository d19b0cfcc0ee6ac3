"""Label volumes: voxel count x voxel volume, with a field-of-view truncation flag."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mrcohort.biomarkers._checks import (
    check_label_map,
    int_at_least,
    resolve_label_ids,
    validate_spacing,
)
from mrcohort.biomarkers._index import LabelIndex
from mrcohort.labels import MRSEG_LABEL_MAP, LabelMap

#: 1 ml = 1000 mm³.
MM3_PER_ML = 1000.0


@dataclass(frozen=True)
class VolumeRecord:
    """Volume of one label.

    Attributes
    ----------
    label_id : int
        MRSegmentator label id.
    label_name : str
        MRSegmentator label name.
    n_vox : int
        Number of voxels carrying the label.
    volume_ml : float
        ``n_vox`` x voxel volume, in ml (1 ml = 1000 mm³).
    is_empty : bool
        True when the label has no voxel.
    touches_border : bool
        True when the label has a voxel within ``border_margin_vox`` voxels of any face of
        the field of view, so the structure may be truncated and its volume too small.
    """

    label_id: int
    label_name: str
    n_vox: int
    volume_ml: float
    is_empty: bool
    touches_border: bool


def label_volumes(
    labels: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    label_ids: Iterable[int] | None = None,
    border_margin_vox: int = 1,
    label_map: LabelMap = MRSEG_LABEL_MAP,
    index: LabelIndex | None = None,
) -> list[VolumeRecord]:
    """Volume of each label of a label map, counted in one pass.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of non-negative int
        Label map with the ids of ``label_map`` (0 = background).
    spacing_mm : tuple of 3 float
        Voxel size in mm in array order ``(sz, sy, sx)``.
    label_ids : iterable of int, optional
        Ids to report, one record each, in the order given. Default: every id of
        ``label_map`` (MRSegmentator's 40), so that absent labels give a row with
        ``n_vox == 0`` and ``is_empty=True``.
    border_margin_vox : int, default 1
        A label touches the border when it has a voxel in the outermost
        ``border_margin_vox`` voxel layers of any face (inclusive). 0 disables the flag.
    label_map : LabelMap, default MRSegmentator's
        The classes of the model that made ``labels`` (ids and names).
    index : LabelIndex, optional
        ``LabelIndex.of(labels)`` when the caller has it (`measure_participant` indexes the
        map once for every measure).

    Returns
    -------
    list of VolumeRecord
        One record per requested id.

    Notes
    -----
    Volume = voxel count x ``prod(spacing_mm)`` / 1000 (ml). Counting voxels is unbiased
    for large structures and, unlike mesh volumes, does not shrink small ones. Like
    TotalSegmentator, labels touching the field of view are flagged as possibly truncated.

    References
    ----------
    .. [1] Wasserthal J et al. TotalSegmentator: robust segmentation of 104 anatomic
       structures in CT images. Radiol Artif Intell 2023;5:e230024.
    """
    check_label_map(labels)
    spacing = validate_spacing(spacing_mm, labels.ndim)
    margin = int_at_least("border_margin_vox", border_margin_vox, 0)
    ids = resolve_label_ids(label_ids, label_map)
    index = LabelIndex.of(labels) if index is None else index
    voxel_ml = float(np.prod(spacing)) / MM3_PER_ML
    records = []
    for lid in ids:
        n = index.count(lid)
        records.append(
            VolumeRecord(
                label_id=lid,
                label_name=label_map[lid].name,
                n_vox=n,
                volume_ml=n * voxel_ml,
                is_empty=n == 0,
                touches_border=_touches_border(index.label_box(lid), index.shape, margin),
            )
        )
    return records


def _touches_border(box: tuple[slice, ...] | None, shape: tuple[int, ...], margin: int) -> bool:
    """A label (bounding ``box``) has a voxel in the outermost ``margin`` layers of a face
    (inclusive) exactly when its box starts or ends within them."""
    if box is None or margin == 0:
        return False
    for b, n in zip(box, shape, strict=True):
        m = min(margin, n)
        if b.start < m or b.stop > n - m:
            return True
    return False
