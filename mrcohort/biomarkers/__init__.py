"""mrcohort.biomarkers: pure functions of arrays + ``spacing_mm`` returning typed records.

Every function takes label maps in array order ``(z, y, x)`` with the ids of a ``label_map=``
(`mrcohort.labels.LabelMap`; MRSegmentator's 40 classes by default) and a
required, keyword-only ``spacing_mm = (sz, sy, sx)``; none reads files (the ``measure``
command, `mrcohort.cli.measure`, is the file shell). Definitions, with the module that
implements each:

``volume``
    Volume = voxel count x voxel volume, in ml. ``touches_border``: a voxel within
    ``border_margin_vox`` layers of any face of the field of view (possibly truncated), as
    TotalSegmentator flags it (Wasserthal et al., Radiol Artif Intell 2023;5:e230024).
``fat_fraction``
    Dixon fat fraction (not PDFF: no T1, T2* or fat-spectrum correction) with magnitude
    discrimination: FF = 1 - W/IP where water dominates, F/IP where fat dominates (Liu et
    al., Magn Reson Med 2007;58:354-364); F/(F+W) without an in-phase image. Median, mean,
    25th/75th percentiles inside the label eroded by ``erosion_mm`` (anisotropic Euclidean
    distance, ``edt``); falls back to the whole label when fewer than ``min_voxels`` remain.
    ``swap_suspected``: liver, spleen or a muscle with median FF > 0.5, adipose tissue < 0.5.
``centerline``
    A vessel's centreline: isotropic resampling, skeleton (Lee et al. 1994; scikit-image),
    longest end-to-end path of the skeleton graph (skan), smoothing spline.
``tortuosity``
    Iliac arteries: centreline length L, chord D, TI = L/D, and the sum-of-angles metric
    (Bullitt et al., IEEE TMI 2003;22:1163-1171), with two documented stabilisations.
``connectivity``
    Vessels: connected components at 26- and 6-connectivity (cc3d, all labels in one pass),
    components below ``dust_mm3`` counted separately; single component = the seed's "vessel
    consistency"; largest-component volume fraction.
``qc``
    Per label: missing (expected but absent), implausible volume (configurable ranges),
    truncated, fat-water swap suspected, fragmented vessel.
``participant``
    `measure_participant` runs all of the above and builds the rows of the
    ``organ_metrics``, ``vessel_metrics`` and ``qc`` tables.

Accuracy against analytic phantoms (``mrcohort.phantoms.fixtures``) is tested in
``tests/biomarkers/`` and reported in ``benchmarks/RESULTS.md``. Argument checks shared by
every measure live in ``_checks``.
"""

from mrcohort.biomarkers.centerline import Centerline, centerline
from mrcohort.biomarkers.connectivity import ConnectivityRecord, vessel_connectivity
from mrcohort.biomarkers.fat_fraction import (
    FatFractionRecord,
    dixon_fat_fraction,
    fat_fraction_stats,
)
from mrcohort.biomarkers.participant import (
    TABLES,
    BiomarkerParams,
    ParticipantMeasures,
    measure_participant,
)
from mrcohort.biomarkers.qc import QcRecord, participant_qc
from mrcohort.biomarkers.tortuosity import TortuosityRecord, sum_of_angles, vessel_tortuosity
from mrcohort.biomarkers.volume import VolumeRecord, label_volumes

__all__ = [
    "TABLES",
    "BiomarkerParams",
    "Centerline",
    "ConnectivityRecord",
    "FatFractionRecord",
    "ParticipantMeasures",
    "QcRecord",
    "TortuosityRecord",
    "VolumeRecord",
    "centerline",
    "dixon_fat_fraction",
    "fat_fraction_stats",
    "label_volumes",
    "measure_participant",
    "participant_qc",
    "sum_of_angles",
    "vessel_connectivity",
    "vessel_tortuosity",
]
