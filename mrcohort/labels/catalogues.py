"""Other segmenters' label maps onto MRSegmentator ids, by class name.

TotalSegmentator's ``total_mr`` (50 classes) and ``total`` (CT, 117 classes) id tables are
shipped here as static copies of ``totalsegmentator.map_to_binary.class_map`` (TotalSegmentator
2.18.0, Apache-2.0), so no TotalSegmentator install is needed. Each class is mapped by name
onto an MRSegmentator class (`TOTALSEG_TO_MRSEG`); several classes may merge into one (the
five lung lobes into two lungs, the vertebrae into ``spine``). Classes without an
MRSegmentator counterpart (prostate, ribs, brain, ...) are reported by `to_mrseg` with their
voxel counts, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from mrcohort.labels import MRSEG_IDS, MRSEG_LABELS, LabelMap

TOTALSEG_MR_CLASSES: Mapping[int, str] = MappingProxyType(
    {
        1: "spleen",
        2: "kidney_right",
        3: "kidney_left",
        4: "gallbladder",
        5: "liver",
        6: "stomach",
        7: "pancreas",
        8: "adrenal_gland_right",
        9: "adrenal_gland_left",
        10: "lung_left",
        11: "lung_right",
        12: "esophagus",
        13: "small_bowel",
        14: "duodenum",
        15: "colon",
        16: "urinary_bladder",
        17: "prostate",
        18: "sacrum",
        19: "vertebrae",
        20: "intervertebral_discs",
        21: "spinal_cord",
        22: "heart",
        23: "aorta",
        24: "inferior_vena_cava",
        25: "portal_vein_and_splenic_vein",
        26: "iliac_artery_left",
        27: "iliac_artery_right",
        28: "iliac_vena_left",
        29: "iliac_vena_right",
        30: "humerus_left",
        31: "humerus_right",
        32: "scapula_left",
        33: "scapula_right",
        34: "clavicula_left",
        35: "clavicula_right",
        36: "femur_left",
        37: "femur_right",
        38: "hip_left",
        39: "hip_right",
        40: "gluteus_maximus_left",
        41: "gluteus_maximus_right",
        42: "gluteus_medius_left",
        43: "gluteus_medius_right",
        44: "gluteus_minimus_left",
        45: "gluteus_minimus_right",
        46: "autochthon_left",
        47: "autochthon_right",
        48: "iliopsoas_left",
        49: "iliopsoas_right",
        50: "brain",
    }
)
TOTALSEG_CT_CLASSES: Mapping[int, str] = MappingProxyType(
    {
        1: "spleen",
        2: "kidney_right",
        3: "kidney_left",
        4: "gallbladder",
        5: "liver",
        6: "stomach",
        7: "pancreas",
        8: "adrenal_gland_right",
        9: "adrenal_gland_left",
        10: "lung_upper_lobe_left",
        11: "lung_lower_lobe_left",
        12: "lung_upper_lobe_right",
        13: "lung_middle_lobe_right",
        14: "lung_lower_lobe_right",
        15: "esophagus",
        16: "trachea",
        17: "thyroid_gland",
        18: "small_bowel",
        19: "duodenum",
        20: "colon",
        21: "urinary_bladder",
        22: "prostate",
        23: "kidney_cyst_left",
        24: "kidney_cyst_right",
        25: "sacrum",
        26: "vertebrae_S1",
        27: "vertebrae_L5",
        28: "vertebrae_L4",
        29: "vertebrae_L3",
        30: "vertebrae_L2",
        31: "vertebrae_L1",
        32: "vertebrae_T12",
        33: "vertebrae_T11",
        34: "vertebrae_T10",
        35: "vertebrae_T9",
        36: "vertebrae_T8",
        37: "vertebrae_T7",
        38: "vertebrae_T6",
        39: "vertebrae_T5",
        40: "vertebrae_T4",
        41: "vertebrae_T3",
        42: "vertebrae_T2",
        43: "vertebrae_T1",
        44: "vertebrae_C7",
        45: "vertebrae_C6",
        46: "vertebrae_C5",
        47: "vertebrae_C4",
        48: "vertebrae_C3",
        49: "vertebrae_C2",
        50: "vertebrae_C1",
        51: "heart",
        52: "aorta",
        53: "pulmonary_vein",
        54: "brachiocephalic_trunk",
        55: "subclavian_artery_right",
        56: "subclavian_artery_left",
        57: "common_carotid_artery_right",
        58: "common_carotid_artery_left",
        59: "brachiocephalic_vein_left",
        60: "brachiocephalic_vein_right",
        61: "atrial_appendage_left",
        62: "superior_vena_cava",
        63: "inferior_vena_cava",
        64: "portal_vein_and_splenic_vein",
        65: "iliac_artery_left",
        66: "iliac_artery_right",
        67: "iliac_vena_left",
        68: "iliac_vena_right",
        69: "humerus_left",
        70: "humerus_right",
        71: "scapula_left",
        72: "scapula_right",
        73: "clavicula_left",
        74: "clavicula_right",
        75: "femur_left",
        76: "femur_right",
        77: "hip_left",
        78: "hip_right",
        79: "spinal_cord",
        80: "gluteus_maximus_left",
        81: "gluteus_maximus_right",
        82: "gluteus_medius_left",
        83: "gluteus_medius_right",
        84: "gluteus_minimus_left",
        85: "gluteus_minimus_right",
        86: "autochthon_left",
        87: "autochthon_right",
        88: "iliopsoas_left",
        89: "iliopsoas_right",
        90: "brain",
        91: "skull",
        92: "rib_left_1",
        93: "rib_left_2",
        94: "rib_left_3",
        95: "rib_left_4",
        96: "rib_left_5",
        97: "rib_left_6",
        98: "rib_left_7",
        99: "rib_left_8",
        100: "rib_left_9",
        101: "rib_left_10",
        102: "rib_left_11",
        103: "rib_left_12",
        104: "rib_right_1",
        105: "rib_right_2",
        106: "rib_right_3",
        107: "rib_right_4",
        108: "rib_right_5",
        109: "rib_right_6",
        110: "rib_right_7",
        111: "rib_right_8",
        112: "rib_right_9",
        113: "rib_right_10",
        114: "rib_right_11",
        115: "rib_right_12",
        116: "sternum",
        117: "costal_cartilages",
    }
)


def _sided(names: tuple[str, ...]) -> dict[str, str]:
    """``<name>_left`` -> ``left_<name>`` (and right) for TotalSegmentator's sided classes."""
    return {f"{n}_{side}": f"{side}_{n}" for n in names for side in ("left", "right")}


#: TotalSegmentator class name -> MRSegmentator class name. Names not listed are unmapped.
TOTALSEG_TO_MRSEG: Mapping[str, str] = MappingProxyType(
    {
        **{
            n: n
            for n in (
                "spleen",
                "gallbladder",
                "liver",
                "stomach",
                "pancreas",
                "esophagus",
                "small_bowel",
                "duodenum",
                "colon",
                "urinary_bladder",
                "sacrum",
                "heart",
                "aorta",
                "inferior_vena_cava",
                "portal_vein_and_splenic_vein",
            )
        },
        **_sided(
            (
                "kidney",
                "adrenal_gland",
                "lung",
                "femur",
                "hip",
                "gluteus_maximus",
                "gluteus_medius",
                "gluteus_minimus",
                "iliac_artery",
                "iliac_vena",
            )
        ),
        "autochthon_left": "left_autochthonous_muscle",
        "autochthon_right": "right_autochthonous_muscle",
        "iliopsoas_left": "left_iliopsoas_muscle",
        "iliopsoas_right": "right_iliopsoas_muscle",
        # total_mr: one class for the whole vertebral column.
        "vertebrae": "spine",
        # total (CT): lobes -> lungs, vertebrae -> spine; S1 is part of the sacrum.
        "lung_upper_lobe_left": "left_lung",
        "lung_lower_lobe_left": "left_lung",
        "lung_upper_lobe_right": "right_lung",
        "lung_middle_lobe_right": "right_lung",
        "lung_lower_lobe_right": "right_lung",
        "vertebrae_S1": "sacrum",
        **{f"vertebrae_L{i}": "spine" for i in range(1, 6)},
        **{f"vertebrae_T{i}": "spine" for i in range(1, 13)},
        **{f"vertebrae_C{i}": "spine" for i in range(1, 8)},
    }
)

#: ``--labels`` choices: source label map name -> its id table (None: already MRSegmentator).
LABEL_MAPS: Mapping[str, Mapping[int, str] | None] = MappingProxyType(
    {
        "mrsegmentator": None,
        "totalseg_mr": TOTALSEG_MR_CLASSES,
        "totalseg": TOTALSEG_CT_CLASSES,
    }
)


@dataclass(frozen=True)
class MappedLabels:
    """A label map converted to MRSegmentator ids.

    Attributes
    ----------
    labels : ndarray of uint8
        Same shape as the input, MRSegmentator ids (0 = background or unmapped).
    unmapped : dict of str to int
        Source classes present in the input without an MRSegmentator counterpart (by name,
        or ``id_<n>`` for ids the source table does not know) -> their voxel counts.
    """

    labels: np.ndarray
    unmapped: dict[str, int]


def source_to_mrseg_ids(source: str) -> dict[int, int]:
    """Source id -> MRSegmentator id for every mapped class of label map ``source``."""
    table = _table(source)
    if table is None:
        return {i: i for i in MRSEG_LABELS}
    return {
        sid: MRSEG_IDS[TOTALSEG_TO_MRSEG[n]] for sid, n in table.items() if n in TOTALSEG_TO_MRSEG
    }


def to_mrseg(labels: np.ndarray, source: str) -> MappedLabels:
    """Convert a label map of ``source`` (a key of `LABEL_MAPS`) to MRSegmentator ids.

    Parameters
    ----------
    labels : ndarray of non-negative int
        Source label map (any shape).
    source : str
        ``mrsegmentator``, ``totalseg_mr`` or ``totalseg``.

    Returns
    -------
    MappedLabels
        The MRSegmentator label map and the unmapped classes found (with voxel counts).
    """
    table = _table(source)
    arr = np.asarray(labels)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must have an integer dtype, got {arr.dtype}")
    if arr.size and int(arr.min()) < 0:
        raise ValueError("labels must be non-negative")
    values, counts = np.unique(arr, return_counts=True)
    mapping = source_to_mrseg_ids(source)
    unmapped: dict[str, int] = {}
    for v, c in zip(values.tolist(), counts.tolist(), strict=True):
        if v == 0 or v in mapping:
            continue
        name = table.get(v) if table is not None else None
        unmapped[name or f"id_{v}"] = int(c)
    top = int(values[-1]) if values.size else 0
    lut = np.zeros(max(top, *mapping) + 1, dtype=np.uint8)
    for sid, mid in mapping.items():
        lut[sid] = mid
    return MappedLabels(labels=lut[arr], unmapped=unmapped)


def _table(source: str) -> Mapping[int, str] | None:
    try:
        return LABEL_MAPS[source]
    except KeyError:
        raise ValueError(f"unknown label map {source!r}; known: {sorted(LABEL_MAPS)}") from None


def keep_known(labels: np.ndarray, label_map: LabelMap) -> MappedLabels:
    """Keep the ids ``label_map`` has; other ids become background and are reported."""
    arr = np.asarray(labels)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must have an integer dtype, got {arr.dtype}")
    if arr.size and int(arr.min()) < 0:
        raise ValueError("labels must be non-negative")
    values, counts = np.unique(arr, return_counts=True)
    unknown = {
        int(v): int(c) for v, c in zip(values, counts, strict=True) if v and v not in label_map
    }
    if not unknown:
        return MappedLabels(labels=arr, unmapped={})
    out = np.where(np.isin(arr, list(unknown)), 0, arr)
    return MappedLabels(labels=out, unmapped={f"id_{v}": c for v, c in unknown.items()})
