"""Time to stitch one participant (all Dixon channels onto one grid) on ONE core.

Phantom stations at full UK Biobank (6 stations, 224x168 at 2.23 mm, 3 mm slices) and NAKO
(4 stations, 320x260 at 1.41 mm, 3 mm slices) size, 4 channels. Two cases:
``aligned``: every station's voxels lie on the output grid (stations cut from one
volume: a copy per station); ``shifted``: each station moved by a fraction of a voxel in
all three axes (as real stations often are), so every station is resampled (linear).
Also the same ``shifted`` case with the seed-style maximum merge per channel.

Run with one thread everywhere (set before numpy/SimpleITK start):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        python benchmarks/stitch_speed.py [--presets ukbb nako] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import SimpleITK as sitk
from stitch_baseline import maximum_merge

from mrcohort.cohort.stitch import stitch_channels
from mrcohort.phantoms import make_participant


def shifted(stations: dict[str, list[sitk.Image]], rng: np.random.Generator):
    """Copies moved by a random fraction of a voxel per station (same for all channels)."""
    n = len(next(iter(stations.values())))
    offsets = [rng.uniform(0.1, 0.45, 3) for _ in range(n)]
    out = {}
    for ch, imgs in stations.items():
        out[ch] = []
        for img, off in zip(imgs, offsets, strict=True):
            moved = sitk.Image(img)
            moved.SetOrigin(tuple(np.add(img.GetOrigin(), off * np.asarray(img.GetSpacing()))))
            out[ch].append(moved)
    return out


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--presets", nargs="+", default=["ukbb", "nako"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="SimpleITK threads")
    args = ap.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    print(f"SimpleITK threads: {sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}")
    print("| preset | stations x channels | station size | output size | case | seconds |")
    print("|---|---|---|---|---|---|")
    for preset in args.presets:
        p = make_participant(3, 0, preset)
        st = p.stations
        n = len(st["in"])
        size = "x".join(map(str, st["in"][0].GetSize()))
        moved = shifted(st, np.random.default_rng(0))
        out = stitch_channels(st)
        grid = "x".join(map(str, out["in"].GetSize()))
        cases = {
            "aligned (copy)": lambda st=st: stitch_channels(st),
            "shifted (resample)": lambda moved=moved: stitch_channels(moved),
            "shifted, max merge": lambda moved=moved: [maximum_merge(v) for v in moved.values()],
        }
        for name, fn in cases.items():
            sec = best_of(fn, args.repeat)
            print(f"| {preset} | {n} x 4 | {size} | {grid} | {name} | {sec:.2f} |")


if __name__ == "__main__":
    main()
