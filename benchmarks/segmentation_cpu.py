"""CPU segmentation speed: ours (``Segmenter``, engine torch) vs nnU-Net's own entry points.

Same model (default: the shipped demo model), same phantom images, side by side in ONE
process and run, on the CPU:

(a) ``Segmenter.segment(image)`` — mrcohort, engine ``torch`` (resampling in torch; the
    time includes its LPS reorientation and the uint8 image it returns);
(b) ``nnUNetPredictor.predict_single_npy_array`` on the same LPS array and spacing, as
    MRSegmentator calls it (scipy resampling on the CPU);
(c) ``nnUNetPredictor.predict_from_files`` with nnU-Net's default settings on the same
    images written as NIfTI (``<case>_0000.nii.gz``): one call per scan (preprocessing and
    export worker processes are spawned per call, as in a per-scan pipeline), and
    (c*) one call for all scans (nnU-Net's batch mode; reported as wall time / scans).

Each engine is loaded once and warmed up on a small crop (not timed; load times reported
separately). Every scan is run ``--repeat`` rounds in rotating engine order (the batch call
(c*) alternately after and before the scans) so that background load hits all engines
alike; each figure is the best of its rounds, and the ratios are what to read on a busy
machine. Label maps are compared voxel by voxel (fraction identical over the whole volume /
over the union of non-zero labels), and (a) and (b) against the phantom truth (mean Dice
over the labels present), to show whether a difference between them matters.

Cases: ``--n`` stitched noisy in-phase phantoms (held-out streams ``[seed, i]``) on the
demo model's own grid (mini preset: 3.5 x 3.5 x 5 mm), plus participant 0 resampled to
``--spacing`` (default 3 x 3 x 4 mm), so that resampling to the model's spacing and back is
exercised.

    .venv/bin/python benchmarks/segmentation_cpu.py [--n 2] [--model demo|DIR]
        [--threads 2] [--nproc 2] [--spacing 3,3,4] [--repeat 2] [--no-files]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from seg_bench_common import (
    REPO,
    Case,
    code_version,
    fmt_agree,
    machine_line,
    mean_dice,
    phantom_cases,
    quiet_stdout,
    timed,
)


def bare_predictor(model_dir: Path, device: str = "cpu"):
    """An ``nnUNetPredictor`` set up exactly as MRSegmentator sets it up (no --fast)."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    with quiet_stdout():
        p = nnUNetPredictor(
            tile_step_size=0.5,
            use_gaussian=True,
            use_mirroring=True,  # a no-op: the checkpoint allows no mirroring axes
            device=torch.device(device),
            verbose=False,
            verbose_preprocessing=False,
            allow_tqdm=False,
        )
        p.initialize_from_trained_model_folder(str(model_dir), use_folds=(0,))
    return p


def dice(pred: np.ndarray, c: Case) -> str:
    if c.truth is None:
        return "-"
    return f"{mean_dice(pred, sitk.GetArrayFromImage(c.truth)):.4f}"


def crop_for_warmup(img: sitk.Image) -> sitk.Image:
    size = img.GetSize()
    sub = [min(s, w) for s, w in zip(size, (64, 64, 40), strict=True)]
    start = [(s - w) // 2 for s, w in zip(size, sub, strict=True)]
    return sitk.RegionOfInterest(img, sub, start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--n", type=int, default=2, help="phantom scans on the model's grid")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--spacing", default="3,3,4", help="x,y,z mm of the resampled case; '' off")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (main process)")
    ap.add_argument("--nproc", type=int, default=2, help="predict_from_files worker processes")
    ap.add_argument("--no-files", action="store_true", help="skip (c) predict_from_files")
    ap.add_argument("--repeat", type=int, default=2, help="rounds; each figure is the best")
    args = ap.parse_args()

    import torch

    from mrcohort.segmentation.model import InferenceSettings, resolve_model_folder
    from mrcohort.segmentation.nnunet_env import ensure_nnunet_env
    from mrcohort.segmentation.predictor import Segmenter

    ensure_nnunet_env()
    torch.set_num_threads(args.threads)
    import nnunetv2.inference.predict_from_raw_data  # noqa: F401  (imports outside load times)

    print(f"# segmentation_cpu — {time.strftime('%Y-%m-%d %H:%M')}, code {code_version(REPO)}")
    print(f"machine: {machine_line()}")
    spacing = tuple(float(s) for s in args.spacing.split(",")) if args.spacing else None
    t0 = time.perf_counter()
    cases = phantom_cases(args.n, seed=args.seed, preset=args.preset, resampled_spacing=spacing)
    print(f"{len(cases)} cases generated in {time.perf_counter() - t0:.1f} s (not timed below)")

    model_dir = resolve_model_folder(args.model)
    t_load_a, ours = timed(Segmenter.load, args.model, InferenceSettings(), device="cpu")
    t_load_b, bare = timed(bare_predictor, model_dir)
    print(
        f"model {model_dir} (model_key {ours.model_key}); load: ours {t_load_a:.2f} s, "
        f"nnUNetPredictor {t_load_b:.2f} s"
    )

    tmp = Path(tempfile.mkdtemp(prefix="mrcohort-segbench-"))
    inputs, outputs = tmp / "in", tmp / "out"
    inputs.mkdir()
    for c in cases:  # NIfTI inputs for (c), written before any timing
        sitk.WriteImage(sitk.DICOMOrient(c.image, "LPS"), str(inputs / f"{c.name}_0000.nii.gz"))

    def run_a(c: Case) -> np.ndarray:
        return sitk.GetArrayFromImage(ours.segment(c.image))

    arrays = {c.name: c.lps_array() for c in cases}

    def run_b(c: Case) -> np.ndarray:
        arr, sp = arrays[c.name]
        with quiet_stdout():
            return np.asarray(bare.predict_single_npy_array(arr[None], {"spacing": sp}, None))

    def run_c(names: list[str], tag: str) -> None:
        with quiet_stdout():
            bare.predict_from_files(
                [[str(inputs / f"{n}_0000.nii.gz")] for n in names],
                [str(outputs / tag / n) for n in names],
                save_probabilities=False,
                overwrite=True,
                num_processes_preprocessing=args.nproc,
                num_processes_segmentation_export=args.nproc,
            )

    def read_c(name: str, tag: str) -> np.ndarray:
        return sitk.GetArrayFromImage(sitk.ReadImage(str(outputs / tag / f"{name}.nii.gz")))

    # warm-up (not timed): one small crop through every engine
    warm = Case("warm", crop_for_warmup(cases[0].image))
    arrays["warm"] = warm.lps_array()
    sitk.WriteImage(warm.image, str(inputs / "warm_0000.nii.gz"))
    t_warm = time.perf_counter()
    run_a(warm)
    run_b(warm)
    if not args.no_files:
        run_c(["warm"], "warm")
    print(f"warm-up on a {warm.shape_zyx} crop: {time.perf_counter() - t_warm:.1f} s (not timed)")

    engines = ["a", "b"] + ([] if args.no_files else ["c"])
    runs: dict[str, dict[str, list[float]]] = {e: {c.name: [] for c in cases} for e in engines}
    labels: dict[str, dict[str, np.ndarray]] = {e: {} for e in engines}
    batch_runs: list[float] = []

    def run_batch(r: int) -> None:
        t, _ = timed(run_c, [c.name for c in cases], "batch")
        batch_runs.append(t)
        print(f"  round {r + 1} (c*) all {len(cases)} cases in one call: {t:.1f} s")

    for r in range(args.repeat):
        if not args.no_files and r % 2 == 1:
            run_batch(r)
        for k, c in enumerate(cases):
            shift = (k + r) % len(engines)
            order = engines[shift:] + engines[:shift]
            for e in order:
                if e == "a":
                    t, labels[e][c.name] = timed(run_a, c)
                elif e == "b":
                    t, labels[e][c.name] = timed(run_b, c)
                else:
                    t, _ = timed(run_c, [c.name], "single")
                    labels[e][c.name] = read_c(c.name, "single")
                runs[e][c.name].append(t)
            print(
                f"  round {r + 1} {c.name}: "
                + ", ".join(f"{e} {runs[e][c.name][-1]:.1f} s" for e in order)
            )
        if not args.no_files and r % 2 == 0:
            run_batch(r)
    # best of the rounds: the least disturbed run of each engine on a shared machine
    secs = {e: {n: min(ts) for n, ts in per.items()} for e, per in runs.items()}
    t_batch = min(batch_runs) if batch_runs else None
    if not args.no_files:
        for c in cases:
            if not (read_c(c.name, "batch") == labels["c"][c.name]).all():
                print(f"  note: batch and single predict_from_files differ on {c.name}")
    print(f"load average at end {os.getloadavg()[0]:.2f}\n")

    print(
        "| case | shape (z,y,x) | spacing x,y,z mm | (a) ours s | (b) predict_single_npy_array s "
        "| (c) predict_from_files s | a/b | a/c | agree a-b (all / fg) | agree a-c | agree b-c "
        "| mean Dice vs truth a / b |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        a, b = secs["a"][c.name], secs["b"][c.name]
        cc = secs["c"].get(c.name)
        la, lb = labels["a"][c.name], labels["b"][c.name]
        lc = labels["c"].get(c.name)
        print(
            f"| {c.name} | {'x'.join(map(str, c.shape_zyx))} | "
            f"{','.join(f'{s:g}' for s in c.spacing_xyz)} | {a:.1f} | {b:.1f} | "
            f"{'-' if cc is None else f'{cc:.1f}'} | {a / b:.2f} | "
            f"{'-' if cc is None else f'{a / cc:.2f}'} | {fmt_agree(la, lb)} | "
            f"{'-' if lc is None else fmt_agree(la, lc)} | "
            f"{'-' if lc is None else fmt_agree(lb, lc)} | {dice(la, c)} / {dice(lb, c)} |"
        )
    sa, sb = sum(secs["a"].values()), sum(secs["b"].values())
    line = (
        f"\nbest of {args.repeat} rounds, all {len(cases)} cases: ours {sa / len(cases):.1f} "
        f"s/scan, predict_single_npy_array "
        f"{sb / len(cases):.1f} s/scan (ours/theirs {sa / sb:.2f}x)"
    )
    if not args.no_files:
        sc = sum(secs["c"].values())
        line += (
            f", predict_from_files one call per scan {sc / len(cases):.1f} s/scan (ours/theirs "
            f"{sa / sc:.2f}x), one call for all {t_batch / len(cases):.1f} s/scan "
            f"(ours/theirs {sa / t_batch:.2f}x; nproc {args.nproc})"
        )
    print(line)
    print(f"outputs of (c) in {outputs}")


if __name__ == "__main__":
    main()
