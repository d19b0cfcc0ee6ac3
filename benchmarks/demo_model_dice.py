"""Dice per label of a model on held-out phantom participants (default: the demo model).

Held-out: the phantoms come from the cohort streams ``[seed, index]``; the demo model was
trained on streams ``[20201, 1_000_000 + i]`` only. Input is the stitched noisy in-phase
image, exactly what the cohort job segments.

    python benchmarks/demo_model_dice.py [--model demo|DIR] [--body-comp] [--n 4] [--seed 11]

A body-composition model (``--model demo --body-comp``, or any folder whose dataset.json has
those 10 classes) is scored against the phantom's body-composition truth (the classes the
phantom has: subcutaneous, abdominal subcutaneous and gluteofemoral fat).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import SimpleITK as sitk

from mrcohort.cohort.stitch import stitch
from mrcohort.labels import BODY_COMP_LABEL_MAP
from mrcohort.phantoms import make_participant
from mrcohort.segmentation.model import resolve_model_folder
from mrcohort.segmentation.predictor import get_segmenter


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.logical_and(a, b).sum()) / max(1, int(a.sum() + b.sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--body-comp", action="store_true")
    args = ap.parse_args()
    variant = "body_comp" if args.body_comp else None
    seg = get_segmenter(str(resolve_model_folder(args.model, variant=variant)), device="cpu")
    scores: dict[int, list[float]] = {}
    seconds = []
    for i in range(args.n):
        p = make_participant(args.seed, i, args.preset)
        t0 = time.perf_counter()
        pred = sitk.GetArrayFromImage(seg.segment(stitch(p.stations["in"])))
        seconds.append(time.perf_counter() - t0)
        bc = seg.label_map is BODY_COMP_LABEL_MAP
        truth = sitk.GetArrayFromImage(p.body_comp if bc else p.labels)
        rows = p.body_comp_truth if bc else p.truth
        for row in rows:
            lid = int(row["label_id"])
            if float(row["volume_ml"]) > 0:  # classes the phantom has
                scores.setdefault(lid, []).append(dice(pred == lid, truth == lid))
    print(
        f"model_key {seg.model_key}; {args.n} held-out phantoms (seed {args.seed}, "
        f"{args.preset}); segmentation {np.mean(seconds):.1f} s/scan"
    )
    print("| label | mean Dice | min Dice |")
    print("|---|---|---|")
    for lid in sorted(scores):
        s = scores[lid]
        print(f"| {lid} {seg.label_map[lid].name} | {np.mean(s):.3f} | {np.min(s):.3f} |")


if __name__ == "__main__":
    main()
