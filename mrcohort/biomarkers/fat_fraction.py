"""Dixon fat fraction per label: voxel-wise FF, eroded masks, robust summary statistics.

This is the *Dixon fat fraction* of magnitude fat/water images, not the proton density fat
fraction (PDFF): there is no T1, T2* or multi-peak fat-spectrum correction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import edt
import numpy as np

from mrcohort.biomarkers._checks import (
    check_label_map,
    int_at_least,
    non_negative,
    resolve_label_ids,
    validate_spacing,
)
from mrcohort.biomarkers._index import LabelIndex
from mrcohort.labels import MRSEG_LABEL_MAP, Label, LabelGroup, LabelMap

#: A median Dixon fat fraction above this (exclusive) in a lean tissue suggests a fat-water swap.
SWAP_FF_THRESHOLD = 0.5
#: Lean organs whose median fat fraction is expected well below ``SWAP_FF_THRESHOLD`` (with
#: every muscle); adipose tissue (body-composition classes) is expected well above it.
SWAP_CHECK_LEAN_ORGANS: frozenset[str] = frozenset({"liver", "spleen"})


@dataclass(frozen=True)
class FatFractionRecord:
    """Dixon fat fraction summary of one label (fractions in [0, 1]).

    Attributes
    ----------
    label_id : int
        Label id (in the model's label map).
    label_name : str
        Label name (in the model's label map).
    ff_median, ff_mean, ff_p25, ff_p75 : float
        Median, mean, 25th and 75th percentile (linear interpolation) of the voxel-wise
        Dixon fat fraction over the measured voxels; NaN when no voxel was measured.
    ff_n_vox : int
        Number of voxels measured (in the mask used and with a defined fat fraction).
    ff_erosion_mm : float
        Erosion distance asked for, in mm.
    ff_erosion_fallback : bool
        True when the eroded mask held fewer than ``min_voxels`` measurable voxels and the
        un-eroded mask was used instead.
    swap_suspected : bool
        True for liver, spleen or a muscle whose median fat fraction is above
        ``SWAP_FF_THRESHOLD``, or adipose tissue whose median is below it (a likely fat-water
        swap); False otherwise, when NaN, or for adipose tissue measured by the un-eroded
        fallback (partial volume).
    """

    label_id: int
    label_name: str
    ff_median: float
    ff_mean: float
    ff_p25: float
    ff_p75: float
    ff_n_vox: int
    ff_erosion_mm: float
    ff_erosion_fallback: bool
    swap_suspected: bool


def dixon_fat_fraction(
    fat: np.ndarray, water: np.ndarray, in_phase: np.ndarray | None = None
) -> np.ndarray:
    """Voxel-wise Dixon fat fraction from magnitude images.

    Parameters
    ----------
    fat, water : ndarray of float, same shape
        Magnitude fat and water images.
    in_phase : ndarray of float, same shape, optional
        Magnitude in-phase image. When given, magnitude discrimination is used [1]_: where
        water dominates (``W >= F``) ``FF = 1 - W / IP``, where fat dominates ``FF = F / IP``.
        Without it, ``FF = F / (F + W)``.

    Returns
    -------
    ndarray of float64, same shape
        Dixon fat fraction clipped to [0, 1]; NaN where an input is not finite or the
        denominator (``IP`` or ``F + W``) is not positive.

    Notes
    -----
    Noise in magnitude images is Rician: at low fat fraction the small fat signal is biased
    upwards and ``F / (F + W)`` overestimates FF. Magnitude discrimination takes the ratio
    of the large (dominant) component instead, which is far less biased [1]_. This is the
    Dixon fat fraction, not PDFF (no T1, T2* or fat-spectrum correction).

    References
    ----------
    .. [1] Liu CY, McKenzie CA, Yu H, Brittain JH, Reeder SB. Fat quantification with IDEAL
       gradient echo imaging: correction of bias from T1 and noise. Magn Reson Med
       2007;58:354-364.
    """
    f = np.asarray(fat, dtype=np.float64)
    w = np.asarray(water, dtype=np.float64)
    if f.shape != w.shape:
        raise ValueError(f"fat {f.shape} and water {w.shape} differ in shape")
    valid = np.isfinite(f) & np.isfinite(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        if in_phase is None:
            denom = f + w
            ff = f / denom
            valid &= denom > 0
        else:
            ip = np.asarray(in_phase, dtype=np.float64)
            if ip.shape != f.shape:
                raise ValueError(f"in_phase {ip.shape} and fat {f.shape} differ in shape")
            ff = np.where(w >= f, 1.0 - w / ip, f / ip)
            valid &= np.isfinite(ip) & (ip > 0)
    ff = np.where(valid, ff, np.nan)
    return np.clip(ff, 0.0, 1.0)


def fat_fraction_stats(
    labels: np.ndarray,
    *,
    fat: np.ndarray,
    water: np.ndarray,
    in_phase: np.ndarray | None = None,
    spacing_mm: tuple[float, float, float],
    label_ids: Iterable[int] | None = None,
    erosion_mm: float = 3.0,
    min_voxels: int = 10,
    label_map: LabelMap = MRSEG_LABEL_MAP,
    index: LabelIndex | None = None,
) -> list[FatFractionRecord]:
    """Dixon fat fraction statistics inside each (eroded) label.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of non-negative int
        Label map with the ids of ``label_map`` (0 = background).
    fat, water : (Z, Y, X) ndarray of float
        Magnitude fat and water images on the grid of ``labels``.
    in_phase : (Z, Y, X) ndarray of float, optional
        Magnitude in-phase image; enables magnitude discrimination (see
        `dixon_fat_fraction`). Recommended: plain ``F / (F + W)`` is noise-biased.
    spacing_mm : tuple of 3 float
        Voxel size in mm in array order ``(sz, sy, sx)``.
    label_ids : iterable of int, optional
        Ids to report, one record each, in the order given (default: every id of
        ``label_map``).
    erosion_mm : float, default 3.0
        Keep only voxels whose Euclidean distance (in mm, anisotropic) to the nearest voxel
        of another label or background is strictly greater than ``erosion_mm``; this avoids
        partial-volume voxels at organ edges. 0 disables erosion. The edge of the field of
        view does not count as a boundary.
    min_voxels : int, default 10
        If the eroded mask holds fewer measurable voxels than this, the un-eroded mask is
        used and ``ff_erosion_fallback`` is set.
    label_map : LabelMap, default MRSegmentator's
        The classes of the model that made ``labels`` (ids and names).
    index : LabelIndex, optional
        ``LabelIndex.of(labels)`` when the caller has it.

    Returns
    -------
    list of FatFractionRecord
        One record per requested id; absent labels give NaN statistics and
        ``ff_n_vox == 0``.

    Notes
    -----
    This is the Dixon fat fraction, not PDFF. The distance transform is computed once for
    the whole multi-label map (``edt``, on the bounding box of all labels), and voxels are
    grouped by label in one sort (`mrcohort.biomarkers._index.LabelIndex`).

    References
    ----------
    .. [1] Liu CY, McKenzie CA, Yu H, Brittain JH, Reeder SB. Fat quantification with IDEAL
       gradient echo imaging: correction of bias from T1 and noise. Magn Reson Med
       2007;58:354-364.
    """
    check_label_map(labels)
    spacing = validate_spacing(spacing_mm, labels.ndim)
    _check_same_shape(labels, fat=fat, water=water, in_phase=in_phase)
    erosion = non_negative("erosion_mm", erosion_mm)
    min_vox = int_at_least("min_voxels", min_voxels, 1)
    ids = resolve_label_ids(label_ids, label_map)
    index = LabelIndex.of(labels) if index is None else index
    flat = index.flat
    ff = dixon_fat_fraction(
        fat.reshape(-1)[flat],
        water.reshape(-1)[flat],
        None if in_phase is None else in_phase.reshape(-1)[flat],
    )
    inside = _inside(index, labels, spacing, erosion)
    records = []
    for lid in ids:
        lo, hi = index.span(lid)
        pos = index.order[lo:hi]
        records.append(_label_record(label_map[lid], ff[pos], inside[lo:hi], erosion, min_vox))
    return records


def _inside(
    index: LabelIndex, labels: np.ndarray, spacing: tuple[float, ...], erosion: float
) -> np.ndarray:
    """Whether each labelled voxel (in ``index.order``) is farther than ``erosion`` mm from
    any other label or the background.

    The distance transform (``edt``, multi-label, the field of view's edge not a boundary)
    runs on the bounding box of all labels grown by one voxel: outside it every voxel is
    background, and a background voxel outside the box is never nearer than the box's own
    background layer, so the distances inside are those of the whole map.
    """
    if erosion <= 0 or index.box is None:
        return np.ones(index.values.size, dtype=bool)
    box = index.grown_box(1)
    assert box is not None
    dist = edt.edt(np.ascontiguousarray(labels[box]), anisotropy=spacing, parallel=1)
    starts = np.array([b.start for b in box], dtype=np.intp)[:, None]
    local = np.ravel_multi_index(tuple(index.coords - starts), dist.shape)
    return dist.reshape(-1)[local] > erosion


def _label_record(
    label: Label, ff: np.ndarray, inside: np.ndarray, erosion_mm: float, min_voxels: int
) -> FatFractionRecord:
    """Summarise the fat fractions of one label's voxels (``inside``: survives erosion)."""
    finite = np.isfinite(ff)
    eroded = finite & inside
    fallback = erosion_mm > 0 and ff.size > 0 and int(eroded.sum()) < min_voxels
    values = ff[finite] if fallback else ff[eroded]
    if values.size:
        p25, median, p75 = (float(v) for v in np.percentile(values, [25.0, 50.0, 75.0]))
        mean = float(values.mean())
    else:
        p25 = median = p75 = mean = math.nan
    return FatFractionRecord(
        label_id=label.id,
        label_name=label.name,
        ff_median=median,
        ff_mean=mean,
        ff_p25=p25,
        ff_p75=p75,
        ff_n_vox=int(values.size),
        ff_erosion_mm=erosion_mm,
        ff_erosion_fallback=bool(fallback),
        # a thin fat layer measured without erosion is all partial volume: no adipose swap call
        swap_suspected=is_swap_suspected(label, median)
        and not (fallback and label.group == LabelGroup.ADIPOSE),
    )


def is_swap_suspected(label: Label, ff_median: float) -> bool:
    """A likely fat-water swap: a lean tissue (liver, spleen, muscle) with median FF above
    ``SWAP_FF_THRESHOLD``, or adipose tissue with median FF below it. False when NaN."""
    if label.group == LabelGroup.ADIPOSE:
        return bool(ff_median < SWAP_FF_THRESHOLD)
    lean = label.group == LabelGroup.MUSCLE or label.name in SWAP_CHECK_LEAN_ORGANS
    return lean and bool(ff_median > SWAP_FF_THRESHOLD)


def _check_same_shape(labels: np.ndarray, **images: np.ndarray | None) -> None:
    for name, img in images.items():
        if img is None:
            continue
        if not isinstance(img, np.ndarray) or img.shape != labels.shape:
            shape = getattr(img, "shape", type(img).__name__)
            raise ValueError(f"{name} has shape {shape}, labels have {labels.shape}")
