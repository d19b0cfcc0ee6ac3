"""Seam error of linear-ramp stitching vs the voxel-wise maximum merge, on phantoms.

Stations are cut (with independent Rician noise) from a known whole-body phantom volume;
both merges are scored against the noise-free volume, inside the body (in-phase reference
> 10 % of full signal), separately in the overlap slices ("seam") and elsewhere ("away").
The maximum merge is what the seed's stitching tool does (AIAH_utility; it then smooths
in z, which is not reproduced here).

    python benchmarks/stitch_seams.py [--presets mini ukbb nako] [--n 2] [--seed 5]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import SimpleITK as sitk
from stitch_baseline import maximum_merge

from mrcohort.cohort.stitch import stitch
from mrcohort.phantoms import SIGNAL_SCALE, make_participant, station_slices


def errors(p, channel: str) -> dict[str, float]:
    ref = sitk.GetArrayFromImage(p.reference[channel]).astype(np.float64)
    cuts = station_slices(ref.shape[0], p.preset.n_stations, p.preset.overlap_slices)
    seam = np.zeros(ref.shape[0], dtype=bool)
    for (_, stop), (start, _) in itertools.pairwise(cuts):
        seam[start:stop] = True
    body = sitk.GetArrayViewFromImage(p.reference["in"]) > 0.1 * SIGNAL_SCALE
    at_seam, away = body & seam[:, None, None], body & ~seam[:, None, None]
    out = {}
    for name, fn in (("ramp", stitch), ("max", maximum_merge)):
        err = sitk.GetArrayFromImage(fn(p.stations[channel])).astype(np.float64) - ref
        out[f"{name}_seam"] = float(np.sqrt(np.mean(err[at_seam] ** 2)))
        out[f"{name}_away"] = float(np.sqrt(np.mean(err[away] ** 2)))
        out[f"{name}_bias_seam"] = float(err[at_seam].mean())
        out[f"{name}_bias_away"] = float(err[away].mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--presets", nargs="+", default=["mini", "ukbb", "nako"])
    ap.add_argument("--n", type=int, default=2, help="participants per preset")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--channels", nargs="+", default=["in", "w", "f"])
    args = ap.parse_args()
    print(
        "| preset | channel | ramp seam RMSE | ramp away RMSE | ramp seam/away | "
        "max seam RMSE | max seam/away | ramp bias seam | max bias seam |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in args.presets:
        t0 = time.perf_counter()
        people = [make_participant(args.seed, i, preset) for i in range(args.n)]
        t_make = time.perf_counter() - t0
        for ch in args.channels:
            rows = [errors(p, ch) for p in people]
            m = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            print(
                f"| {preset} | {ch} | {m['ramp_seam']:.1f} | {m['ramp_away']:.1f} | "
                f"{m['ramp_seam'] / m['ramp_away']:.2f} | {m['max_seam']:.1f} | "
                f"{m['max_seam'] / m['max_away']:.2f} | {m['ramp_bias_seam']:+.1f} | "
                f"{m['max_bias_seam']:+.1f} |"
            )
        print(f"<!-- {preset}: {args.n} phantoms made in {t_make:.0f} s -->")


if __name__ == "__main__":
    main()
