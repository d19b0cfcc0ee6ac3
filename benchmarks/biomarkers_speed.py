"""Speed of all biomarkers for one NAKO-size participant, and a side-by-side comparison with
TotalSegmentator's ``totalsegmentator.statistics.get_basic_statistics`` (volume + mean
intensity), on one CPU core.

Run (from the repository root)::

    .venv/bin/python benchmarks/biomarkers_speed.py --setup-venv

``--setup-venv`` creates TotalSegmentator's own small venv if it is missing (its torch and
nnU-Net dependencies are not needed for the statistics function, so they are skipped)::

    python3 -m venv /tmp/bench-ts-venv
    /tmp/bench-ts-venv/bin/pip install --no-deps totalsegmentator==2.18.0
    /tmp/bench-ts-venv/bin/pip install numpy nibabel tqdm

The case is ``mrcohort.phantoms.fixtures.benchmark_participant()``: 316 x 260 x 320 voxels at
3 x 1.40625 x 1.40625 mm with all 40 MRSegmentator labels and Dixon images. Both sides run
in this one invocation, pinned to the same single core; the ratios printed are measured
side by side. TotalSegmentator gets the label map in its ``total_mr`` ids (mapped by name)
and the in-phase image as int16 (it casts to int16 itself); it is asked for exactly the 40
mapped classes (``roi_subset``) without its border exclusion, so both compute the same
numbers, which the script checks.
"""

from __future__ import annotations

import os

# One core for everything, set before numpy and friends start any thread pools; the
# TotalSegmentator subprocess inherits both the affinity and the variables.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"
CORE = min(os.sched_getaffinity(0))
os.sched_setaffinity(0, {CORE})

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from mrcohort.biomarkers.connectivity import vessel_connectivity  # noqa: E402
from mrcohort.biomarkers.fat_fraction import fat_fraction_stats  # noqa: E402
from mrcohort.biomarkers.participant import measure_participant  # noqa: E402
from mrcohort.biomarkers.qc import participant_qc  # noqa: E402
from mrcohort.biomarkers.tortuosity import vessel_tortuosity  # noqa: E402
from mrcohort.biomarkers.volume import label_volumes  # noqa: E402
from mrcohort.labels.catalogues import TOTALSEG_MR_CLASSES, source_to_mrseg_ids  # noqa: E402
from mrcohort.phantoms.fixtures import benchmark_participant  # noqa: E402


@dataclass(frozen=True)
class _MeanIntensity:
    label_id: int
    intensity_mean: float


def label_mean_intensity(labels: np.ndarray, image: np.ndarray) -> list[_MeanIntensity]:
    """Mean image value per MRSegmentator label in one weighted bincount (the counterpart of
    TotalSegmentator's intensity statistic; benchmark-only, not a biomarker of the tables)."""
    counts = np.bincount(labels.ravel(), minlength=41)
    sums = np.bincount(labels.ravel(), weights=image.ravel().astype(np.float64), minlength=41)
    return [
        _MeanIntensity(i, float(sums[i] / counts[i]) if counts[i] else math.nan)
        for i in range(1, 41)
    ]

TS_VENV = Path("/tmp/bench-ts-venv")
TS_VERSION = "2.18.0"

TS_SCRIPT = r"""
import json, os, statistics, sys, time
import nibabel as nib
import numpy as np
from totalsegmentator.statistics import get_basic_statistics
import totalsegmentator
seg_path, img_path, names_json, repeats = sys.argv[1:5]
names = json.loads(names_json)
seg = np.asanyarray(nib.load(seg_path).dataobj).astype(np.uint8)
img = nib.load(img_path)
arr = np.asanyarray(img.dataobj)
times = []
for _ in range(int(repeats)):
    fresh = nib.Nifti1Image(arr, img.affine, img.header)  # no cached get_fdata between runs
    t = time.perf_counter()
    stats = get_basic_statistics(seg, fresh, quiet=True, task="total_mr",
                                 exclude_masks_at_border=False, roi_subset=names)
    times.append(time.perf_counter() - t)
from importlib.metadata import version
print(json.dumps({"times": times, "stats": stats, "version": version("TotalSegmentator")},
                 default=float))
"""


def _timeit(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def setup_venv() -> None:
    if (TS_VENV / "bin" / "python").exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(TS_VENV)], check=True)
    pip = str(TS_VENV / "bin" / "pip")
    subprocess.run([pip, "install", "--no-deps", f"totalsegmentator=={TS_VERSION}"], check=True)
    subprocess.run([pip, "install", "numpy", "nibabel", "tqdm"], check=True)


def _write_nifti(arr: np.ndarray, spacing_zyx: tuple[float, ...], path: Path) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(tuple(reversed(spacing_zyx)))
    sitk.WriteImage(img, str(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--setup-venv", action="store_true", help="create TotalSegmentator's venv")
    parser.add_argument("--ts-python", type=Path, default=TS_VENV / "bin" / "python")
    args = parser.parse_args()

    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, pinned to core {CORE}; python {platform.python_version()}"
    )

    t = time.perf_counter()
    ph = benchmark_participant()
    labels, sp = ph.labels, ph.spacing_mm
    print(
        f"case: {labels.shape} voxels at {sp} mm, {len(np.unique(labels)) - 1} labels, "
        f"{(labels > 0).mean():.1%} labelled (built in {time.perf_counter() - t:.1f} s)"
    )

    def everything() -> object:
        return measure_participant(
            labels, spacing_mm=sp, fat=ph.fat, water=ph.water, in_phase=ph.in_phase
        )

    t = time.perf_counter()
    everything()
    cold = time.perf_counter() - t
    warm, runs = _timeit(everything, args.repeats)
    print(
        f"\nall measures, one participant: first call {cold:.2f} s (imports, numba JIT in "
        f"skan), then median {warm:.2f} s over {args.repeats} "
        f"(min {min(runs):.2f}, max {max(runs):.2f}); target <= 3 s"
    )

    vols = label_volumes(labels, spacing_mm=sp)
    ffs = fat_fraction_stats(
        labels, fat=ph.fat, water=ph.water, in_phase=ph.in_phase, spacing_mm=sp
    )
    conn = vessel_connectivity(labels, spacing_mm=sp)
    parts = {
        "volume": lambda: label_volumes(labels, spacing_mm=sp),
        "Dixon fat fraction": lambda: fat_fraction_stats(
            labels, fat=ph.fat, water=ph.water, in_phase=ph.in_phase, spacing_mm=sp
        ),
        "connectivity (26 + 6)": lambda: vessel_connectivity(labels, spacing_mm=sp),
        "iliac tortuosity": lambda: vessel_tortuosity(labels, spacing_mm=sp),
        "qc": lambda: participant_qc(vols, fat_fractions=ffs, connectivity=conn),
    }
    for name, fn in parts.items():
        med, _ = _timeit(fn, args.repeats)
        print(f"  {name:24s} {med * 1000:8.0f} ms")

    # --- side by side with TotalSegmentator: volume + mean intensity
    if args.setup_venv:
        setup_venv()
    image = np.clip(np.rint(ph.in_phase), -32768, 32767).astype(np.int16)

    def ours() -> tuple[object, object]:
        return label_volumes(labels, spacing_mm=sp), label_mean_intensity(labels, image)

    ours_med, ours_runs = _timeit(ours, args.repeats)
    our_vols, our_means = ours()
    if not args.ts_python.exists():
        print(f"\n{args.ts_python} missing: rerun with --setup-venv for the comparison")
        return 0
    to_mrseg = source_to_mrseg_ids("totalseg_mr")
    lut = np.zeros(41, np.uint8)
    for ts_id, mrseg_id in to_mrseg.items():
        lut[mrseg_id] = ts_id
    names = {mrseg_id: TOTALSEG_MR_CLASSES[ts_id] for ts_id, mrseg_id in to_mrseg.items()}
    with tempfile.TemporaryDirectory() as tmp:
        seg_path, img_path = Path(tmp, "seg.nii.gz"), Path(tmp, "img.nii.gz")
        _write_nifti(lut[labels], sp, seg_path)
        _write_nifti(image, sp, img_path)
        out = subprocess.run(
            [
                str(args.ts_python),
                "-c",
                TS_SCRIPT,
                str(seg_path),
                str(img_path),
                json.dumps(sorted(names.values())),
                str(args.repeats),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    ts = json.loads(out.stdout.strip().splitlines()[-1])
    ts_med = statistics.median(ts["times"])
    worst_vol = max(
        abs(ts["stats"][names[r.label_id]]["volume"] - r.volume_ml * 1000.0)
        / max(r.volume_ml * 1000.0, 1e-12)
        for r in our_vols
    )
    worst_mean = max(
        abs(ts["stats"][names[r.label_id]]["intensity"] - r.intensity_mean) for r in our_means
    )
    print(f"\nvolume + mean intensity, 40 labels (TotalSegmentator {ts['version']}):")
    print(f"  mrcohort          median {ours_med * 1000:8.0f} ms  (runs {_ms(ours_runs)})")
    print(f"  TotalSegmentator  median {ts_med * 1000:8.0f} ms  (runs {_ms(ts['times'])})")
    print(f"  speed-up {ts_med / ours_med:.1f}x (target >= 3x)")
    print(
        f"  agreement: volumes max relative difference {worst_vol:.1e}, "
        f"mean intensity max absolute difference {worst_mean:.1e} (TS rounds to 1e-5)"
    )
    return 0


def _ms(times: list[float]) -> str:
    return ", ".join(f"{t * 1000:.0f}" for t in times) + " ms"


if __name__ == "__main__":
    raise SystemExit(main())
