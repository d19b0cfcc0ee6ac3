"""Shared pieces of the segmentation benchmarks (phantom cases, agreement, timing helpers).

Not a benchmark itself: imported by ``segmentation_cpu.py``,
``segmentation_vs_mrsegmentator.py`` and ``segmentation_gpu.py`` (run them from the
repository root, e.g. ``.venv/bin/python benchmarks/segmentation_cpu.py``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk


@dataclass
class Case:
    """One input image of a benchmark."""

    name: str
    image: sitk.Image  # LPS-oriented float32 (phantoms are LPS already)
    truth: sitk.Image | None = None  # phantom label map on the image's grid

    @property
    def shape_zyx(self) -> tuple[int, ...]:
        return tuple(reversed(self.image.GetSize()))

    @property
    def spacing_xyz(self) -> tuple[float, ...]:
        return tuple(round(s, 4) for s in self.image.GetSpacing())

    def lps_array(self) -> tuple[np.ndarray, list[float]]:
        """(z, y, x) float32 array and (sz, sy, sx) spacing, as MRSegmentator passes them."""
        lps = sitk.DICOMOrient(self.image, "LPS")
        arr = sitk.GetArrayFromImage(lps).astype(np.float32)
        return arr, [float(s) for s in reversed(lps.GetSpacing())]


def resample_to_spacing(img: sitk.Image, spacing_xyz: tuple[float, float, float]) -> sitk.Image:
    """Linear resampling onto a grid of the same extent with another spacing."""
    size = [
        max(1, round(n * s / t))
        for n, s, t in zip(img.GetSize(), img.GetSpacing(), spacing_xyz, strict=True)
    ]
    ref = sitk.Image(size, img.GetPixelID())
    ref.SetSpacing(spacing_xyz)
    ref.SetDirection(img.GetDirection())
    # keep the physical extent: first voxel centre moves by half the spacing change
    origin = np.asarray(img.GetOrigin()) + np.asarray(img.GetDirection()).reshape(3, 3) @ (
        (np.asarray(spacing_xyz) - np.asarray(img.GetSpacing())) / 2
    )
    ref.SetOrigin(tuple(float(o) for o in origin))
    return sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def phantom_cases(
    n: int,
    *,
    seed: int = 11,
    preset: str = "mini",
    resampled_spacing: tuple[float, float, float] | None = (3.0, 3.0, 4.0),
) -> list[Case]:
    """Stitched noisy in-phase images of held-out phantoms ``[seed, 0..n-1]``.

    With ``resampled_spacing`` one more case: participant 0 resampled (linear) to that
    spacing, so the model's resampling (to its spacing and back) is exercised.
    """
    from mrcohort.cohort.stitch import stitch
    from mrcohort.phantoms import make_participant

    cases = []
    for i in range(n):
        p = make_participant(seed, i, preset)
        img = sitk.Cast(stitch(p.stations["in"]), sitk.sitkFloat32)
        truth = sitk.Resample(p.labels, img, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
        cases.append(Case(f"p{i}", img, truth))
    if resampled_spacing is not None and cases:
        tag = "x".join(f"{s:g}" for s in resampled_spacing)
        img = resample_to_spacing(cases[0].image, resampled_spacing)
        assert cases[0].truth is not None
        truth = sitk.Resample(cases[0].truth, img, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
        cases.append(Case(f"p0_{tag}mm", img, truth))
    return cases


def mean_dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean Dice over the labels present in ``truth`` (background excluded)."""
    scores = []
    for lab in np.unique(truth):
        if lab == 0:
            continue
        a, b = pred == lab, truth == lab
        scores.append(2.0 * float((a & b).sum()) / max(1, int(a.sum() + b.sum())))
    return float(np.mean(scores)) if scores else float("nan")


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(fraction of identical voxels, fraction identical within the union foreground)."""
    if a.shape != b.shape:
        return float("nan"), float("nan")
    same = a == b
    fg = (a > 0) | (b > 0)
    return float(same.mean()), float(same[fg].mean()) if fg.any() else 1.0


def fmt_agree(a: np.ndarray, b: np.ndarray) -> str:
    whole, fg = agreement(a, b)
    return f"{whole:.5f} / {fg:.4f}"


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence Python-level prints of nnU-Net (its predictors print per case)."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def code_version(repo: Path) -> str:
    """``git describe --always --dirty`` of the repository (read only)."""
    try:
        return subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_line() -> str:
    import platform

    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), python {sys.version.split()[0]}, "
        f"load average at start {load[0]:.2f}"
    )


REPO = Path(__file__).resolve().parents[1]
