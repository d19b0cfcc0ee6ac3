"""Accuracy of the biomarkers against analytic truth on the phantoms of
``mrcohort.phantoms.fixtures``.

Run (from the repository root)::

    .venv/bin/python benchmarks/biomarkers_accuracy.py

Prints, per grid (1 mm isotropic, UK Biobank 2.23 x 2.23 x 3 mm, NAKO 1.4 x 1.4 x 3 mm):
- tortuosity index error (smoothed centreline and raw voxel path) for helical and
  sinusoidal centrelines with true TI 1.05-1.6, and the sum-of-angles error;
- Dixon fat fraction bias (mean over noise draws) and volume error of the five organs
  (50-490 ml) of the validation phantom at SNR 20;
- component counts of vessels cut into 1-3 pieces (with dust), at 26- and 6-connectivity.
"""

from __future__ import annotations

import time

import numpy as np

from mrcohort.biomarkers.connectivity import vessel_connectivity
from mrcohort.biomarkers.fat_fraction import fat_fraction_stats
from mrcohort.biomarkers.tortuosity import vessel_tortuosity
from mrcohort.biomarkers.volume import label_volumes
from mrcohort.labels import MRSEG_LABEL_MAP
from mrcohort.phantoms import fixtures as synthetic

TIS = (1.05, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)
SEEDS = range(5)


def tortuosity() -> None:
    print("## Tortuosity index: error vs analytic TI (tube radius 4.5 mm, chord 100 mm)")
    print("grid  kind        TI err (smoothed) max|.|  TI err (raw path) range   SOAM err range")
    for grid, spacing in synthetic.GRIDS.items():
        for kind in ("helical", "sinusoidal"):
            ti_err, raw_err, soam_err = [], [], []
            for ti in TIS:
                case = synthetic.tortuous_tube(ti, kind, spacing_mm=spacing)
                (rec,) = vessel_tortuosity(case.labels, spacing_mm=spacing, label_ids=[16])
                ti_err.append(rec.tortuosity_index / ti - 1)
                raw_err.append(rec.tortuosity_index_raw / ti - 1)
                soam_err.append(rec.soam_rad_per_mm / case.centerline.soam_rad_per_mm - 1)
            print(
                f"{grid:5s} {kind:10s}  {_pct(ti_err)} max {max(map(abs, ti_err)):.2%}   "
                f"{min(raw_err):+.1%}..{max(raw_err):+.1%}   "
                f"{min(soam_err):+.0%}..{max(soam_err):+.0%}"
            )


def dixon_and_volume() -> None:
    print(
        "\n## Dixon FF bias (percentage points, mean over 5 noise draws, SNR 20) and volume error"
    )
    organs = {o.label_id: o for o in synthetic.VALIDATION_ORGANS}
    for grid in synthetic.GRIDS:
        bias = {lid: [] for lid in organs}
        vol_err = {}
        for seed in SEEDS:
            ph = synthetic.validation_dixon_phantom(grid, snr=20.0, seed=seed)
            for rec in fat_fraction_stats(
                ph.labels,
                fat=ph.fat,
                water=ph.water,
                in_phase=ph.in_phase,
                spacing_mm=ph.spacing_mm,
                label_ids=list(organs),
            ):
                bias[rec.label_id].append(100 * (rec.ff_median - organs[rec.label_id].ff))
            if seed == 0:
                for rec in label_volumes(
                    ph.labels, spacing_mm=ph.spacing_mm, label_ids=list(organs)
                ):
                    truth = synthetic.ellipsoid_volume_ml(organs[rec.label_id].semi_axes_mm)
                    vol_err[rec.label_id] = rec.volume_ml / truth - 1
        cells = [
            f"{MRSEG_LABEL_MAP[lid].name[:12]} FF {organs[lid].ff:.2f}: "
            f"{np.mean(b):+.2f} pp (sd {np.std(b):.2f}), vol {vol_err[lid]:+.2%}"
            for lid, b in bias.items()
        ]
        print(f"{grid}:\n  " + "\n  ".join(cells))


def connectivity() -> None:
    print("\n## Vessel cut into N pieces (+3 dust voxels): (n26, n6, dust26, dust6)")
    for grid, spacing in synthetic.GRIDS.items():
        out = []
        for n in (1, 2, 3):
            case = synthetic.vessel_in_pieces(n, spacing_mm=spacing, n_dust=3)
            (rec,) = vessel_connectivity(
                case.labels, spacing_mm=spacing, label_ids=[13], dust_mm3=case.dust_mm3
            )
            got = (
                rec.n_components_26,
                rec.n_components_6,
                rec.n_dust_components_26,
                rec.n_dust_components_6,
            )
            out.append(f"N={n}: {got} {'ok' if got == (n, n, 3, 3) else 'WRONG'}")
        print(f"{grid:5s} " + "   ".join(out))


def _pct(values: list[float]) -> str:
    return " ".join(f"{v:+.1%}" for v in values)


if __name__ == "__main__":
    t = time.perf_counter()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}; true TI values {TIS}")
    tortuosity()
    dixon_and_volume()
    connectivity()
    print(f"\n({time.perf_counter() - t:.0f} s)")
