"""Label maps: MRSegmentator's 40 classes (ids as in its weights), with anatomical groups.

The ids are those of the MRSegmentator base model (nnU-Net v2, dataset.json). Other label
maps (TotalSegmentator ``total_mr`` / ``total``) are mapped onto these by name.

A model brings its own label map (`LabelMap.from_dataset_json`): MRSegmentator 2.0's
body-composition model has 10 classes of its own (`BODY_COMP_LABELS`), and the measures use
whatever map the model that made the segmentation declares; anatomical groups come from the
names (`group_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType


class LabelGroup(str, Enum):
    """Anatomical group of a label."""

    ORGAN = "organ"
    VESSEL = "vessel"
    MUSCLE = "muscle"
    BONE = "bone"
    ADIPOSE = "adipose"
    OTHER = "other"


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
#: MRSegmentator 2.0 body-composition model (``--body_comp``; MRI only): its own ids 1-10.
_BODY_COMP: tuple[tuple[int, str, LabelGroup], ...] = (
    (1, "subcutaneous_fat", LabelGroup.ADIPOSE),
    (2, "visceral_fat", LabelGroup.ADIPOSE),
    (3, "left_rectus_abdominis", LabelGroup.MUSCLE),
    (4, "right_rectus_abdominis", LabelGroup.MUSCLE),
    (5, "left_oblique_muscle", LabelGroup.MUSCLE),
    (6, "right_oblique_muscle", LabelGroup.MUSCLE),
    (7, "left_quadratus_lumborum", LabelGroup.MUSCLE),
    (8, "right_quadratus_lumborum", LabelGroup.MUSCLE),
    (9, "abdominal_subcutaneous_fat", LabelGroup.ADIPOSE),
    (10, "gluteofemoral_fat", LabelGroup.ADIPOSE),
)
#: Body-composition model: id -> Label.
BODY_COMP_LABELS: Mapping[int, Label] = MappingProxyType(
    {i: Label(i, name, group) for i, name, group in _BODY_COMP}
)

#: name -> id for the MRSegmentator map.
MRSEG_IDS: Mapping[str, int] = MappingProxyType({lab.name: lab.id for lab in MRSEG_LABELS.values()})

#: Vessels whose connectivity is measured (the seed's "vessel consistency"), by name: looked
#: up in whatever label map a model declares (`LabelMap.ids_of`).
VESSEL_NAMES: tuple[str, ...] = tuple(
    lab.name for lab in MRSEG_LABELS.values() if lab.group == LabelGroup.VESSEL
)
#: Iliac arteries, whose tortuosity is measured, by name.
ILIAC_ARTERY_NAMES: tuple[str, ...] = ("left_iliac_artery", "right_iliac_artery")


_GROUP_BY_NAME: Mapping[str, LabelGroup] = MappingProxyType(
    {lab.name: lab.group for lab in (*MRSEG_LABELS.values(), *BODY_COMP_LABELS.values())}
)


def group_of(name: str) -> LabelGroup:
    """Anatomical group of a class name (MRSegmentator base or body-composition), else OTHER."""
    return _GROUP_BY_NAME.get(name, LabelGroup.OTHER)


class UnsupportedLabelMap(ValueError):
    """A dataset.json label map this project cannot name classes for (region-based)."""


@dataclass(frozen=True, eq=False)
class LabelMap:
    """The classes one model predicts: id -> `Label` (background 0 excluded).

    ``name`` says which known map it is (``mrsegmentator``, ``mrsegmentator_body_comp``) or
    ``custom``. Measures look labels up here, so a body-composition segmentation gets rows
    named by its own classes, never MRSegmentator's names for the same ids.
    """

    name: str
    labels: Mapping[int, Label]

    def __reduce__(self) -> tuple[object, tuple[str, dict[int, Label]]]:
        # picklable (Dask) although ``labels`` is a read-only proxy; known maps stay singletons
        return (_restore_label_map, (self.name, dict(self.labels)))

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.labels.items())))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelMap):
            return NotImplemented
        return self.name == other.name and dict(self.labels) == dict(other.labels)

    def __contains__(self, label_id: object) -> bool:
        return label_id in self.labels

    def __getitem__(self, label_id: int) -> Label:
        return self.labels[label_id]

    def ids(self, group: LabelGroup | None = None) -> tuple[int, ...]:
        """Ids (of one group, or all) in ascending order."""
        return tuple(
            i for i in sorted(self.labels) if group is None or self.labels[i].group == group
        )

    def id_of(self, name: str) -> int | None:
        """The id of a class name, or None when this map has no such class."""
        return next((lab.id for lab in self.labels.values() if lab.name == name), None)

    def ids_of(self, names: Iterable[str]) -> tuple[int, ...]:
        """Ids of those ``names`` this map has, in the order given."""
        return tuple(i for n in names if (i := self.id_of(n)) is not None)

    @classmethod
    def from_names(cls, names: Mapping[int, str]) -> LabelMap:
        """A map from id -> class name; recognised as a known map when it equals one."""
        labels = {int(i): Label(int(i), str(n), group_of(str(n))) for i, n in names.items()}
        for known in (MRSEG_LABEL_MAP, BODY_COMP_LABEL_MAP):
            if {i: lab.name for i, lab in known.labels.items()} == {
                i: lab.name for i, lab in labels.items()
            }:
                return known
        return cls("custom", MappingProxyType(dict(sorted(labels.items()))))

    @classmethod
    def from_dataset_json(cls, dataset: Mapping[str, object]) -> LabelMap:
        """The label map an nnU-Net v2 ``dataset.json`` declares.

        ``labels`` maps class name -> id; background (0) and nnU-Net's ``ignore`` label are
        not classes. Region-based models (a name mapped to a list of ids) raise
        `UnsupportedLabelMap`: their output ids are painted region over region, so a class
        name would not say what an id holds. Other malformed maps raise ``ValueError``.
        """
        raw = dataset.get("labels")
        if not isinstance(raw, Mapping) or not raw:
            raise ValueError("dataset.json has no 'labels' mapping")
        fg = [(str(n), v) for n, v in raw.items() if v not in (0, [0], (0,)) and n != "ignore"]
        if not fg:
            raise ValueError("dataset.json declares no foreground label")
        if any(isinstance(v, (list, tuple)) for _, v in fg):
            raise UnsupportedLabelMap("region-based label maps (lists of ids) are not supported")
        names: dict[int, str] = {}
        for n, v in fg:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"dataset.json label {n!r} has id {v!r}, not an integer >= 0")
            if v in names:
                raise ValueError(f"dataset.json labels {names[v]!r} and {n!r} share id {v}")
            names[v] = n
        return cls.from_names(names)


#: The MRSegmentator base model's 40 classes.
MRSEG_LABEL_MAP = LabelMap("mrsegmentator", MRSEG_LABELS)
#: MRSegmentator 2.0's body-composition classes.
BODY_COMP_LABEL_MAP = LabelMap("mrsegmentator_body_comp", BODY_COMP_LABELS)


def _restore_label_map(name: str, labels: dict[int, Label]) -> LabelMap:
    restored = LabelMap(name, MappingProxyType(labels))
    for known in (MRSEG_LABEL_MAP, BODY_COMP_LABEL_MAP):
        if known == restored:
            return known
    return restored
