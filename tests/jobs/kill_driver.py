"""A whole cohort job in one process, for the kill-and-resume tests.

Run from the repository root::

    python -m tests.jobs.kill_driver SOURCE STORE [--delay S]

The fake segmenter (`tests.jobs.fakes.FakeSegmenter`, sleeping ``S`` seconds a call so that a
run lasts long enough to be killed part-way) replaces the model in this process, and the Dask
cluster is thread-based inside it too: killing this process kills the driver and its workers
at once, as a node failure or ``kill -9`` of ``mrcohort run`` would. Flushes every input.
Prints the run's plan line and exits 0.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from tests.jobs.fakes import FakeSegmenter, job_config, thread_client


class SlowFakeSegmenter(FakeSegmenter):
    """`FakeSegmenter` that takes ``delay`` seconds a call."""

    delay = 0.0

    def segment(self, image):
        time.sleep(self.delay)
        return super().segment(image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("store", type=Path)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per segmenter call")
    parser.add_argument(
        "--flush-pause",
        type=float,
        default=0.0,
        help="seconds each flush waits after its journal entry is on disk (a kill 'in the "
        "flush' then lands there on a loaded machine too)",
    )
    args = parser.parse_args(argv)
    if args.flush_pause:
        import mrcohort.jobs.flush as flush

        write_journal = flush._write_journal

        def slow_journal(*a: object, **k: object) -> None:
            write_journal(*a, **k)  # type: ignore[arg-type]
            time.sleep(args.flush_pause)

        flush._write_journal = slow_journal  # type: ignore[assignment]

    import mrcohort.segmentation.predictor as predictor
    from mrcohort.jobs.run import run_job

    SlowFakeSegmenter.delay = args.delay
    predictor.get_segmenter = lambda *a, **k: SlowFakeSegmenter()  # type: ignore[assignment]

    cfg = job_config(args.source, args.store)
    client = thread_client()
    try:
        summary = run_job(cfg, client=client, console=Console(stderr=True, quiet=True))
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()
    print(f"plan: {summary.plan}", flush=True)
    print(f"ok={summary.n_ok} failed={summary.n_failed} files={len(summary.files)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
