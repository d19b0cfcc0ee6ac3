"""Overlaps found from image content on QMRITools' Join_1..7 (real leg stations whose
headers all carry the same origin), given in a shuffled order.

    python benchmarks/stitch_join.py [--data ../shared/data/qmritools]
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from pathlib import Path

import SimpleITK as sitk

from mrcohort.cohort.placement import estimate_placement
from mrcohort.cohort.stitch import stitch

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "qmritools"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    names = [f"Join_{i}.nii.gz" for i in range(1, 8)]
    random.Random(args.seed).shuffle(names)
    images = [sitk.ReadImage(str(args.data / n), sitk.sitkFloat32) for n in names]
    t0 = time.perf_counter()
    placement = estimate_placement(images)
    t_place = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = stitch(images, positions="content")
    t_stitch = time.perf_counter() - t0
    order = [names[i] for i in placement.order]
    print(f"given order: {', '.join(names)}")
    print(f"found order: {', '.join(order)}")
    pairs = itertools.pairwise(order)
    for (a, b), ov, sc in zip(pairs, placement.overlaps, placement.scores, strict=True):
        print(f"  {a} -> {b}: {ov} slices (NCC {sc:.3f})")
    print(
        f"stitched: {'x'.join(map(str, out.GetSize()))}; placement {t_place:.2f} s, "
        f"placement + stitch {t_stitch:.2f} s"
    )


if __name__ == "__main__":
    main()
