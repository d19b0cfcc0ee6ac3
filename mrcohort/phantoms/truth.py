"""Ground-truth rows of a phantom participant (``truth.csv`` and ``truth_body_comp.csv``).

Per MRSegmentator label: volume in ml (the supersampled painted label map), the tissue's
true fat fraction, and for the iliac arteries the centreline length, chord and tortuosity
index of the analytic centreline. Per body-composition class: volume and fat fraction.
"""

from __future__ import annotations

import math

from mrcohort.labels import BODY_COMP_LABELS, MRSEG_LABEL_MAP
from mrcohort.phantoms.anatomy import SUBCUT_FAT, Anatomy
from mrcohort.phantoms.shapes import chord_length, polyline_length

__all__ = [
    "BODY_COMP_TRUTH_COLUMNS",
    "TRUTH_COLUMNS",
    "body_comp_truth_rows",
    "truth_rows",
]

BODY_COMP_TRUTH_COLUMNS: tuple[str, ...] = (
    "participant_id",
    "label_id",
    "label_name",
    "volume_ml",
    "fat_fraction",
)
TRUTH_COLUMNS: tuple[str, ...] = (
    *BODY_COMP_TRUTH_COLUMNS,
    "centerline_length_mm",
    "chord_length_mm",
    "tortuosity_index",
)


def truth_rows(
    participant_id: str, anatomy: Anatomy, volume_ml: dict[int, float]
) -> list[dict[str, object]]:
    """One row per label present in the phantom: volume, fat fraction, iliac tortuosity."""
    rows: list[dict[str, object]] = []
    for label_id in sorted({lid for lid, _ in anatomy.solids}):
        row: dict[str, object] = {
            "participant_id": participant_id,
            "label_id": label_id,
            "label_name": MRSEG_LABEL_MAP[label_id].name,
            "volume_ml": volume_ml[label_id],
            "fat_fraction": anatomy.tissues[label_id].ff,
            "centerline_length_mm": math.nan,
            "chord_length_mm": math.nan,
            "tortuosity_index": math.nan,
        }
        if label_id in anatomy.iliac_centerlines:
            line = anatomy.iliac_centerlines[label_id]
            length, chord = polyline_length(line), chord_length(line)
            row |= {
                "centerline_length_mm": length,
                "chord_length_mm": chord,
                "tortuosity_index": length / chord,
            }
        rows.append(row)
    return rows


def body_comp_truth_rows(
    participant_id: str, anatomy: Anatomy, volume_ml: dict[int, float]
) -> list[dict[str, object]]:
    """One row per body-composition class: volume (fine sub-sample count) and fat fraction.

    Classes the phantom does not model (visceral fat, abdominal wall muscles) have volume 0
    and no fat fraction.
    """
    ff = anatomy.tissues[SUBCUT_FAT].ff
    return [
        {
            "participant_id": participant_id,
            "label_id": lab.id,
            "label_name": lab.name,
            "volume_ml": volume_ml.get(lab.id, 0.0),
            "fat_fraction": ff if volume_ml.get(lab.id, 0.0) > 0 else math.nan,
        }
        for lab in BODY_COMP_LABELS.values()
    ]
