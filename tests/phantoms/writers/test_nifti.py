"""The NIfTI layout writer and its manifest rows (mrcohort.phantoms.writers.nifti)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from mrcohort.phantoms.writers.nifti import (
    MANIFEST_COLUMNS,
    manifest_rows,
    write_nifti_participant,
)


def test_one_file_per_station_listed_in_the_manifest(tmp_path, participant):
    files = write_nifti_participant(participant, tmp_path)
    n = participant.preset.n_stations
    assert len(files) == 4 * n
    rows = manifest_rows(participant, files, tmp_path)
    assert all(tuple(r) == MANIFEST_COLUMNS for r in rows)
    first = rows[n]  # first station of the second channel
    assert (first["channel"], first["station"]) == ("opp", 1)
    assert first["path"] == f"{participant.participant_id}/station1_opp.nii.gz"
    img = sitk.ReadImage(str(tmp_path / first["path"]))
    np.testing.assert_allclose(
        img.GetOrigin(), participant.stations["opp"][0].GetOrigin(), atol=1e-4
    )
