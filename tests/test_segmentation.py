"""Model folders, model_key, the training script, and inference geometry."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from mrcohort.cli import app
from mrcohort.errors import SegmentationError
from mrcohort.labels import MRSEG_LABELS, LabelGroup
from mrcohort.segmentation.model import (
    InferenceSettings,
    cached_file_hash,
    demo_model_path,
    load_model_folder,
    model_key,
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A model folder written by the real training script, 2 iterations (smoke test)."""
    out = tmp_path_factory.mktemp("model") / "tiny"
    result = CliRunner().invoke(
        app, ["train-demo-model", "--out", str(out), "--iterations", "2", "--n-train", "1"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_training_script_writes_a_loadable_nnunet_folder(tiny_model):
    import torch

    assert (tiny_model / "plans.json").is_file()
    assert (tiny_model / "dataset.json").is_file()
    ckpt = torch.load(tiny_model / "fold_0" / "checkpoint_final.pth", weights_only=False)
    assert ckpt["trainer_name"] == "nnUNetTrainer"
    assert ckpt["inference_allowed_mirroring_axes"] is None
    assert ckpt["init_args"]["configuration"] == "3d_fullres"
    assert ckpt["mrcohort_training"]["iterations"] == 2
    folder = load_model_folder(tiny_model)
    assert folder.folds == (0,)


def test_missing_folder_and_incomplete_folders(tmp_path, tiny_model):
    with pytest.raises(SegmentationError) as e:
        load_model_folder(tmp_path / "nope")
    assert e.value.code == "MODEL_NOT_FOUND"
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    with pytest.raises(SegmentationError) as e:
        load_model_folder(broken, folds=(0, 1))
    assert e.value.code == "MODEL_INCOMPLETE" and "fold_1" in e.value.message
    (broken / "plans.json").unlink()
    with pytest.raises(SegmentationError) as e:
        load_model_folder(broken)
    assert e.value.code == "MODEL_INCOMPLETE"


def test_nnunet_trainer_folder_layout_is_found(tmp_path, tiny_model):
    nested = tmp_path / "Dataset999" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    shutil.copytree(tiny_model, nested)
    assert load_model_folder(tmp_path / "Dataset999").path == nested


def test_unreadable_checkpoint_is_a_clear_error(tmp_path, tiny_model):
    from mrcohort.segmentation.predictor import Segmenter

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    (bad / "fold_0" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(SegmentationError) as e:
        Segmenter.load(bad, device="cpu")
    assert e.value.code == "MODEL_UNREADABLE"


def test_model_key_follows_content_and_settings(tmp_path, tiny_model):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    settings = InferenceSettings()
    key = model_key(load_model_folder(copy), settings)
    assert key == model_key(load_model_folder(tiny_model), settings)  # content, not path
    assert key != model_key(load_model_folder(copy), InferenceSettings(tile_step_size=0.8))
    ckpt = copy / "fold_0" / "checkpoint_final.pth"
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")
    assert model_key(load_model_folder(copy), settings) != key


def test_file_hash_cache_is_keyed_by_size_and_mtime(tmp_path):
    import hashlib
    import os

    f, cache = tmp_path / "w.bin", tmp_path / "cache.json"
    f.write_bytes(b"abc")
    assert cached_file_hash(f, cache) == hashlib.sha256(b"abc").hexdigest()
    assert cache.is_file()
    f.write_bytes(b"abcd")
    os.utime(f, ns=(1, 10**18))
    assert cached_file_hash(f, cache) == hashlib.sha256(b"abcd").hexdigest()


def _test_image() -> sitk.Image:
    rng = np.random.default_rng(0)
    arr = rng.normal(500, 100, (24, 40, 48)).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((3.5, 3.5, 5.0))
    img.SetOrigin((-80.0, -60.0, 300.0))
    return img


@pytest.mark.parametrize("orientation", ["RAS", "PIL", "LPS"])
def test_outputs_agree_across_orientations(tiny_model, orientation):
    """Reoriented copies of one image give the same labels after restoring geometry."""
    from mrcohort.segmentation.predictor import get_segmenter

    seg = get_segmenter(tiny_model, device="cpu")
    img = _test_image()
    ref = seg.segment(img)
    moved = sitk.DICOMOrient(img, orientation)
    out = seg.segment(moved)
    assert out.GetSize() == moved.GetSize()
    assert out.GetDirection() == moved.GetDirection()
    assert out.GetPixelID() == sitk.sitkUInt8
    back = sitk.Resample(out, ref, sitk.Transform(), sitk.sitkNearestNeighbor)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(ref))


def test_predictor_is_cached_per_process(tiny_model):
    from mrcohort.segmentation.predictor import get_segmenter

    assert get_segmenter(tiny_model, device="cpu") is get_segmenter(tiny_model, device="cpu")


def test_segment_cli_writes_seg_files(tmp_path, tiny_model):
    img_path = tmp_path / "scan.nii.gz"
    sitk.WriteImage(_test_image(), str(img_path))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["segment", "--model", str(tiny_model), "--out", str(out), "--cpu", str(img_path)]
    )
    assert result.exit_code == 0, result.output
    seg = sitk.ReadImage(str(out / "scan_seg.nii.gz"))
    assert seg.GetSize() == (48, 40, 24)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / max(1, a.sum() + b.sum())


@pytest.mark.slow
def test_shipped_demo_model_segments_held_out_phantom():
    """The shipped model on a phantom it never saw (cohort stream, not training stream)."""
    from mrcohort.cohort.stitch import stitch
    from mrcohort.phantoms import make_participant
    from mrcohort.segmentation.predictor import get_segmenter

    if not (demo_model_path() / "fold_0" / "checkpoint_final.pth").is_file():
        pytest.fail("the demo model is not in the package")
    p = make_participant(11, 2, "mini")
    image = stitch(p.stations["in"])
    seg = get_segmenter("demo", device="cpu").segment(image)
    truth = sitk.GetArrayFromImage(p.labels)
    pred = sitk.GetArrayFromImage(seg)
    assert pred.shape == truth.shape
    for row in p.truth:
        d = _dice(pred == row["label_id"], truth == row["label_id"])
        group = MRSEG_LABELS[row["label_id"]].group
        # regression floors under the Dice recorded in benchmarks/RESULTS.md
        floor = {LabelGroup.ORGAN: 0.93, LabelGroup.VESSEL: 0.87}.get(group, 0.88)
        assert d >= floor, (row["label_name"], round(d, 3))


def test_segment_cli_bad_image_is_one_line_error(tmp_path, tiny_model):
    flat = sitk.GetImageFromArray(np.zeros((20, 30), np.float32))  # a 2D image
    sitk.WriteImage(flat, str(tmp_path / "flat.nii.gz"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrcohort.cli",
            "segment",
            "--model",
            str(tiny_model),
            "--out",
            str(tmp_path / "o"),
            "--cpu",
            str(tmp_path / "flat.nii.gz"),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "BAD_DIMENSION" in proc.stderr and "Traceback" not in proc.stderr


def test_fast_mode_uses_one_fold_and_a_larger_step(tiny_model):
    from mrcohort.segmentation.model import fast_settings

    fast = fast_settings(load_model_folder(tiny_model))
    assert fast.folds == (0,) and fast.tile_step_size == 0.8 and fast.use_mirroring is False
    folder = load_model_folder(tiny_model)
    assert model_key(folder, fast) != model_key(folder, InferenceSettings())


@pytest.mark.slow
def test_chunked_inference_matches_whole_volume():
    """The memory-bounded mode (chunks along z with context margins) agrees with one pass
    of the shipped model on a whole-body phantom, up to sliding-window tiling."""
    from mrcohort.phantoms import make_participant
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


def test_two_folds_are_ensembled_like_nnunet(tmp_path, tiny_model):
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
    img = _test_image()  # on the model's own grid: both paths compute the same thing
    ours = Segmenter.load(two, InferenceSettings(), device="cpu")
    theirs = Segmenter.load(two, InferenceSettings(engine="nnunet"), device="cpu")
    assert ours._predictor.list_of_parameters.__len__() == 2
    a = sitk.GetArrayFromImage(ours.segment(img))
    b = sitk.GetArrayFromImage(theirs.segment(img))
    assert (a == b).mean() > 0.999
    one = sitk.GetArrayFromImage(Segmenter.load(two, InferenceSettings(folds=(0,))).segment(img))
    assert (one != a).any()  # the second fold changed the result


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


@pytest.mark.slow
def test_torch_engine_equals_nnunet_on_a_resampled_input():
    """Input at 3x3x4 mm into the demo model's 3.5x3.5x5 mm: both resampling steps run."""
    from mrcohort.cohort.stitch import stitch
    from mrcohort.phantoms import make_participant
    from mrcohort.segmentation.predictor import Segmenter

    img = stitch(make_participant(11, 1, "mini").stations["in"])
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
