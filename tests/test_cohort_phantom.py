"""The phantom generator: determinism, analytic truth, Dixon signal model, stations."""

from __future__ import annotations

import itertools
import math

import cc3d
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.integrate import quad

from mrcohort.labels import MRSEG_IDS, VESSEL_IDS
from mrcohort.phantoms.phantom import (
    PRESETS,
    SIGNAL_SCALE,
    Ellipsoid,
    curved_centerline,
    make_anatomy,
    make_participant,
    polyline_length,
    station_slices,
)


@pytest.fixture(scope="module")
def participant():
    return make_participant(3, 1, "mini")


def _arr(img: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(img)


def test_deterministic_for_a_seed(participant):
    again = make_participant(3, 1, "mini")
    assert np.array_equal(_arr(again.labels), _arr(participant.labels))
    assert np.array_equal(_arr(again.stations["f"][2]), _arr(participant.stations["f"][2]))
    assert again.truth == participant.truth
    other = make_participant(4, 1, "mini")
    assert not np.array_equal(_arr(other.labels), _arr(participant.labels))


def test_required_structures_present_with_their_ids(participant):
    required = [
        "liver",
        "spleen",
        "right_kidney",
        "left_kidney",
        "heart",
        "left_lung",
        "right_lung",
        "urinary_bladder",
        "spine",
        "aorta",
        "inferior_vena_cava",
        "left_iliac_artery",
        "right_iliac_artery",
        "left_iliac_vena",
        "right_iliac_vena",
        "portal_vein_and_splenic_vein",
        "left_autochthonous_muscle",
        "right_autochthonous_muscle",
        "left_iliopsoas_muscle",
        "right_iliopsoas_muscle",
        "left_gluteus_maximus",
        "right_gluteus_maximus",
    ]
    present = set(np.unique(_arr(participant.labels)).tolist())
    truth_ids = {r["label_id"] for r in participant.truth}
    for name in required:
        assert MRSEG_IDS[name] in present, name
        assert MRSEG_IDS[name] in truth_ids, name


def test_left_is_patient_left():
    """LPS: +x is patient left, so left organs have larger x than right ones."""
    p = make_participant(0, 0, "mini")
    lab = _arr(p.labels)
    origin_x, sx = p.labels.GetOrigin()[0], p.labels.GetSpacing()[0]
    for left, right in (("left_kidney", "right_kidney"), ("left_lung", "right_lung")):
        xl = np.argwhere(lab == MRSEG_IDS[left])[:, 2].mean() * sx + origin_x
        xr = np.argwhere(lab == MRSEG_IDS[right])[:, 2].mean() * sx + origin_x
        assert xl > 0 > xr
    liver_x = np.argwhere(lab == MRSEG_IDS["liver"])[:, 2].mean() * sx + origin_x
    assert liver_x < 0  # liver on the patient's right


def test_truth_volume_matches_analytic_ellipsoid():
    """The bladder touches no other solid: its supersampled volume equals 4/3 pi abc."""
    anatomy = make_anatomy(np.random.default_rng([7, 0]))
    bladder = dict(anatomy.solids)[MRSEG_IDS["urinary_bladder"]]
    assert isinstance(bladder, Ellipsoid)
    a, b, c = bladder.semi_axes
    analytic_ml = 4.0 / 3.0 * math.pi * a * b * c / 1000.0
    p = make_participant(7, 0, "mini")
    row = next(r for r in p.truth if r["label_id"] == MRSEG_IDS["urinary_bladder"])
    assert row["volume_ml"] == pytest.approx(analytic_ml, rel=0.01)


def test_label_map_volume_close_to_truth(participant):
    lab = _arr(participant.labels)
    voxel_ml = float(np.prod(participant.labels.GetSpacing())) / 1000.0
    for row in participant.truth:
        if row["volume_ml"] >= 100:
            n = int((lab == row["label_id"]).sum())
            assert n * voxel_ml == pytest.approx(row["volume_ml"], rel=0.06), row["label_name"]


def test_vessels_are_single_components(participant):
    lab = _arr(participant.labels)
    for vid in VESSEL_IDS:
        _, n = cc3d.connected_components(lab == vid, connectivity=26, return_N=True)
        assert n == 1, vid


def test_dixon_signal_model(participant):
    ref = {ch: _arr(img).astype(np.float64) for ch, img in participant.reference.items()}
    np.testing.assert_allclose(ref["in"], ref["w"] + ref["f"], atol=1e-3)
    np.testing.assert_allclose(ref["opp"], np.abs(ref["w"] - ref["f"]), atol=1e-3)
    lab = _arr(participant.labels)
    liver = lab == MRSEG_IDS["liver"]
    true_ff = next(r["fat_fraction"] for r in participant.truth if r["label_id"] == 5)
    inner = liver & (np.roll(liver, 2, 0) & np.roll(liver, -2, 0))
    ff = ref["f"][inner] / (ref["f"][inner] + ref["w"][inner])
    assert np.median(ff) == pytest.approx(true_ff, abs=1e-6)


def test_station_noise_level_matches_snr(participant):
    """Air is pure complex noise: Rayleigh mean sigma*sqrt(pi/2) with sigma = scale/snr."""
    first = _arr(participant.stations["w"][0]).astype(np.float64)
    ref = _arr(participant.reference["w"])[: first.shape[0]]
    air = ref == 0
    sigma = SIGNAL_SCALE / 20.0
    assert first[air].mean() == pytest.approx(sigma * math.sqrt(math.pi / 2), rel=0.03)


def test_stations_tile_the_reference_grid(participant):
    pre = PRESETS["mini"]
    nz = participant.labels.GetSize()[2]
    ranges = station_slices(nz, pre.n_stations, pre.overlap_slices)
    assert ranges[0][0] == 0 and ranges[-1][1] == nz
    for (_, a1), (b0, _) in itertools.pairwise(ranges):
        assert a1 - b0 >= pre.overlap_slices
    for (a, _), img in zip(ranges, participant.stations["in"], strict=True):
        z0 = participant.labels.GetOrigin()[2] + a * participant.labels.GetSpacing()[2]
        assert img.GetOrigin()[2] == pytest.approx(z0)
        assert img.GetSpacing() == participant.labels.GetSpacing()


def test_curved_centerline_length_matches_arc_length_integral():
    start, end = np.array([15.0, 22.0, 590.0]), np.array([80.0, -8.0, 432.0])
    d = float(np.linalg.norm(end - start))
    for amp, k in ((8.0, 1), (20.0, 2), (32.0, 2)):
        line = curved_centerline(start, end, amplitude_mm=amp, half_waves=k)
        # |c'(t)| = sqrt(D^2 + (A pi k cos(pi k t))^2) because the offset is normal to the chord
        exact, _ = quad(
            lambda t, a=amp, k=k: math.hypot(d, a * math.pi * k * math.cos(math.pi * k * t)), 0, 1
        )
        assert polyline_length(line) == pytest.approx(exact, rel=1e-5)


def test_iliac_truth_tortuosity(participant):
    rows = [r for r in participant.truth if r["label_id"] in (16, 17)]
    assert len(rows) == 2
    for r in rows:
        assert r["tortuosity_index"] == pytest.approx(
            r["centerline_length_mm"] / r["chord_length_mm"]
        )
        assert 1.0 < r["tortuosity_index"] < 1.8


def test_nifti_cohort_with_manifest(tmp_path):
    import pandas as pd

    from mrcohort.phantoms.phantom import write_cohort

    write_cohort(tmp_path, layout="nifti", participants=1, seed=1, preset="mini")
    manifest = pd.read_csv(tmp_path / "manifest.csv", dtype={"participant_id": str})
    assert len(manifest) == 4 * PRESETS["mini"].n_stations
    assert set(manifest["channel"]) == {"in", "opp", "w", "f"}
    for path in manifest["path"]:
        assert (tmp_path / path).is_file()
    truth = pd.read_csv(tmp_path / "truth.csv", dtype={"participant_id": str})
    assert set(truth["participant_id"]) == {"1000001"}
    for name in ("labels", "in", "opp", "w", "f"):
        assert (tmp_path / "truth" / "1000001" / f"{name}.nii.gz").is_file()


def test_nako_layout_writer(tmp_path, participant):
    import pydicom

    from mrcohort.phantoms.phantom import NAKO_DESCRIPTIONS, write_nako_participant

    series = write_nako_participant(participant, tmp_path, visit="2")
    n_dixon = 4 * participant.preset.n_stations
    assert len(series) == n_dixon + 2
    assert [s.relative_to(tmp_path).as_posix() for s in series[:2]] == [
        f"{participant.participant_id}/2/S001",
        f"{participant.participant_id}/2/S002",
    ]
    descriptions = []
    for folder in series:
        files = sorted(folder.iterdir())
        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
        descriptions.append(str(ds.SeriesDescription))
        assert str(ds.PatientName) == "ANONYMOUS"
    assert descriptions.count("T2_HASTE_TRA") == 2
    assert {d for d in descriptions} == set(NAKO_DESCRIPTIONS.values())
    haste = pydicom.dcmread(sorted(series[-1].iterdir())[0], stop_before_pixels=True)
    dixon = pydicom.dcmread(sorted(series[0].iterdir())[0], stop_before_pixels=True)
    assert float(haste.SliceThickness) == pytest.approx(2 * float(dixon.SliceThickness))

    files = write_nako_participant(participant, tmp_path / "nii", fmt="nifti", haste=False)
    assert len(files) == n_dixon
    assert files[0].name == "3D_GRE_TRA_in_s1.nii.gz"
    img = sitk.ReadImage(str(files[0]))
    np.testing.assert_allclose(img.GetOrigin(), participant.stations["in"][0].GetOrigin())
    with pytest.raises(ValueError, match="fmt"):
        write_nako_participant(participant, tmp_path, fmt="png")
