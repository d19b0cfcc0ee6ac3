"""The torch inference engine: chunking, fold ensembling and resampling against nnU-Net's own."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort import stitch_channels
from mrcohort.phantoms import make_participant
from mrcohort.segmentation.model import InferenceSettings


def test_plan_chunks_cover_every_slice_once():
    from mrcohort.segmentation.inference import plan_chunks, plan_for_budget

    for n, k in ((10, 1), (10, 3), (7, 7), (5, 9)):
        plan = plan_chunks(n, k, margin=4)
        covered = [i for a, b in plan.cores for i in range(a, b)]
        assert covered == list(range(n))
    assert plan_for_budget(100, 8, slice_cost=10, budget=2000).cores == ((0, 100),)
    for budget in (400, 250, 60):
        plan = plan_for_budget(100, 8, slice_cost=10, budget=budget)
        cap = budget // 10
        assert [i for a, b in plan.cores for i in range(a, b)] == list(range(100))
        for a, b in plan.cores:  # every chunk, margins included, fits the budget
            assert (b - a) + 2 * plan.margin <= cap


def test_two_folds_are_ensembled_like_nnunet(tmp_path, tiny_model, mr_image):
    """A two-fold model: the torch engine averages both folds exactly as nnU-Net does."""
    import torch

    from mrcohort.segmentation.predictor import Segmenter

    two = tmp_path / "two"
    shutil.copytree(tiny_model, two)
    ckpt = torch.load(two / "fold_0" / "checkpoint_final.pth", weights_only=False)
    gen = torch.Generator().manual_seed(0)
    ckpt["network_weights"] = {
        k: v + 0.05 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
        for k, v in ckpt["network_weights"].items()
    }
    ckpt["init_args"]["fold"] = 1
    (two / "fold_1").mkdir()
    torch.save(ckpt, two / "fold_1" / "checkpoint_final.pth")
    img = mr_image  # on the model's own grid: both paths compute the same thing
    ours = Segmenter.load(two, InferenceSettings(), device="cpu")
    theirs = Segmenter.load(two, InferenceSettings(engine="nnunet"), device="cpu")
    assert ours._predictor.list_of_parameters.__len__() == 2
    a = sitk.GetArrayFromImage(ours.segment(img))
    b = sitk.GetArrayFromImage(theirs.segment(img))
    assert (a == b).mean() > 0.999
    one = sitk.GetArrayFromImage(Segmenter.load(two, InferenceSettings(folds=(0,))).segment(img))
    assert (one != a).any()  # the second fold changed the result


@pytest.mark.slow
def test_chunked_inference_matches_whole_volume():
    """The memory-bounded mode (chunks along z with context margins) agrees with one pass
    of the shipped model on a whole-body phantom, up to sliding-window tiling."""
    from mrcohort.segmentation.inference import TorchInference
    from mrcohort.segmentation.predictor import get_segmenter

    seg = get_segmenter("demo", device="cpu")
    p = make_participant(12, 0, "mini")
    arr = np.concatenate([sitk.GetArrayFromImage(s) for s in p.stations["in"][1:4]])
    spacing = (5.0, 3.5, 3.5)
    whole = TorchInference(seg._predictor).predict(arr, spacing)
    plane = arr.shape[1] * arr.shape[2] * 41
    chunked = TorchInference(seg._predictor, max_voxels_logits=plane * 60).predict(arr, spacing)
    assert chunked.shape == whole.shape and chunked.dtype == np.uint8
    fg = (whole > 0) | (chunked > 0)
    assert (chunked[fg] == whole[fg]).mean() > 0.95


@pytest.mark.slow
def test_torch_engine_equals_nnunet_on_a_resampled_input():
    """Input at 3x3x4 mm into the demo model's 3.5x3.5x5 mm: both resampling steps run."""
    from mrcohort.segmentation.predictor import Segmenter

    img = stitch_channels({"in": make_participant(11, 1, "mini").stations["in"]})["in"]
    size = [
        round(n * s / t)
        for n, s, t in zip(img.GetSize(), img.GetSpacing(), (3.0, 3.0, 4.0), strict=True)
    ]
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing((3.0, 3.0, 4.0))
    grid.SetOrigin(img.GetOrigin())
    grid.SetDirection(img.GetDirection())
    moved = sitk.Resample(img, grid, sitk.Transform(), sitk.sitkLinear, 0.0)
    ours = sitk.GetArrayFromImage(Segmenter.load("demo", device="cpu").segment(moved))
    nnunet = Segmenter.load("demo", InferenceSettings(engine="nnunet"), device="cpu")
    theirs = sitk.GetArrayFromImage(nnunet.segment(moved))
    fg = (ours > 0) | (theirs > 0)
    assert (ours[fg] == theirs[fg]).mean() > 0.999  # was 0.967 with trilinear image resampling
