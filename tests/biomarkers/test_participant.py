"""All biomarkers of one participant: golden values on two fixed phantoms, rows vs schemas.

Golden values are pinned deliberately: a change in any of them (code, numpy, scikit-image,
skan or scipy) must be reviewed, and the numbers updated in the same change with a reason.
They were also checked against the phantoms' analytic truth (``test_golden_near_truth``).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.biomarkers.participant import (
    TABLES,
    BiomarkerParams,
    ParticipantMeasures,
    measure_participant,
)
from mrcohort.cohort import stitch_channels
from mrcohort.io.images import spacing_zyx
from mrcohort.labels import (
    BODY_COMP_LABEL_MAP,
    BODY_COMP_LABELS,
    MRSEG_LABEL_MAP,
    MRSEG_LABELS,
    VESSEL_NAMES,
)
from mrcohort.phantoms import PhantomParticipant, make_participant
from mrcohort.phantoms import fixtures as synthetic
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.tables import SCHEMA_VERSION, SCHEMAS

# which -> label -> (n_vox, ff_median, ff_mean, ff_n_vox)
GOLDEN_ORGANS = {
    1: {
        "spleen": (5376, 0.028427977304329555, 0.04694413390158746, 4215),
        "liver": (37808, 0.07969092694903002, 0.08667190153644629, 33413),
        "right_gluteus_maximus": (6441, 0.11938477318279883, 0.12210050986405464, 5065),
        "aorta": (1240, 0.8956595581331932, 0.8978111587879031, 656),
    },
    2: {
        "spleen": (12225, 0.029987376577337632, 0.039365082327984253, 9039),
        "liver": (69473, 0.07961257937431743, 0.08115494188609834, 59031),
        "right_gluteus_maximus": (14658, 0.12078770234395841, 0.11980834122606805, 10856),
        "aorta": (3138, 0.9014260939945722, 0.9012328445192712, 1392),
    },
}
# which -> label -> (centerline_length_mm, chord_length_mm, tortuosity_index, soam_rad_per_mm,
#                    tortuosity_index_raw)
GOLDEN_TORTUOSITY = {
    1: {
        "left_iliac_artery": (
            102.1701007623881,
            81.7403780040537,
            1.2499342828745086,
            0.03447630626608561,
            1.4219280781967472,
        ),
        "right_iliac_artery": (
            112.70639722900115,
            79.99249815573428,
            1.4089620880395242,
            0.1063934061798907,
            1.5631552869957288,
        ),
    },
    2: {
        "left_iliac_artery": (
            93.1468653542333,
            81.53639125556514,
            1.1423962223478428,
            0.13792861120897604,
            1.2881951258972961,
        ),
        "right_iliac_artery": (
            98.21509140799485,
            76.80003863127578,
            1.2788416927696449,
            0.03586232936798424,
            1.4604942923634712,
        ),
    },
}
Golden = tuple[int, synthetic.DixonPhantom, ParticipantMeasures]
GOLDEN_QC_FLAGS = {
    1: {"aorta": "fragmented", "liver": "", "spleen": ""},
    2: {"aorta": "fragmented", "liver": "implausible_volume", "spleen": ""},
}


@pytest.fixture(scope="module", params=[1, 2])
def golden(
    request: pytest.FixtureRequest,
) -> tuple[int, synthetic.DixonPhantom, ParticipantMeasures]:
    ph = synthetic.golden_phantom(request.param)
    m = measure_participant(
        ph.labels, spacing_mm=ph.spacing_mm, fat=ph.fat, water=ph.water, in_phase=ph.in_phase
    )
    return request.param, ph, m


def test_golden_values(golden: Golden) -> None:
    which, ph, m = golden
    voxel_ml = math.prod(ph.spacing_mm) / 1000.0
    vols = {r.label_name: r for r in m.volumes}
    ffs = {r.label_name: r for r in m.fat_fractions or ()}
    for name, (n_vox, median, mean, n_ff) in GOLDEN_ORGANS[which].items():
        assert vols[name].n_vox == n_vox
        assert vols[name].volume_ml == pytest.approx(n_vox * voxel_ml, rel=1e-12)
        assert ffs[name].ff_median == pytest.approx(median, rel=1e-9)
        assert ffs[name].ff_mean == pytest.approx(mean, rel=1e-9)
        assert ffs[name].ff_n_vox == n_ff
    torts = {r.label_name: r for r in m.tortuosity}
    for name, values in GOLDEN_TORTUOSITY[which].items():
        r = torts[name]
        got = (
            r.centerline_length_mm,
            r.chord_length_mm,
            r.tortuosity_index,
            r.soam_rad_per_mm,
            r.tortuosity_index_raw,
        )
        assert got == pytest.approx(values, rel=1e-6)
    conn = {r.label_name: r for r in m.connectivity}
    assert (conn["aorta"].n_components_26, conn["aorta"].n_components_6) == (2, 2)
    assert conn["aorta"].largest_component_fraction == 0.5
    assert conn["left_iliac_artery"].is_single_component
    qc = {r.label_name: r.qc_flags for r in m.qc}
    for name, flags in GOLDEN_QC_FLAGS[which].items():
        assert qc[name] == flags


def test_golden_near_truth(
    golden: Golden,
) -> None:
    """The pinned numbers are right, not only stable: they match the phantoms' truth."""
    _, ph, m = golden
    for vol, ff in zip(m.volumes, m.fat_fractions or (), strict=True):
        if vol.label_id in ph.truth_ff:
            assert vol.volume_ml == pytest.approx(ph.truth_volume_ml[vol.label_id], rel=0.01)
            assert ff.ff_median == pytest.approx(ph.truth_ff[vol.label_id], abs=0.005)
    lines = ph.extra["centerlines"]
    for r in m.tortuosity:
        assert r.tortuosity_index == pytest.approx(lines[r.label_id].tortuosity_index, rel=0.03)


def test_rows_have_exactly_the_table_columns(
    golden: Golden,
) -> None:
    _, _, m = golden
    keys = {
        "cohort": "t",
        "participant_id": "p1",
        "visit": "2",
        "sequence": "dixon",
        "input_sha256": "0" * 64,
        "model_key": "k",
        "measure_key": BiomarkerParams().measure_key(),
        "code_version": "0",
        "params_hash": BiomarkerParams().params_hash(),
        "schema_version": SCHEMA_VERSION,
        "computed_at": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        "run_id": "r",
    }
    rows = m.rows()
    assert set(rows) == set(TABLES)
    for name in TABLES:
        full = [{**keys, **row} for row in rows[name]]
        assert all(set(row) == set(SCHEMAS[name].names) for row in full), name
        table = table_from_rows(name, full)
        assert table.schema.equals(SCHEMAS[name], check_metadata=True)
    assert [r["label_id"] for r in rows["organ_metrics"]] == list(MRSEG_LABELS)
    assert [r["label_id"] for r in rows["qc"]] == list(MRSEG_LABELS)
    assert [r["label_id"] for r in rows["vessel_metrics"]] == list(
        MRSEG_LABEL_MAP.ids_of(VESSEL_NAMES)
    )
    aorta = next(r for r in rows["vessel_metrics"] if r["label_id"] == 13)
    assert aorta["tortuosity_index"] is None and aorta["tortuosity_status"] is None
    left = next(r for r in rows["vessel_metrics"] if r["label_id"] == 16)
    assert left["tortuosity_status"] == "ok" and left["tortuosity_index"] > 1.0


def test_without_dixon_images_ff_columns_are_null() -> None:
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[2:8, 2:8, 2:8] = 5
    m = measure_participant(labels, spacing_mm=(3.0, 2.0, 2.0))
    assert m.fat_fractions is None
    liver = next(r for r in m.organ_rows() if r["label_id"] == 5)
    assert liver["ff_median"] is None and liver["swap_suspected"] is None
    assert liver["volume_ml"] == pytest.approx(216 * 12 / 1000)
    assert all(r.swap_suspected is None for r in m.qc)


def test_argument_checks() -> None:
    labels = np.zeros((4, 4, 4), np.uint8)
    img = np.ones(labels.shape)
    with pytest.raises(ValueError, match="both fat and water"):
        measure_participant(labels, spacing_mm=(1.0, 1.0, 1.0), fat=img)
    with pytest.raises(ValueError, match="in_phase"):
        measure_participant(labels, spacing_mm=(1.0, 1.0, 1.0), in_phase=img)
    with pytest.raises(TypeError):
        measure_participant(labels)  # type: ignore[call-arg]


def test_params_change_the_hash_and_the_result() -> None:
    case = synthetic.vessel_in_pieces(1, spacing_mm=(3.0, 2.0, 2.0), n_dust=2)
    base = BiomarkerParams()
    strict = BiomarkerParams(dust_mm3=0.0)
    assert base.params_hash() != strict.params_hash()
    (a,) = [
        r
        for r in measure_participant(case.labels, spacing_mm=case.spacing_mm).connectivity
        if r.label_id == 13
    ]
    (b,) = [
        r
        for r in measure_participant(
            case.labels, spacing_mm=case.spacing_mm, params=strict
        ).connectivity
        if r.label_id == 13
    ]
    assert (a.n_components_26, a.n_dust_components_26) == (1, 2)
    assert (b.n_components_26, b.n_dust_components_26) == (3, 0)


# --- a body-composition label map ------------------------------------------------------


@pytest.fixture(scope="module")
def body_comp_phantom() -> PhantomParticipant:
    return make_participant(11, 0, "mini")


@pytest.fixture(scope="module")
def stitched(body_comp_phantom: PhantomParticipant) -> dict[str, np.ndarray]:
    channels = {ch: body_comp_phantom.stations[ch] for ch in ("in", "w", "f")}
    return {ch: sitk.GetArrayFromImage(img) for ch, img in stitch_channels(channels).items()}


def _measure_body_comp(
    phantom: PhantomParticipant,
    fat: np.ndarray,
    water: np.ndarray,
    in_phase: np.ndarray | None = None,
) -> ParticipantMeasures:
    """All measures on the phantom's body-composition truth map."""
    return measure_participant(
        sitk.GetArrayFromImage(phantom.body_comp),
        spacing_mm=spacing_zyx(phantom.body_comp),
        fat=fat,
        water=water,
        in_phase=in_phase,
        label_map=BODY_COMP_LABEL_MAP,
    )


def test_body_comp_measures_match_phantom_truth(
    body_comp_phantom: PhantomParticipant, stitched: dict[str, np.ndarray]
) -> None:
    m = _measure_body_comp(body_comp_phantom, stitched["f"], stitched["w"], stitched["in"])
    rows = {r["label_name"]: r for r in m.organ_rows()}
    assert set(rows) == {lab.name for lab in BODY_COMP_LABELS.values()}
    truth = {r["label_name"]: r for r in body_comp_phantom.body_comp_truth}
    for name in ("subcutaneous_fat", "abdominal_subcutaneous_fat", "gluteofemoral_fat"):
        t = truth[name]
        assert t["volume_ml"] > 500  # the phantom has these compartments
        # voxel majority vs the 8x finer analytic count
        assert rows[name]["volume_ml"] == pytest.approx(t["volume_ml"], rel=0.02)
        assert rows[name]["ff_median"] == pytest.approx(t["fat_fraction"], abs=0.02)
        assert rows[name]["label_group"] == "adipose"
        assert rows[name]["swap_suspected"] is False
    assert m.vessel_rows() == []  # no vessels in this map: no connectivity, no tortuosity
    qc = {r["label_name"]: r for r in m.qc_rows()}
    assert qc["visceral_fat"]["missing"]  # the phantom has no visceral fat: flagged
    assert not qc["gluteofemoral_fat"]["missing"]
    assert math.isnan(truth["visceral_fat"]["fat_fraction"])


def test_swapped_fat_and_water_flag_adipose_tissue(
    body_comp_phantom: PhantomParticipant, stitched: dict[str, np.ndarray]
) -> None:
    m = _measure_body_comp(body_comp_phantom, fat=stitched["w"], water=stitched["f"])
    flagged = {r["label_name"] for r in m.qc_rows() if r["swap_suspected"]}
    assert flagged == {"subcutaneous_fat", "abdominal_subcutaneous_fat", "gluteofemoral_fat"}
