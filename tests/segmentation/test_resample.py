"""Image resampling in torch equals nnU-Net's scipy path."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize(
    ("shape", "spacing", "target"),
    [
        ((40, 50, 60), (4.0, 3.0, 3.0), (5.0, 3.5, 3.5)),  # 3D cubic, downsampling
        ((30, 40, 44), (5.0, 3.5, 3.5), (2.0, 1.5, 1.5)),  # 3D cubic, upsampling
        ((30, 50, 60), (10.0, 1.0, 1.0), (5.0, 1.5, 1.5)),  # anisotropic: in-plane + nearest z
    ],
)
def test_torch_image_resampling_equals_nnunets_scipy_path(shape, spacing, target):
    import torch
    from nnunetv2.preprocessing.resampling.default_resampling import (
        compute_new_shape,
        resample_data_or_seg_to_shape,
    )

    from mrcohort.segmentation.resample import resample_like_nnunet

    data = np.random.default_rng(0).normal(size=(1, *shape)).cumsum(1).cumsum(2)
    new = compute_new_shape(shape, spacing, target)
    # the plans' kwargs (force_separate_z=None: decide by anisotropy, as nnU-Net's plans do)
    ref = resample_data_or_seg_to_shape(
        data, new, spacing, target, order=3, order_z=0, force_separate_z=None
    )
    ours = resample_like_nnunet(torch.from_numpy(data), new, spacing, target).numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5 * np.abs(ref).max())
