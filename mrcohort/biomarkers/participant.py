"""All biomarkers of one participant, and their rows for the published tables.

`measure_participant` runs every measure on one label map (the ids of the model's
`LabelMap`, MRSegmentator's by default) and, when
given, the Dixon images on the same grid; `ParticipantMeasures` turns the typed records into
row dicts whose keys are exactly the measure columns of the ``organ_metrics``,
``vessel_metrics`` and ``qc`` tables (the caller adds the scan keys and provenance).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

import numpy as np

from mrcohort.biomarkers._checks import check_label_map
from mrcohort.biomarkers._index import LabelIndex
from mrcohort.biomarkers.connectivity import (
    DEFAULT_DUST_MM3,
    ConnectivityRecord,
    vessel_connectivity,
)
from mrcohort.biomarkers.fat_fraction import FatFractionRecord, fat_fraction_stats
from mrcohort.biomarkers.qc import (
    DEFAULT_EXPECTED_IDS,
    PLAUSIBLE_VOLUME_ML,
    QcRecord,
    participant_qc,
    qc_expectations,
)
from mrcohort.biomarkers.tortuosity import TortuosityRecord, vessel_tortuosity
from mrcohort.biomarkers.volume import VolumeRecord, label_volumes
from mrcohort.labels import MRSEG_LABEL_MAP, LabelMap

#: The tables `ParticipantMeasures.rows` fills (measure columns only: no keys, no provenance).
TABLES: tuple[str, ...] = ("organ_metrics", "vessel_metrics", "qc")

#: Version of the biomarker code: bump it with any change in `mrcohort.biomarkers` that
#: changes a measured value, so that stored rows become stale (``measure_key``) and the next
#: run re-measures them from the stored segmentations.
MEASURE_CODE_VERSION = "1"


@dataclass(frozen=True)
class BiomarkerParams:
    """Parameters of every biomarker (hashable; their hash goes on every row).

    Attributes
    ----------
    erosion_mm, min_voxels
        Dixon fat fraction: erosion distance (mm) and fallback threshold (voxels); see
        `fat_fraction_stats`.
    border_margin_vox
        Volume: voxel layers at the field-of-view faces that count as the border.
    dust_mm3
        Connectivity: components below this volume (mm³, exclusive) are dust.
    iso_spacing_mm, smoothing_mm, soam_smoothing_mm, soam_step_mm,
    soam_min_curvature_per_mm, min_centerline_mm
        Tortuosity; see `vessel_tortuosity`.
    expected_ids
        QC: labels the scan should hold (MRSegmentator ids; carried to other label maps by
        class name).
    expect_other_classes
        QC: classes MRSegmentator does not have (body composition) are expected too.
    volume_ranges_ml
        QC: ``(label_id, min_ml, max_ml)`` plausible volume ranges, inclusive.
    """

    erosion_mm: float = 3.0
    min_voxels: int = 10
    border_margin_vox: int = 1
    dust_mm3: float = DEFAULT_DUST_MM3
    iso_spacing_mm: float = 1.0
    smoothing_mm: float = 0.5
    soam_smoothing_mm: float = 1.0
    soam_step_mm: float = 4.0
    soam_min_curvature_per_mm: float = 0.01
    min_centerline_mm: float = 10.0
    expected_ids: tuple[int, ...] = DEFAULT_EXPECTED_IDS
    expect_other_classes: bool = True
    volume_ranges_ml: tuple[tuple[int, float, float], ...] = tuple(
        (lid, lo, hi) for lid, (lo, hi) in PLAUSIBLE_VOLUME_ML.items()
    )

    def params_hash(self) -> str:
        """First 16 hex digits of the sha256 of the parameters as sorted JSON."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def measure_key(self) -> str:
        """Identity of a measurement: `MEASURE_CODE_VERSION` and these parameters (16 hex)."""
        blob = f"measure={MEASURE_CODE_VERSION};params={self.params_hash()}".encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class ParticipantMeasures:
    """Every biomarker record of one participant.

    ``fat_fractions`` is None when no Dixon images were given. ``volumes`` and ``qc`` cover
    every label of ``label_map`` (MRSegmentator's 40 by default); ``connectivity`` its
    vessels (7 in MRSegmentator's map); ``tortuosity`` its iliac arteries (2).
    """

    volumes: list[VolumeRecord]
    fat_fractions: list[FatFractionRecord] | None
    connectivity: list[ConnectivityRecord]
    tortuosity: list[TortuosityRecord]
    qc: list[QcRecord]
    label_map: LabelMap = MRSEG_LABEL_MAP

    def organ_rows(self) -> list[dict[str, object]]:
        """One ``organ_metrics`` row per label (fat fraction columns None without Dixon)."""
        empty_ff = dict.fromkeys(
            (f.name for f in fields(FatFractionRecord) if f.name not in _KEY_COLUMNS), None
        )
        ffs = {r.label_id: r for r in self.fat_fractions or ()}
        rows = []
        for vol in self.volumes:
            ff = asdict(ffs[vol.label_id]) if vol.label_id in ffs else empty_ff
            rows.append(
                {
                    **asdict(vol),
                    "label_group": self.label_map[vol.label_id].group.value,
                    **ff,
                }
            )
        return rows

    def vessel_rows(self) -> list[dict[str, object]]:
        """One ``vessel_metrics`` row per vessel (tortuosity columns None but for iliacs)."""
        empty_tort = dict.fromkeys(
            (f.name for f in fields(TortuosityRecord) if f.name not in _KEY_COLUMNS), None
        )
        torts = {r.label_id: r for r in self.tortuosity}
        rows = []
        for conn in self.connectivity:
            tort = asdict(torts[conn.label_id]) if conn.label_id in torts else empty_tort
            rows.append({**asdict(conn), **tort})
        return rows

    def qc_rows(self) -> list[dict[str, object]]:
        """One ``qc`` row per label; ``picture_path`` is None (a cohort job fills it in when it
        draws the participant-visit's QC picture)."""
        return [{**asdict(r), "picture_path": None} for r in self.qc]

    def rows(self) -> dict[str, list[dict[str, object]]]:
        """Table name -> rows, for `TABLES`."""
        return {
            "organ_metrics": self.organ_rows(),
            "vessel_metrics": self.vessel_rows(),
            "qc": self.qc_rows(),
        }


_KEY_COLUMNS = frozenset({"label_id", "label_name"})


def measure_participant(
    labels: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    fat: np.ndarray | None = None,
    water: np.ndarray | None = None,
    in_phase: np.ndarray | None = None,
    params: BiomarkerParams | None = None,
    label_map: LabelMap = MRSEG_LABEL_MAP,
) -> ParticipantMeasures:
    """Run every biomarker on one participant.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of non-negative int
        Label map with the ids of ``label_map``.
    spacing_mm : tuple of 3 float
        Voxel size in mm in array order ``(sz, sy, sx)``.
    fat, water : (Z, Y, X) ndarray of float, optional
        Magnitude Dixon fat and water images on the grid of ``labels``; both or neither.
    in_phase : (Z, Y, X) ndarray of float, optional
        In-phase magnitude image (magnitude discrimination; recommended).
    params : BiomarkerParams, optional
        Defaults to ``BiomarkerParams()``.
    label_map : LabelMap, default MRSegmentator's
        Classes of the model that made ``labels``. Every class gets a volume, fat fraction and
        QC record; connectivity covers the vessels and tortuosity the iliac arteries it has
        (found by name, so a body-composition map has none). `qc.qc_expectations` says how the
        QC expectations carry over.

    Returns
    -------
    ParticipantMeasures
    """
    p = params or BiomarkerParams()
    if (fat is None) != (water is None):
        raise ValueError("give both fat and water images, or neither")
    if in_phase is not None and fat is None:
        raise ValueError("in_phase needs fat and water images")
    ids = label_map.ids()
    check_label_map(labels)
    index = LabelIndex.of(labels)  # voxels and boxes of every label, found once for all
    volumes = label_volumes(
        labels,
        spacing_mm=spacing_mm,
        label_ids=ids,
        border_margin_vox=p.border_margin_vox,
        label_map=label_map,
        index=index,
    )
    ffs = None
    if fat is not None and water is not None:
        ffs = fat_fraction_stats(
            labels,
            fat=fat,
            water=water,
            in_phase=in_phase,
            spacing_mm=spacing_mm,
            label_ids=ids,
            erosion_mm=p.erosion_mm,
            min_voxels=p.min_voxels,
            label_map=label_map,
            index=index,
        )
    conn = vessel_connectivity(
        labels,
        spacing_mm=spacing_mm,
        dust_mm3=p.dust_mm3,
        label_map=label_map,
        index=index,
    )
    tort = vessel_tortuosity(
        labels,
        spacing_mm=spacing_mm,
        label_map=label_map,
        iso_spacing_mm=p.iso_spacing_mm,
        smoothing_mm=p.smoothing_mm,
        soam_smoothing_mm=p.soam_smoothing_mm,
        soam_step_mm=p.soam_step_mm,
        soam_min_curvature_per_mm=p.soam_min_curvature_per_mm,
        min_centerline_mm=p.min_centerline_mm,
        index=index,
    )
    expected, ranges = qc_expectations(
        label_map,
        expected_ids=p.expected_ids,
        volume_ranges_ml={lid: (lo, hi) for lid, lo, hi in p.volume_ranges_ml},
        expect_other_classes=p.expect_other_classes,
    )
    qc = participant_qc(
        volumes,
        fat_fractions=ffs,
        connectivity=conn,
        expected_ids=expected,
        volume_ranges_ml=ranges,
    )
    return ParticipantMeasures(volumes, ffs, conn, tort, qc, label_map)
