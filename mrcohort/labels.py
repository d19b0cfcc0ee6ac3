"""Label maps: MRSegmentator's 40 classes (ids as in its weights), with anatomical groups.

The ids are those of the MRSegmentator base model (nnU-Net v2, dataset.json). Other label
maps (TotalSegmentator ``total_mr`` / ``total``) are mapped onto these by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType


class LabelGroup(str, Enum):
    """Anatomical group of a label."""

    ORGAN = "organ"
    VESSEL = "vessel"
    MUSCLE = "muscle"
    BONE = "bone"


@dataclass(frozen=True)
class Label:
    """One segmentation class."""

    id: int
    name: str
    group: LabelGroup


_MRSEG: tuple[tuple[int, str, LabelGroup], ...] = (
    (1, "spleen", LabelGroup.ORGAN),
    (2, "right_kidney", LabelGroup.ORGAN),
    (3, "left_kidney", LabelGroup.ORGAN),
    (4, "gallbladder", LabelGroup.ORGAN),
    (5, "liver", LabelGroup.ORGAN),
    (6, "stomach", LabelGroup.ORGAN),
    (7, "pancreas", LabelGroup.ORGAN),
    (8, "right_adrenal_gland", LabelGroup.ORGAN),
    (9, "left_adrenal_gland", LabelGroup.ORGAN),
    (10, "left_lung", LabelGroup.ORGAN),
    (11, "right_lung", LabelGroup.ORGAN),
    (12, "heart", LabelGroup.ORGAN),
    (13, "aorta", LabelGroup.VESSEL),
    (14, "inferior_vena_cava", LabelGroup.VESSEL),
    (15, "portal_vein_and_splenic_vein", LabelGroup.VESSEL),
    (16, "left_iliac_artery", LabelGroup.VESSEL),
    (17, "right_iliac_artery", LabelGroup.VESSEL),
    (18, "left_iliac_vena", LabelGroup.VESSEL),
    (19, "right_iliac_vena", LabelGroup.VESSEL),
    (20, "esophagus", LabelGroup.ORGAN),
    (21, "small_bowel", LabelGroup.ORGAN),
    (22, "duodenum", LabelGroup.ORGAN),
    (23, "colon", LabelGroup.ORGAN),
    (24, "urinary_bladder", LabelGroup.ORGAN),
    (25, "spine", LabelGroup.BONE),
    (26, "sacrum", LabelGroup.BONE),
    (27, "left_hip", LabelGroup.BONE),
    (28, "right_hip", LabelGroup.BONE),
    (29, "left_femur", LabelGroup.BONE),
    (30, "right_femur", LabelGroup.BONE),
    (31, "left_autochthonous_muscle", LabelGroup.MUSCLE),
    (32, "right_autochthonous_muscle", LabelGroup.MUSCLE),
    (33, "left_iliopsoas_muscle", LabelGroup.MUSCLE),
    (34, "right_iliopsoas_muscle", LabelGroup.MUSCLE),
    (35, "left_gluteus_maximus", LabelGroup.MUSCLE),
    (36, "right_gluteus_maximus", LabelGroup.MUSCLE),
    (37, "left_gluteus_medius", LabelGroup.MUSCLE),
    (38, "right_gluteus_medius", LabelGroup.MUSCLE),
    (39, "left_gluteus_minimus", LabelGroup.MUSCLE),
    (40, "right_gluteus_minimus", LabelGroup.MUSCLE),
)

#: MRSegmentator base model: id -> Label.
MRSEG_LABELS: Mapping[int, Label] = MappingProxyType(
    {i: Label(i, name, group) for i, name, group in _MRSEG}
)
#: name -> id for the MRSegmentator map.
MRSEG_IDS: Mapping[str, int] = MappingProxyType({lab.name: lab.id for lab in MRSEG_LABELS.values()})

#: Vessels whose connectivity is measured (the seed's "vessel consistency").
VESSEL_IDS: tuple[int, ...] = (13, 14, 15, 16, 17, 18, 19)
#: Iliac arteries, whose tortuosity is measured.
ILIAC_ARTERY_IDS: tuple[int, ...] = (16, 17)


def label_name(label_id: int) -> str:
    """Name of an MRSegmentator label id; raises KeyError for unknown ids."""
    return MRSEG_LABELS[label_id].name


def label_ids(group: LabelGroup | None = None) -> tuple[int, ...]:
    """All MRSegmentator ids, or those of one group, in ascending order."""
    return tuple(i for i, lab in MRSEG_LABELS.items() if group is None or lab.group == group)
