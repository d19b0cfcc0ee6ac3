"""Label maps: :class:`LabelMap` (read from a model's dataset.json) and the catalogues of
MRSegmentator (base and body composition) and TotalSegmentator classes."""

from mrcohort.labels.maps import (
    BODY_COMP_LABEL_MAP,
    BODY_COMP_LABELS,
    ILIAC_ARTERY_NAMES,
    MRSEG_IDS,
    MRSEG_LABEL_MAP,
    MRSEG_LABELS,
    VESSEL_NAMES,
    Label,
    LabelGroup,
    LabelMap,
    UnsupportedLabelMap,
    group_of,
)

__all__ = [
    "BODY_COMP_LABELS",
    "BODY_COMP_LABEL_MAP",
    "ILIAC_ARTERY_NAMES",
    "MRSEG_IDS",
    "MRSEG_LABELS",
    "MRSEG_LABEL_MAP",
    "VESSEL_NAMES",
    "Label",
    "LabelGroup",
    "LabelMap",
    "UnsupportedLabelMap",
    "group_of",
]
