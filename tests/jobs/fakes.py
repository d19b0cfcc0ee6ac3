"""A stand-in for the segmentation model and a small job configuration, for the job tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.jobs.participant import JobConfig
from mrcohort.labels import MRSEG_LABEL_MAP

#: The label the fake model paints on every voxel with signal (liver).
FAKE_LABEL = 5


class FakeSegmenter:
    """Labels every voxel with a positive value as `FAKE_LABEL`, on the image's own grid."""

    model_key = "k1"
    label_map = MRSEG_LABEL_MAP

    def segment(self, image: sitk.Image) -> sitk.Image:
        arr = (sitk.GetArrayFromImage(image) > 0).astype(np.uint8) * FAKE_LABEL
        out = sitk.GetImageFromArray(arr)
        out.CopyInformation(image)
        return out


def use_fake_segmenter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every job segment with `FakeSegmenter` (no model folder, no torch)."""
    import mrcohort.segmentation.predictor as predictor

    monkeypatch.setattr(predictor, "get_segmenter", lambda *a, **k: FakeSegmenter())


def job_config(tmp_path: Path) -> JobConfig:
    """A job writing to ``tmp_path/store`` under the fake model's key."""
    return JobConfig(cohort="t", store=tmp_path / "store", model="unused", model_key="k1")
