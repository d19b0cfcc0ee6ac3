"""How the cohort job's orchestration scales: 100,000 participant-visits through the real
discovery, fingerprints, ledger, plan, flushes and Dask scheduler — three tasks per
participant-visit (prepare → segment → measure, the stitched image handed on through the
store's scratch area and the worker's cache) — with stand-ins in place of reading,
segmenting and measuring.

Each input is a tiny real file named like a UK Biobank zip (``<eid>_20201_2_0.zip``), so
discovery, the stat-based fingerprints and the stub's content hash are the real ones. The
stand-ins (``STUBS``) return what `mrcohort.jobs.stages` returns for a good input: 40
``organ_metrics`` rows (one per MRSegmentator label, with provenance) and the input's
ledger row. It runs on a ``distributed.LocalCluster`` of worker processes.

Measured: wall time per participant-visit of the first run (its orchestration overhead: the
stub itself costs a few tens of microseconds), the driver's peak memory, files written, the
time to read the done set (`mrcohort.jobs.ledger.read_ledger`), to discover and to plan, and
the wall time of a re-run that has nothing to do.

::

    .venv/bin/python benchmarks/job_scale.py --n 2000          # smoke check, < 1 min
    .venv/bin/python benchmarks/job_scale.py                    # 100,000 (see RESULTS.md)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk
from rich.console import Console

from mrcohort.cohort import discover
from mrcohort.config import load_config
from mrcohort.io.files import sha256_file
from mrcohort.jobs import scratch, stages
from mrcohort.jobs.dispatch import StageFunctions
from mrcohort.jobs.ledger import Keys, WorkItem, plan, read_ledger
from mrcohort.jobs.participant import ParticipantResult, WorkContext
from mrcohort.jobs.records import ledger_row
from mrcohort.jobs.run import run_job
from mrcohort.jobs.scratch import scratch_dir, write_channel
from mrcohort.jobs.stages import Prepared, Segmented
from mrcohort.labels import MRSEG_LABEL_MAP
from mrcohort.schemas.rows import provenance

FIRST_EID = 1_000_000
COHORT = "bench"


def stub_prepare(item: WorkItem, ctx: WorkContext) -> Prepared:
    """Stage 1 stand-in: the input's real content hash, a tiny stitched image handed on
    through the scratch area and this worker's cache, as `stages.prepare` does."""
    pv = item.pv
    assert pv is not None
    started = time.perf_counter()
    image = sitk.Image([4, 4, 4], sitk.sitkFloat32)
    folder = scratch_dir(ctx.store, ctx.run_id, item.slot)
    write_channel(folder, ctx.channel, image)
    scratch.CACHE.put(str(folder), {ctx.channel: image})  # via the module: CACHE holds a lock
    return Prepared(
        item=item,
        input_sha=sha256_file(pv.source),
        scratch=str(folder),
        worker=stages._worker_address(),
        needs_segment=True,
        seconds={"ingest": round(time.perf_counter() - started, 6)},
    )


def stub_segment(prepared: Prepared, ctx: WorkContext) -> Segmented:
    """Stage 2 stand-in: reads the handed-on image (cache or scratch), no model."""
    image = stages._model_input(prepared, ctx.channel)
    assert image.GetSize() == (4, 4, 4)
    return Segmented(prepared.input_sha, MRSEG_LABEL_MAP, {"segment": 0.0})


def stub_measure(prepared: Prepared, segmented: Segmented, ctx: WorkContext) -> ParticipantResult:
    """Stage 3 stand-in: one ``organ_metrics`` row per label, the ledger row; the scratch
    removed, as `stages.measure` does."""
    item = prepared.item
    pv = item.pv
    assert pv is not None
    stages.discard(prepared)
    prov = provenance(
        input_sha256=prepared.input_sha,
        params_hash=ctx.measure.params_hash(),
        model_key=ctx.model_key,
        measure_key=ctx.measure_key,
        run_id=ctx.run_id,
    )
    keys = {
        "cohort": ctx.cohort,
        "participant_id": pv.participant_id,
        "visit": pv.visit,
        "sequence": "dixon",
    }
    rows = [
        {
            **keys,
            "label_id": lab.id,
            "label_name": lab.name,
            "label_group": str(getattr(lab.group, "value", lab.group)),
            "n_vox": 1000 + lab.id,
            "volume_ml": 12.5 + lab.id,
            "is_empty": False,
            "touches_border": False,
            "ff_median": 0.05,
            "ff_mean": 0.06,
            "ff_p25": 0.03,
            "ff_p75": 0.08,
            "ff_n_vox": 900 + lab.id,
            "ff_erosion_mm": 3.0,
            "ff_erosion_fallback": False,
            "swap_suspected": False,
            **prov,
        }
        for lab in MRSEG_LABEL_MAP.labels.values()
    ]
    row = ledger_row(
        ctx,
        item,
        input_sha256=prepared.input_sha,
        segmentation_sha256=segmented.segmentation_sha,
        err=None,
        wrote_scans=False,
        seconds={**prepared.seconds, **segmented.seconds},
        worker=socket.gethostname(),
        action="segment",
    )
    return ParticipantResult(item.slot, {"organ_metrics": rows}, row)


STUBS = StageFunctions(prepare=stub_prepare, segment=stub_segment, measure=stub_measure)


def stub_process(item: WorkItem, ctx: WorkContext) -> ParticipantResult:
    """The three stand-ins one after the other, in this process (their own cost)."""
    prepared = stub_prepare(item, ctx)
    return stub_measure(prepared, stub_segment(prepared, ctx), ctx)


def make_inputs(folder: Path, n: int) -> None:
    """``n`` tiny files ``<eid>_20201_2_0.zip`` (content: the eid)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        eid = FIRST_EID + i
        (folder / f"{eid}_20201_2_0.zip").write_bytes(b"%d\n" % eid)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux: ru_maxrss is in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def store_files(store: Path) -> tuple[int, int]:
    """(data files outside ``runs/``, their bytes)."""
    files = [
        p
        for p in store.rglob("*.parquet")
        if p.relative_to(store).parts[0] not in ("runs",) and p.is_file()
    ]
    return len(files), sum(p.stat().st_size for p in files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="participant-visits")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--flush-every", type=int, default=1000, help="inputs per flush")
    parser.add_argument(
        "--max-in-flight", type=int, default=0, help="cluster.max_in_flight (0: 4 per worker)"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the folder afterwards")
    args = parser.parse_args(argv)

    out = args.out or Path(tempfile.mkdtemp(prefix="job_scale-"))
    source, store = out / "in", out / "store"
    if store.exists():
        shutil.rmtree(store)
    results: list[tuple[str, str]] = []

    def record(name: str, value: str) -> None:
        results.append((name, value))
        print(f"  {name}: {value}", flush=True)

    print(
        f"job_scale: n={args.n:,} workers={args.workers} flush_every={args.flush_every} out={out}",
        flush=True,
    )
    t = time.perf_counter()
    if not (source.is_dir() and sum(1 for _ in source.iterdir()) == args.n):
        shutil.rmtree(source, ignore_errors=True)
        make_inputs(source, args.n)
    record("make inputs", f"{time.perf_counter() - t:.1f} s")

    from distributed import Client, LocalCluster

    t = time.perf_counter()
    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    record("cluster start", f"{time.perf_counter() - t:.1f} s")
    rss_before = peak_rss_mb()

    cfg = load_config(
        None,
        {
            "input.source": source,
            "input.cohort": COHORT,
            "store.path": store,
            "store.flush_every_participants": args.flush_every,
            "model.device": "cpu",
            "cluster.max_in_flight": args.max_in_flight,
        },
    )
    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
    try:
        t = time.perf_counter()
        summary = run_job(cfg, client=client, functions=STUBS, console=quiet)
        first = time.perf_counter() - t
        rss_after = peak_rss_mb()
        n_files, n_bytes = store_files(store)
        record("first run plan", summary.plan)
        record("first run wall", f"{first:.1f} s ({summary.n_ok:,} ok, {summary.n_failed} failed)")

        t = time.perf_counter()
        summary2 = run_job(cfg, client=client, functions=STUBS, console=quiet)
        noop = time.perf_counter() - t
        record("no-op re-run plan", summary2.plan)
    finally:
        client.close()
        cluster.close()

    keys = Keys(COHORT, summary.model_key, summary.measure_key)
    t = time.perf_counter()
    state = read_ledger(store, keys)
    t_ledger = time.perf_counter() - t
    t = time.perf_counter()
    found = discover("ukbb", source)
    t_discover = time.perf_counter() - t
    t = time.perf_counter()
    job_plan = plan(found, state, root=source)
    t_plan = time.perf_counter() - t

    # what the stub itself costs (so the rest of the wall time is orchestration)
    ctx = WorkContext(
        cohort=COHORT,
        store=store,
        run_id="bench",
        layout="ukbb",
        model=cfg.model.name,
        model_key=summary.model_key,
        measure_key=summary.measure_key,
        measure=cfg.measure,
    )
    sample = job_plan.items[: min(200, len(job_plan.items))]
    t = time.perf_counter()
    for item in sample:
        stub_process(item, ctx)
    t_stub = (time.perf_counter() - t) / len(sample)

    n = args.n
    per = first / n
    rows = [
        ("participant-visits", f"{n:,}"),
        ("first run: wall", f"{first:.1f} s"),
        ("first run: per participant-visit", f"{per * 1e3:.2f} ms"),
        ("  of which the stub (1 worker)", f"{t_stub * 1e3:.2f} ms"),
        ("  orchestration overhead", f"{(first - t_stub * n / args.workers) / n * 1e3:.2f} ms"),
        ("driver peak RSS before / after run", f"{rss_before:.0f} / {rss_after:.0f} MiB"),
        ("data files written (ledger included)", f"{n_files:,} ({n_bytes / 2**20:.1f} MiB)"),
        ("read_ledger (done set)", f"{t_ledger:.2f} s ({len(state.latest):,} slots)"),
        ("discover", f"{t_discover:.2f} s"),
        ("plan (fingerprints included)", f"{t_plan:.2f} s"),
        ("no-op re-run: wall", f"{noop:.1f} s ({len(summary2.files)} files written)"),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 24}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if args.out is None and not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
