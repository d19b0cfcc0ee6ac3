"""GPU utilisation of the whole cohort job: NAKO-size phantom participants through read +
stitch (CPU workers) → segment (the GPU worker) → measure (CPU workers) on the local cluster,
with an nnU-Net model of MRSegmentator's size (random weights, written by
``segmentation_gpu.write_model``). Prints the share of the job's wall time the GPU was busy
(NVML utilisation sampled every 0.2 s, from the first segmentation to the last, and over the
whole job), the per-stage split from the ledger, and participants per hour. Goal: ≥ 90 %.

    python benchmarks/gpu_job.py [--participants 6] [--cpu-workers N]
    python benchmarks/segmentation_gpu.py --job ...     # the same
    python benchmarks/gpu_job.py --smoke                # tiny, on CPU: checks the script
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from segmentation_gpu import FULL, SMOKE, GpuSampler, write_model


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=6)
    ap.add_argument("--cpu-workers", type=int, default=0, help="0 = cores - 2 (at least 1)")
    ap.add_argument("--prepared-ahead", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="mini phantoms, tiny model, CPU")
    ap.add_argument("--work", type=Path, default=None)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    import torch
    from rich.console import Console

    from mrcohort.config import load_config
    from mrcohort.jobs.run import run_job
    from mrcohort.phantoms import write_cohort
    from mrcohort.schemas.store import read_table

    gpu = torch.cuda.is_available()
    if not gpu and not args.smoke:
        sys.exit("gpu_job.py: no CUDA GPU visible; run it on a GPU machine or with --smoke")
    work = args.work or Path(tempfile.mkdtemp(prefix="mrcohort-gpujob-"))
    model = write_model(work / "model", SMOKE if args.smoke else FULL)
    source = work / "in"
    t0 = time.perf_counter()
    preset = "mini_nako" if args.smoke else "nako"
    write_cohort(source, layout="nako", participants=args.participants, seed=0, preset=preset)
    print(f"{args.participants} {preset} participants written in {time.perf_counter() - t0:.0f} s")
    cpu_workers = args.cpu_workers or max(1, (os.cpu_count() or 2) - 2)
    cfg = load_config(
        None,
        {
            "input.source": source / "nako",
            "input.layout": "nako",
            "input.cohort": "bench",
            "store.path": work / "store",
            "model.name": str(model),
            "model.device": "auto" if gpu else "cpu",
            "cluster.workers": cpu_workers,
            "cluster.torch_threads": 2,
            "cluster.prepared_ahead": args.prepared_ahead,
            "progress.interval_seconds": 3600.0,
            # smoke: the tiny model on CPU, one pass per tile (full-size inference is the GPU's)
            **({"model.mirroring": "off", "model.tile_step_size": 1.0} if args.smoke else {}),
        },
    )
    with GpuSampler() as sampler:
        t0 = time.perf_counter()
        summary = run_job(cfg, console=Console(stderr=True))
        wall = time.perf_counter() - t0
    ledger = read_table(work / "store", "ledger").to_pandas()
    stages = {c: ledger[c].sum() for c in ledger.columns if c.startswith("seconds_")}
    print(f"participants: {summary.n_ok} ok, {summary.n_failed} failed, wall {wall:.0f} s, "
          f"{3600 * summary.n_ok / wall:.0f}/hour, CPU workers {cpu_workers}")  # fmt: skip
    print("stage seconds (sum over participants): "
          + ", ".join(f"{k[8:]} {v:.1f}" for k, v in stages.items() if v))  # fmt: skip
    busy = sampler.busy
    print(f"GPU busy over the whole job: {'n/a (no GPU)' if busy is None else f'{busy:.0%}'}")
    if sampler.samples:
        active = _active_window(sampler.samples)
        print(f"GPU busy from its first to its last segmentation: {active:.0%} (goal >= 90%)")
    return 0


def _active_window(samples: list[float]) -> float:
    """Mean utilisation between the first and the last non-zero sample (the job's start —
    cluster, model load — and its last measures are CPU only)."""
    nonzero = [i for i, v in enumerate(samples) if v > 0]
    if not nonzero:
        return 0.0
    window = samples[nonzero[0] : nonzero[-1] + 1]
    return sum(window) / len(window) / 100


if __name__ == "__main__":
    raise SystemExit(main())
