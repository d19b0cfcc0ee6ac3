"""The NAKO layout writer and its T2 HASTE stand-in (mrcohort.phantoms.writers.nako)."""

from __future__ import annotations

import hashlib

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from mrcohort.phantoms.writers.nako import (
    HASTE_SLICE_FACTOR,
    HASTE_STATIONS,
    NAKO_DESCRIPTIONS,
    haste_stations,
    write_nako_participant,
)


def test_nako_layout_writer(tmp_path, participant):
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


def test_haste_stations_are_pinned_and_thicker(participant):
    """Same bytes as before phantoms became a package (noise through rician_magnitude)."""
    stations = haste_stations(participant)
    assert len(stations) == HASTE_STATIONS
    ref = participant.reference["in"]
    assert stations[0].GetSpacing()[2] == ref.GetSpacing()[2] * HASTE_SLICE_FACTOR
    digest = hashlib.sha256(sitk.GetArrayViewFromImage(stations[0]).tobytes()).hexdigest()
    assert digest == "b07cdc566f2ce99174a7e3be0d593d0a4f63e26fa903b39cfba386f4461e15cd"
