"""Peer benchmark: ``mrcohort segment`` vs the ``mrsegmentator`` CLI, same weights, offline.

MRSegmentator is installed from PyPI into its OWN venv (never into the project's), with the
recipe that works offline here (CPU torch; ``--no-deps`` keeps pip from pulling torch<=2.10
with the CUDA stack):

    python3 -m venv /tmp/mrseg-venv
    /tmp/mrseg-venv/bin/pip install torch==2.13.0 "torchvision==0.28.*" nnunetv2==2.8.0 \\
        pydicom highdicom
    /tmp/mrseg-venv/bin/pip install --no-deps mrsegmentator==2.0.0

This script runs that recipe itself when ``<venv>/bin/mrsegmentator`` is missing (or with
``--setup``). MRSegmentator then runs in its "legacy mode": ``MRSEG_WEIGHTS_PATH`` points at
the model folder (``plans.json`` at its root), so it loads that folder as a raw nnU-Net model
and downloads nothing; ``--fold 0 --cpu_only`` (its other options at their defaults: step
0.5, mirroring on — a no-op for a checkpoint that allows no mirroring axes — 3 preprocessing
and 8 export processes).

Inputs: ``--n`` stitched noisy in-phase phantoms (held-out streams ``[seed, i]``, mini
preset) plus participant 0 resampled to 3 x 3 x 4 mm, written as NIfTI. Measured side by
side in ONE run (rotating order per scan), on the CPU:

- per scan, one CLI call each: ``mrcohort segment --model demo --cpu --out D IMG`` vs
  ``mrsegmentator -i IMG -o D --fold 0 --cpu_only`` (wall time incl. start-up and model load);
- one CLI call for all scans each (wall time / scans: start-up amortised);
- ours through the Python API with the model loaded once (``Segmenter.segment``), which is
  how the cohort job runs it;
- label maps of both CLIs compared voxel by voxel (fraction identical over the whole volume
  / over the union of non-zero labels).

    .venv/bin/python benchmarks/segmentation_vs_mrsegmentator.py [--n 2] [--venv /tmp/mrseg-venv]
        [--model demo|DIR] [--setup]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from seg_bench_common import REPO, code_version, fmt_agree, machine_line, phantom_cases, timed

RECIPE = [
    [
        "-m",
        "pip",
        "install",
        "torch==2.13.0",
        "torchvision==0.28.*",
        "nnunetv2==2.8.0",
        "pydicom",
        "highdicom",
    ],
    ["-m", "pip", "install", "--no-deps", "mrsegmentator==2.0.0"],
]


def setup_venv(venv: Path, force: bool) -> Path:
    """The ``mrsegmentator`` executable of ``venv``, installing it first when needed."""
    exe = venv / "bin" / "mrsegmentator"
    if exe.is_file() and not force:
        return exe
    python3 = shutil.which("python3") or sys.executable
    print(f"installing mrsegmentator into {venv} (separate venv) ...", flush=True)
    if not (venv / "bin" / "python").is_file():
        subprocess.run([python3, "-m", "venv", str(venv)], check=True)
    for step in RECIPE:
        subprocess.run([str(venv / "bin" / "python"), *step], check=True)
    if not exe.is_file():
        sys.exit(f"{exe} missing after installation")
    return exe


def run_cli(cmd: list[str], env: dict[str, str], log: Path) -> float:
    """Wall seconds of one CLI call; stops the benchmark with its log on failure."""
    t0 = time.perf_counter()
    with log.open("ab") as fh:
        fh.write(("$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        rc = subprocess.run(
            cmd, check=False, env=env, stdout=fh, stderr=subprocess.STDOUT
        ).returncode
    dt = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"command failed (rc {rc}): {' '.join(cmd)}\n{log.read_text()[-3000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--venv", type=Path, default=Path("/tmp/mrseg-venv"))
    ap.add_argument("--setup", action="store_true", help="(re)run the install recipe")
    args = ap.parse_args()

    from mrcohort.segmentation.model import InferenceSettings, resolve_model_folder
    from mrcohort.segmentation.predictor import Segmenter

    mrseg = setup_venv(args.venv, args.setup)
    ours_cli = Path(sys.executable).parent / "mrcohort"
    model_dir = resolve_model_folder(args.model)
    print(f"# segmentation_vs_mrsegmentator — {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"code {code_version(REPO)}; machine: {machine_line()}")
    ver = subprocess.run(
        [str(args.venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    pins = [x for x in ver.split() if x.split("==")[0] in ("mrsegmentator", "nnunetv2", "torch")]
    print(f"peer venv {args.venv}: {', '.join(pins)}; model {model_dir}")

    tmp = Path(tempfile.mkdtemp(prefix="mrcohort-vs-mrseg-"))
    inputs = tmp / "in"
    inputs.mkdir()
    cases = phantom_cases(args.n, seed=args.seed)
    paths = {}
    for c in cases:
        paths[c.name] = inputs / f"{c.name}.nii.gz"
        sitk.WriteImage(c.image, str(paths[c.name]))
    log = tmp / "cli.log"
    env_ours = dict(os.environ)
    env_peer = dict(os.environ, MRSEG_WEIGHTS_PATH=str(model_dir))

    def ours_cmd(out: Path, imgs: list[Path]) -> list[str]:
        opts = ["--model", args.model, "--cpu", "--out", str(out)]
        return [str(ours_cli), "segment", *opts, *(str(p) for p in imgs)]

    def peer_cmd(out: Path, inp: Path) -> list[str]:
        opts = ["--fold", "0", "--cpu_only", "--no_tqdm"]
        return [str(mrseg), "-i", str(inp), "-o", str(out), *opts]

    # warm the file cache and imports of both CLIs once (not timed)
    run_cli([str(ours_cli), "--help"], env_ours, log)
    run_cli([str(mrseg), "--help"], env_peer, log)

    secs: dict[str, dict[str, float]] = {"ours": {}, "peer": {}}
    for k, c in enumerate(cases):
        order = ["ours", "peer"] if k % 2 == 0 else ["peer", "ours"]
        for who in order:
            out = tmp / f"{who}_single"
            out.mkdir(exist_ok=True)
            cmd = ours_cmd(out, [paths[c.name]]) if who == "ours" else peer_cmd(out, paths[c.name])
            secs[who][c.name] = run_cli(cmd, env_ours if who == "ours" else env_peer, log)
        print(f"  {c.name}: " + ", ".join(f"{w} {secs[w][c.name]:.1f} s" for w in order))
    t_batch_peer = run_cli(peer_cmd(tmp / "peer_batch", inputs), env_peer, log)
    t_batch_ours = run_cli(ours_cmd(tmp / "ours_batch", list(paths.values())), env_ours, log)
    print(f"  batch: ours {t_batch_ours:.1f} s, peer {t_batch_peer:.1f} s")

    # ours through the Python API, model loaded once (the cohort job's way)
    t_load, seg = timed(Segmenter.load, args.model, InferenceSettings(), device="cpu")
    seg.segment(cases[0].image[:, :, :40])  # warm-up, not timed
    api = {c.name: timed(seg.segment, c.image)[0] for c in cases}
    print(f"load average at end {os.getloadavg()[0]:.2f}\n")

    def read(who: str, name: str) -> np.ndarray:
        return sitk.GetArrayFromImage(sitk.ReadImage(str(tmp / who / f"{name}_seg.nii.gz")))

    print(
        "| case | shape (z,y,x) | spacing x,y,z mm | mrcohort CLI s | mrsegmentator CLI s | "
        "ours/peer | mrcohort API (warm) s | identical voxels (all / fg) | batch runs identical |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        o, p = secs["ours"][c.name], secs["peer"][c.name]
        lo, lp = read("ours_single", c.name), read("peer_single", c.name)
        batch_same = (read("ours_batch", c.name) == lo).all() and (
            read("peer_batch", c.name) == lp
        ).all()
        print(
            f"| {c.name} | {'x'.join(map(str, c.shape_zyx))} | "
            f"{','.join(f'{s:g}' for s in c.spacing_xyz)} | {o:.1f} | {p:.1f} | {o / p:.2f} | "
            f"{api[c.name]:.1f} | {fmt_agree(lo, lp)} | {'yes' if batch_same else 'no'} |"
        )
    n = len(cases)
    so, sp = sum(secs["ours"].values()), sum(secs["peer"].values())
    print(
        f"\nper scan, one CLI call each: ours {so / n:.1f} s, mrsegmentator {sp / n:.1f} s "
        f"(ours/peer {so / sp:.2f}x); one call for all {n}: ours {t_batch_ours / n:.1f} s/scan, "
        f"mrsegmentator {t_batch_peer / n:.1f} s/scan (ours/peer "
        f"{t_batch_ours / t_batch_peer:.2f}x); ours via the API, model loaded once "
        f"({t_load:.1f} s): {sum(api.values()) / n:.1f} s/scan"
    )
    print(f"files and CLI log in {tmp}")


if __name__ == "__main__":
    main()
