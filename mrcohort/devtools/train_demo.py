"""Train the shipped demo model: a small nnU-Net v2 ``PlainConvUNet`` on phantom participants.

The result is a model folder in MRSegmentator's flat layout (``plans.json``, ``dataset.json``,
``fold_0/checkpoint_final.pth``) that loads through ``nnUNetPredictor.
initialize_from_trained_model_folder`` — exactly the path real MRSegmentator weights take.
It predicts the 40 MRSegmentator label ids (the phantom contains 22 of them), or with
``label_set="body_comp"`` the 10 body-composition classes of MRSegmentator 2.0 (the phantom
has 3 of them: subcutaneous, abdominal subcutaneous and gluteofemoral fat).

Training data are preprocessed by nnU-Net's own ``DefaultPreprocessor`` (crop to non-zero,
z-score normalisation, resampling to the plans' spacing), so training and inference see the
same intensities. The loop itself is a plain seeded torch loop (nnU-Net's trainer needs a
raw/preprocessed dataset on disk and data-loader processes; this needs neither): random
patches with class-balanced foreground oversampling, Dice + cross-entropy, AdamW with poly
learning-rate decay.

Re-train with ``mrcohort train-demo-model --out mrcohort/segmentation/demo_model`` (about
50 minutes on 2 cores with the defaults, `DEMO_DEFAULTS`), and the body-composition twin
with ``mrcohort train-demo-model --body-comp --out mrcohort/segmentation/demo_body_comp_model``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mrcohort.labels import BODY_COMP_LABELS, MRSEG_LABELS
from mrcohort.phantoms.participant import render_participant
from mrcohort.phantoms.presets import PRESETS
from mrcohort.phantoms.signal import noisy_channels
from mrcohort.segmentation.nnunet_env import ensure_nnunet_env

ensure_nnunet_env()

import torch  # noqa: E402
from nnunetv2.preprocessing.preprocessors.default_preprocessor import (  # noqa: E402
    DefaultPreprocessor,
)
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer  # noqa: E402
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager  # noqa: E402

CONFIGURATION = "3d_fullres"
TRAINER_NAME = "nnUNetTrainer"


#: (iterations, training phantoms) of the shipped demo models, per label set.
DEMO_DEFAULTS: dict[str, tuple[int, int]] = {"base": (4000, 16), "body_comp": (2500, 12)}


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines the trained weights (recorded in the checkpoint)."""

    seed: int = 20201
    n_train: int = 10
    iterations: int = 1500
    batch_size: int = 2
    patch_size: tuple[int, int, int] = (32, 64, 64)  # z, y, x voxels
    lr: float = 3e-3
    weight_decay: float = 3e-5
    foreground_fraction: float = 0.67
    snr_range: tuple[float, float] = (10.0, 40.0)
    preset: str = "mini"
    threads: int = 2
    label_set: str = "base"  # "base" (40 MRSegmentator classes) or "body_comp" (10)


def demo_plans(spacing_zyx: tuple[float, float, float], patch_size: tuple[int, int, int]) -> dict:
    """An nnU-Net v2 ``plans.json`` with one ``3d_fullres`` PlainConvUNet configuration."""
    features = [8, 16, 32, 64, 80]
    arch = {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {
            "n_stages": 5,
            "features_per_stage": features,
            "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
            "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]],
            "n_conv_per_stage": [2, 2, 2, 2, 2],
            "n_conv_per_stage_decoder": [1, 1, 1, 1],
            "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }
    config = {
        "data_identifier": "nnUNetPlans_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": list(patch_size),
        "median_image_size_in_voxels": [200, 96, 128],
        "spacing": list(spacing_zyx),
        "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {
            "is_seg": False,
            "order": 3,
            "order_z": 0,
            "force_separate_z": None,
        },
        "resampling_fn_seg_kwargs": {
            "is_seg": True,
            "order": 1,
            "order_z": 0,
            "force_separate_z": None,
        },
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {
            "is_seg": False,
            "order": 1,
            "order_z": 0,
            "force_separate_z": None,
        },
        "architecture": arch,
        "batch_dice": True,
    }
    return {
        "dataset_name": "Dataset999_MrcohortDemo",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": list(spacing_zyx),
        "original_median_shape_after_transp": [200, 96, 128],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {CONFIGURATION: config},
        "experiment_planner_used": "mrcohort.devtools.train_demo",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {
            "0": {
                "max": 2000.0,
                "mean": 600.0,
                "median": 600.0,
                "min": 0.0,
                "percentile_00_5": 0.0,
                "percentile_99_5": 1500.0,
                "std": 300.0,
            }
        },
    }


def demo_dataset_json(n_train: int, label_set: str = "base") -> dict:
    """An nnU-Net v2 ``dataset.json`` with MRSegmentator's 40 labels (or the 10
    body-composition classes) and one MR channel."""
    classes = {"base": MRSEG_LABELS, "body_comp": BODY_COMP_LABELS}[label_set]
    labels = {"background": 0} | {lab.name: lab.id for lab in classes.values()}
    return {
        "channel_names": {"0": "MR"},
        "labels": labels,
        "numTraining": n_train,
        "file_ending": ".nii.gz",
        "name": "mrcohort demo model"
        + ("" if label_set == "base" else f", {label_set}")
        + " (phantom-trained, NOT for real images)",
    }


def build_network(plans: dict, dataset_json: dict) -> torch.nn.Module:
    """The network exactly as nnU-Net's predictor will build it from the plans."""
    pm = PlansManager(plans)
    cm = pm.get_configuration(CONFIGURATION)
    n_out = pm.get_label_manager(dataset_json).num_segmentation_heads
    return nnUNetTrainer.build_network_architecture(pm, cm, 1, n_out, enable_deep_supervision=False)


def preprocess(
    image_zyx: np.ndarray,
    seg_zyx: np.ndarray | None,
    spacing_zyx: tuple[float, float, float],
    plans: dict,
    dataset_json: dict,
) -> tuple[np.ndarray, np.ndarray | None]:
    """nnU-Net's own preprocessing of one volume: returns (1,z,y,x) float32 and (z,y,x) seg."""
    pm = PlansManager(plans)
    cm = pm.get_configuration(CONFIGURATION)
    data = image_zyx[None].astype(np.float32)
    seg = None if seg_zyx is None else seg_zyx[None].astype(np.int16)
    out, out_seg, _ = DefaultPreprocessor(verbose=False).run_case_npy(
        data, seg, {"spacing": list(spacing_zyx)}, pm, cm, dataset_json
    )
    if out_seg is None:
        return out.astype(np.float32), None
    return out.astype(np.float32), np.maximum(out_seg[0], 0).astype(np.uint8)


def training_volumes(
    settings: TrainSettings, plans: dict, dataset_json: dict
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Preprocessed (image, labels) pairs of phantoms drawn only for training.

    Streams ``[seed, 1_000_000 + i]`` never meet the cohort streams ``[seed, index]`` used by
    ``mrcohort phantom``/``demo``, so held-out evaluation phantoms are never trained on.
    """
    preset = PRESETS[settings.preset]
    spacing_zyx = tuple(reversed(preset.spacing_mm))
    out = []
    for i in range(settings.n_train):
        rng = np.random.default_rng([settings.seed, 1_000_000 + i])
        _, _, rendered = render_participant(rng, preset)
        snr = float(rng.uniform(*settings.snr_range))
        image = noisy_channels(rendered.water, rendered.fat, snr=snr, rng=rng)["in"]
        truth = rendered.body_comp if settings.label_set == "body_comp" else rendered.labels
        data, seg = preprocess(image, truth, spacing_zyx, plans, dataset_json)
        assert seg is not None
        out.append((data, seg))
    return out


class PatchSampler:
    """Random patches; a fraction centred on a voxel of a randomly chosen present class."""

    def __init__(
        self,
        volumes: list[tuple[np.ndarray, np.ndarray]],
        patch: tuple[int, int, int],
        rng: np.random.Generator,
    ) -> None:
        self.volumes, self.patch, self.rng = volumes, np.array(patch), rng
        self.fg = [
            {int(c): np.argwhere(seg == c) for c in np.unique(seg) if c > 0} for _, seg in volumes
        ]

    def sample(self, foreground: bool) -> tuple[np.ndarray, np.ndarray]:
        v = int(self.rng.integers(len(self.volumes)))
        data, seg = self.volumes[v]
        shape = np.array(seg.shape)
        if foreground and self.fg[v]:
            cls = list(self.fg[v])[int(self.rng.integers(len(self.fg[v])))]
            vox = self.fg[v][cls][int(self.rng.integers(len(self.fg[v][cls])))]
            jitter = self.rng.integers(-self.patch // 3, self.patch // 3 + 1)
            start = vox - self.patch // 2 + jitter
        else:
            start = self.rng.integers(0, np.maximum(shape - self.patch, 0) + 1)
        start = np.clip(start, 0, np.maximum(shape - self.patch, 0))
        sl = tuple(slice(int(a), int(a) + int(p)) for a, p in zip(start, self.patch, strict=True))
        img, lab = data[(slice(None), *sl)], seg[sl]
        pad = [(0, int(p) - s) for p, s in zip(self.patch, lab.shape, strict=True)]
        if any(b for _, b in pad):
            img = np.pad(img, [(0, 0), *pad], constant_values=float(img.min()))
            lab = np.pad(lab, pad)
        return img, lab


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1e-5) -> torch.Tensor:
    """Cross-entropy + batch soft Dice over foreground classes present in the batch."""
    ce = torch.nn.functional.cross_entropy(logits, target)
    probs = torch.softmax(logits, 1)
    onehot = torch.nn.functional.one_hot(target, logits.shape[1]).permute(0, 4, 1, 2, 3)
    dims = (0, 2, 3, 4)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    present = onehot.sum(dims) > 0
    present[0] = False
    dice = (2 * inter + smooth) / (denom + smooth)
    soft_dice = dice[present].mean() if present.any() else torch.zeros((), device=logits.device)
    return ce + (1 - soft_dice)


def train(
    out_dir: Path,
    settings: TrainSettings = TrainSettings(),
    log: Callable[[str], None] = print,
) -> Path:
    """Train the demo model and write the model folder; returns ``out_dir``."""
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    rng = np.random.default_rng(settings.seed)
    preset = PRESETS[settings.preset]
    spacing_zyx = tuple(float(s) for s in reversed(preset.spacing_mm))
    plans = demo_plans(spacing_zyx, settings.patch_size)
    dataset_json = demo_dataset_json(settings.n_train, settings.label_set)
    t0 = time.perf_counter()
    volumes = training_volumes(settings, plans, dataset_json)
    log(f"generated {len(volumes)} training phantoms in {time.perf_counter() - t0:.1f} s")
    sampler = PatchSampler(volumes, settings.patch_size, rng)
    net = build_network(plans, dataset_json)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    net.train()
    t0, running = time.perf_counter(), math.nan
    for it in range(settings.iterations):
        lr = settings.lr * (1 - it / settings.iterations) ** 0.9
        for group in opt.param_groups:
            group["lr"] = lr
        pairs = [
            sampler.sample(rng.random() < settings.foreground_fraction)
            for _ in range(settings.batch_size)
        ]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]))
        # random intensity scale/shift on the normalised image (robustness to scanner gain)
        x = x * float(rng.uniform(0.9, 1.1)) + float(rng.uniform(-0.1, 0.1))
        y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.int64))
        loss = dice_ce_loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12.0)
        opt.step()
        val = float(loss.detach())
        running = val if math.isnan(running) else 0.98 * running + 0.02 * val
        if (it + 1) % 50 == 0 or it + 1 == settings.iterations:
            el = time.perf_counter() - t0
            log(f"iter {it + 1}/{settings.iterations} loss {running:.4f} lr {lr:.2e} {el:.0f} s")
    save_model_folder(
        out_dir, net, plans, dataset_json, settings, train_seconds=time.perf_counter() - t0
    )
    return out_dir


def save_model_folder(
    out_dir: Path,
    net: torch.nn.Module,
    plans: dict,
    dataset_json: dict,
    settings: TrainSettings,
    *,
    train_seconds: float,
) -> None:
    """Write plans.json, dataset.json and fold_0/checkpoint_final.pth (nnU-Net v2 keys)."""
    out_dir = Path(out_dir)
    (out_dir / "fold_0").mkdir(parents=True, exist_ok=True)
    (out_dir / "plans.json").write_text(json.dumps(plans, indent=2))
    (out_dir / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
    checkpoint = {
        # state_dict as is: cloning would break aliasing of shared weights and triple the file
        "network_weights": net.state_dict(),
        "init_args": {
            "plans": plans,
            "configuration": CONFIGURATION,
            "fold": 0,
            "dataset_json": dataset_json,
            "device": "cpu",
        },
        "trainer_name": TRAINER_NAME,
        # trained without mirroring (like MRSegmentator): TTA would mix left and right labels
        "inference_allowed_mirroring_axes": None,
        "current_epoch": settings.iterations,
        "mrcohort_training": asdict(settings)
        | {"train_seconds": round(train_seconds, 1), "torch": torch.__version__},
    }
    tmp = out_dir / "fold_0" / ".checkpoint_final.pth.tmp"
    torch.save(checkpoint, tmp)
    os.replace(tmp, out_dir / "fold_0" / "checkpoint_final.pth")
