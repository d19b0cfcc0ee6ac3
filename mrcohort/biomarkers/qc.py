"""Per-participant quality control: one record per label with flags a reader can filter on.

QC is computed from the other biomarker records (no image access): expected labels that are
missing, implausible volumes, labels cut by the field of view, probable fat-water swaps and
vessels broken into pieces.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from mrcohort.biomarkers.connectivity import ConnectivityRecord
from mrcohort.biomarkers.fat_fraction import FatFractionRecord
from mrcohort.biomarkers.volume import VolumeRecord
from mrcohort.labels import MRSEG_IDS, MRSEG_LABEL_MAP, MRSEG_LABELS, LabelMap

#: Plausible adult volumes (ml), inclusive, for labels that a neck-to-knee scan holds whole.
#: Deliberately wide (roughly reference ranges widened by half on each side, e.g. liver
#: 1-2.5 l, spleen 0.1-0.4 l, kidney 0.1-0.25 l, lung 1.5-3.5 l per side at breath-hold): they
#: catch failed segmentations (a 5 ml kidney, a 6 l liver), they do not grade disease.
#: Labels whose volume depends on the field of view or on filling (vessels, bowel, bladder,
#: stomach, bones, muscles) are not checked by default.
PLAUSIBLE_VOLUME_ML: Mapping[int, tuple[float, float]] = MappingProxyType(
    {
        MRSEG_IDS["spleen"]: (30.0, 1500.0),
        MRSEG_IDS["right_kidney"]: (40.0, 450.0),
        MRSEG_IDS["left_kidney"]: (40.0, 450.0),
        MRSEG_IDS["liver"]: (500.0, 4500.0),
        MRSEG_IDS["pancreas"]: (15.0, 250.0),
        MRSEG_IDS["right_adrenal_gland"]: (0.5, 30.0),
        MRSEG_IDS["left_adrenal_gland"]: (0.5, 30.0),
        MRSEG_IDS["left_lung"]: (500.0, 5000.0),
        MRSEG_IDS["right_lung"]: (500.0, 5500.0),
        MRSEG_IDS["heart"]: (200.0, 1800.0),
    }
)

#: Labels a neck-to-knee scan is expected to hold: all 40 except the gallbladder (absent
#: after cholecystectomy, common in older cohorts).
DEFAULT_EXPECTED_IDS: tuple[int, ...] = tuple(
    i for i in MRSEG_LABELS if i != MRSEG_IDS["gallbladder"]
)

#: Flag names written to ``qc_flags`` (comma-separated, in this order).
QC_FLAGS: tuple[str, ...] = (
    "missing",
    "implausible_volume",
    "truncated",
    "swap_suspected",
    "fragmented",
)


@dataclass(frozen=True)
class QcRecord:
    """Quality-control flags of one label of one participant.

    Attributes
    ----------
    label_id, label_name : int, str
        Label (in the model's label map).
    expected : bool
        The label is in the expected set.
    present : bool
        The label has at least one voxel.
    missing : bool
        Expected but not present.
    volume_ml : float
        Label volume (ml).
    volume_min_ml, volume_max_ml : float
        Plausible range (inclusive); NaN when the label's volume is not checked.
    implausible_volume : bool
        Present and outside the plausible range.
    truncated : bool
        Present and touching the field-of-view border.
    swap_suspected : bool or None
        Probable fat-water swap (see ``fat_fraction.is_swap_suspected``); None without
        Dixon images.
    fragmented : bool or None
        Vessel not a single 26-connected component (dust ignored); None for non-vessels.
    qc_flags : str
        The raised flags, comma-separated in the order of `QC_FLAGS`; "" when none.
    qc_pass : bool
        No flag raised.
    """

    label_id: int
    label_name: str
    expected: bool
    present: bool
    missing: bool
    volume_ml: float
    volume_min_ml: float
    volume_max_ml: float
    implausible_volume: bool
    truncated: bool
    swap_suspected: bool | None
    fragmented: bool | None
    qc_flags: str
    qc_pass: bool


def participant_qc(
    volumes: Sequence[VolumeRecord],
    *,
    fat_fractions: Sequence[FatFractionRecord] | None = None,
    connectivity: Sequence[ConnectivityRecord] = (),
    expected_ids: Iterable[int] | None = None,
    volume_ranges_ml: Mapping[int, tuple[float, float]] | None = None,
    label_map: LabelMap = MRSEG_LABEL_MAP,
) -> list[QcRecord]:
    """QC flags per label, from a participant's biomarker records.

    Parameters
    ----------
    volumes : sequence of VolumeRecord
        One per label to report (the QC rows follow their order).
    fat_fractions : sequence of FatFractionRecord, optional
        Dixon fat fraction records (for the swap flag); None when there are no Dixon images.
    connectivity : sequence of ConnectivityRecord, optional
        Vessel connectivity records (for the fragmented flag).
    expected_ids : iterable of int, optional
        Labels the scan should hold, in ``label_map``'s ids. Default: `qc_expectations`
        (for MRSegmentator's map: all but the gallbladder).
    volume_ranges_ml : mapping of int to (float, float), optional
        Plausible (min, max) volume per label in ml, inclusive, in ``label_map``'s ids;
        labels not in it are not checked. Default: `qc_expectations` (for MRSegmentator's
        map `PLAUSIBLE_VOLUME_ML`).
    label_map : LabelMap, default MRSegmentator's
        The classes of the model that made the segmentation.

    Returns
    -------
    list of QcRecord
    """
    default_expected, default_ranges = qc_expectations(label_map)
    expected_ids = default_expected if expected_ids is None else expected_ids
    volume_ranges_ml = default_ranges if volume_ranges_ml is None else volume_ranges_ml
    expected = frozenset(int(i) for i in expected_ids)
    ranges = {int(k): _check_range(k, v) for k, v in volume_ranges_ml.items()}
    swap = {r.label_id: r.swap_suspected for r in fat_fractions} if fat_fractions else {}
    conn = {r.label_id: r for r in connectivity}
    out = []
    for vol in volumes:
        lid = vol.label_id
        present = not vol.is_empty
        lo, hi = ranges.get(lid, (math.nan, math.nan))
        implausible = present and lid in ranges and not lo <= vol.volume_ml <= hi
        c = conn.get(lid)
        fragmented = None if c is None else (present and not c.is_single_component)
        flags = {
            "missing": lid in expected and not present,
            "implausible_volume": implausible,
            "truncated": present and vol.touches_border,
            "swap_suspected": bool(swap.get(lid, False)),
            "fragmented": bool(fragmented),
        }
        raised = [name for name in QC_FLAGS if flags[name]]
        out.append(
            QcRecord(
                label_id=lid,
                label_name=vol.label_name,
                expected=lid in expected,
                present=present,
                missing=flags["missing"],
                volume_ml=vol.volume_ml,
                volume_min_ml=lo,
                volume_max_ml=hi,
                implausible_volume=implausible,
                truncated=flags["truncated"],
                swap_suspected=swap.get(lid) if fat_fractions else None,
                fragmented=fragmented,
                qc_flags=",".join(raised),
                qc_pass=not raised,
            )
        )
    return out


def _check_range(label_id: int, bounds: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(b) for b in bounds)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi < lo:
        raise ValueError(f"volume range of label {label_id} must be 0 <= min <= max: {bounds!r}")
    return lo, hi


def qc_expectations(
    label_map: LabelMap,
    *,
    expected_ids: Iterable[int] = DEFAULT_EXPECTED_IDS,
    volume_ranges_ml: Mapping[int, tuple[float, float]] = PLAUSIBLE_VOLUME_ML,
    expect_other_classes: bool = True,
) -> tuple[tuple[int, ...], dict[int, tuple[float, float]]]:
    """QC expectations stated in MRSegmentator ids, in ``label_map``'s ids (by class name).

    Returns the expected ids and the plausible volume ranges of the classes ``label_map``
    shares with MRSegmentator. Classes MRSegmentator does not have (the body-composition
    classes) are expected when ``expect_other_classes`` (a neck-to-knee scan holds every one
    of them) and get no volume range. Unknown MRSegmentator ids raise ``ValueError``.
    """
    unknown = sorted({int(i) for i in (*expected_ids, *volume_ranges_ml)} - set(MRSEG_LABELS))
    if unknown:
        raise ValueError(f"QC expectations name unknown MRSegmentator ids {unknown}")
    if label_map is MRSEG_LABEL_MAP:
        return tuple(int(i) for i in expected_ids), dict(volume_ranges_ml)
    by_name = {MRSEG_LABELS[int(i)].name for i in expected_ids}
    expected = tuple(
        lab.id
        for lab in label_map.labels.values()
        if lab.name in by_name or (expect_other_classes and lab.name not in _MRSEG_NAMES)
    )
    ranges = {
        lid: (float(bounds[0]), float(bounds[1]))
        for mid, bounds in volume_ranges_ml.items()
        if (lid := label_map.id_of(MRSEG_LABELS[int(mid)].name)) is not None
    }
    return expected, ranges


_MRSEG_NAMES = frozenset(lab.name for lab in MRSEG_LABELS.values())
