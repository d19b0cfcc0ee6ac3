"""Mean intensity per label against numpy's per-label mean."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrcohort.biomarkers.intensity import label_mean_intensity


def test_matches_numpy_per_label_mean() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 41, (15, 17, 19), dtype=np.uint8)
    labels[labels == 9] = 0
    image = rng.normal(100.0, 20.0, labels.shape).astype(np.float32)
    recs = label_mean_intensity(labels, image)
    assert [r.label_id for r in recs] == list(range(1, 41))
    for r in recs:
        mask = labels == r.label_id
        assert r.n_vox == int(mask.sum())
        if r.label_id == 9:
            assert r.n_vox == 0 and math.isnan(r.intensity_mean)
        else:
            assert r.intensity_mean == pytest.approx(float(image[mask].mean(dtype=np.float64)))


def test_order_and_validation() -> None:
    labels = np.zeros((3, 3, 3), np.uint8)
    labels[1, 1, 1] = 5
    image = np.arange(27, dtype=np.int16).reshape(3, 3, 3)
    (liver, spleen) = label_mean_intensity(labels, image, label_ids=[5, 1])
    assert (liver.label_name, liver.intensity_mean) == ("liver", 13.0)
    assert spleen.n_vox == 0
    with pytest.raises(ValueError, match="shape"):
        label_mean_intensity(labels, image[:2])
