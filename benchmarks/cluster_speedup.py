"""The demo cohort on the local cluster with 1 and then 2 worker processes, side by side in
one run: wall time of each whole job (real phantoms, the real demo model on CPU, all three
stages) and the speed-up.

::

    .venv/bin/python benchmarks/cluster_speedup.py [--participants 4] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

from mrcohort.config import load_config
from mrcohort.jobs.run import run_job
from mrcohort.phantoms import write_cohort


def _job(source: Path, store: Path, workers: int) -> tuple[float, int]:
    cfg = load_config(
        None,
        {
            "input.source": source,
            "input.cohort": "demo",
            "store.path": store,
            "model.device": "cpu",
            "cluster.workers": workers,
            "progress.interval_seconds": 3600.0,
        },
    )
    start = time.perf_counter()
    summary = run_job(cfg, console=Console(file=open(os.devnull, "w")))  # noqa: SIM115
    return time.perf_counter() - start, summary.n_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=4)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="cluster_speedup-"))
    source = work / "in"
    if not source.exists():
        write_cohort(source, layout="ukbb", participants=args.participants, seed=0, preset="mini")
    times = {}
    for workers in (1, 2):
        store = work / f"store-{workers}"
        shutil.rmtree(store, ignore_errors=True)
        wall, ok = _job(source, store, workers)
        assert ok == args.participants, f"{ok} of {args.participants} ok"
        times[workers] = wall
        print(f"{workers} worker(s): {wall:.1f} s for {ok} participants "
              f"({wall / ok:.1f} s each)", flush=True)  # fmt: skip
    print(f"speed-up 2 vs 1 workers: {times[1] / times[2]:.2f}x (cores: {os.cpu_count()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
