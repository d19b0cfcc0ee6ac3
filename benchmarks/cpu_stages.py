"""CPU stages of one participant-visit, as the job runs them, on ONE core (issue #11).

A full-size UK Biobank phantom (field-20201 zip: 6 stations x 4 Dixon channels, 224x168x65
per station, ~1,560 DICOM files) and a full-size NAKO phantom (4 Dixon stations 320x260x94
as DICOM series folders, plus 2 T2 HASTE stations) are built once and cached under
``--work``. Then, per participant, the stages of ``mrcohort.jobs.participant`` that run on
the CPU are timed with the job's own public functions:

``hash``           ``get_layout(layout).file_sha256(pv)`` (the zip's sha256; None for NAKO)
``read + checks``  ``load_visit(pv, config=..., input_sha256=...)``: read + every check
``scan rows``      ``scan_rows(visit, ...)``: the ``scans`` table rows
``stitch``         ``stitch_channels(visit.images("dixon"), positions="auto")``
``measure``        ``measure_participant`` on the stitched grid, with the arrays taken out of
                   the images as the job does; the segmentation is the phantom's ground-truth
                   label map resampled (nearest neighbour) onto the stitched grid, as the
                   segmenter or the stored segmentation would hand it over (not timed: that
                   is the GPU stage).

Median of ``--repeat`` warm repeats after one warm-up (also printed). Run::

    .venv/bin/python benchmarks/cpu_stages.py [--work DIR] [--repeat 5] [--core N]

It sets one thread for every numeric library before numpy starts, pins itself to one core
(``--core``, default the lowest allowed) and runs SimpleITK with one thread.
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import SimpleITK as sitk  # noqa: E402

from mrcohort.biomarkers.participant import BiomarkerParams, measure_participant  # noqa: E402
from mrcohort.cohort import (  # noqa: E402
    discover,
    get_layout,
    load_layout,
    load_visit,
    stitch_channels,
)
from mrcohort.io.images import read_image, spacing_zyx, write_image  # noqa: E402
from mrcohort.jobs.scan_rows import scan_rows  # noqa: E402
from mrcohort.labels import MRSEG_LABEL_MAP  # noqa: E402
from mrcohort.phantoms import make_participant, write_nako_participant  # noqa: E402
from mrcohort.phantoms.writers.ukbb import write_ukbb_zip  # noqa: E402

STAGES = ("hash", "read + checks", "scan rows", "stitch", "measure")
GOAL_S = 1.5
#: Bump when the cached phantoms must be rebuilt (generator or layout changed).
CACHE_VERSION = 1
SEED = 11


@dataclass
class Case:
    """One cached participant: its cohort folder, layout and ground-truth label map."""

    name: str
    layout: str
    source: Path
    labels: Path


def build(work: Path, layout: str) -> Case:
    """The cached phantom participant of ``layout`` (built on first use)."""
    root = work / layout
    marker = root / "built.json"
    meta = {"version": CACHE_VERSION, "seed": SEED, "preset": layout}
    case = Case(layout, layout, root / "cohort", root / "truth_labels.nii.gz")
    if marker.is_file() and json.loads(marker.read_text()) == meta:
        return case
    t0 = time.perf_counter()
    p = make_participant(SEED, 0, layout)
    if layout == "ukbb":
        zip_path = case.source / f"{p.participant_id}_20201_2_0.zip"
        write_ukbb_zip(zip_path, participant_id=p.participant_id, stations=p.stations)
    else:
        write_nako_participant(p, case.source)
    write_image(p.labels, case.labels)
    marker.write_text(json.dumps(meta))
    print(f"# built {layout} phantom in {time.perf_counter() - t0:.0f} s under {root}")
    return case


def _on_grid(labels: sitk.Image, grid: sitk.Image) -> sitk.Image:
    """The truth label map on the stitched grid (nearest neighbour, 0 outside)."""
    return sitk.Resample(
        labels, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8
    )


def run_once(case: Case, seg: dict[str, sitk.Image]) -> dict[str, float]:
    """Every CPU stage of one participant-visit once; seconds per stage.

    ``seg`` caches the segmentation on the stitched grid (made on the first call, untimed).
    """
    config = load_layout(case.layout)
    pv = discover(case.layout, case.source, config=config).pvs[0]
    out: dict[str, float] = {}

    def timed(stage: str, fn: Callable[[], object]) -> object:
        t0 = time.perf_counter()
        value = fn()
        out[stage] = time.perf_counter() - t0
        return value

    sha = timed("hash", lambda: get_layout(pv.layout).file_sha256(pv))
    visit = timed("read + checks", lambda: load_visit(pv, config=config, input_sha256=sha))
    timed("scan rows", lambda: scan_rows(visit, cohort="bench", config=config, run_id="bench"))
    stitched = timed("stitch", lambda: stitch_channels(visit.images("dixon"), positions="auto"))
    if "seg" not in seg:
        seg["seg"] = _on_grid(read_image(case.labels), stitched["in"])
    timed("measure", lambda: _measure(seg["seg"], stitched))
    return out


def _measure(seg: sitk.Image, stitched: dict[str, sitk.Image]) -> dict[str, list]:
    """What the job's ``_measure_rows`` computes (without the provenance columns)."""
    return measure_participant(
        sitk.GetArrayFromImage(seg),
        spacing_mm=spacing_zyx(seg),
        fat=sitk.GetArrayFromImage(stitched["f"]),
        water=sitk.GetArrayFromImage(stitched["w"]),
        in_phase=sitk.GetArrayFromImage(stitched["in"]),
        params=BiomarkerParams(),
        label_map=MRSEG_LABEL_MAP,
    ).rows()


def table(case: Case, cold: dict[str, float], runs: list[dict[str, float]]) -> float:
    """Print the per-stage table of one case; return the median total."""
    totals = [sum(r.values()) for r in runs]
    print(f"\n### {case.name} ({len(runs)} warm repeats, median [min-max]; s)\n")
    print("| stage | median | min | max | warm-up |")
    print("|---|---|---|---|---|")
    for stage in STAGES:
        v = [r[stage] for r in runs]
        print(
            f"| {stage} | {statistics.median(v):.3f} | {min(v):.3f} | {max(v):.3f} "
            f"| {cold[stage]:.3f} |"
        )
    med = statistics.median(totals)
    print(
        f"| **total** | **{med:.3f}** | {min(totals):.3f} | {max(totals):.3f} "
        f"| {sum(cold.values()):.3f} |"
    )
    return med


def profile(case: Case, seg: dict[str, sitk.Image], top: int) -> None:
    """cProfile of one warm run, sorted by own time."""
    prof = cProfile.Profile()
    prof.runcall(run_once, case, seg)
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/mrcohort-bench-cpu"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cases", nargs="+", default=["ukbb", "nako"], choices=["ukbb", "nako"])
    ap.add_argument("--core", type=int, default=None, help="core to pin to (default: lowest)")
    ap.add_argument("--profile", type=int, default=0, help="print the N top cProfile rows")
    args = ap.parse_args()
    core = min(os.sched_getaffinity(0)) if args.core is None else args.core
    os.sched_setaffinity(0, {core})
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    print(f"# {cpu_model()}, pinned to core {core}, SimpleITK threads "
          f"{sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}")
    totals: dict[str, float] = {}
    for name in args.cases:
        case = build(args.work, name)
        seg: dict[str, sitk.Image] = {}
        cold = run_once(case, seg)
        runs = [run_once(case, seg) for _ in range(args.repeat)]
        totals[name] = table(case, cold, runs)
        if args.profile:
            profile(case, seg, args.profile)
    if "ukbb" in totals:
        met = "met" if totals["ukbb"] <= GOAL_S else "not met"
        print(f"\nUKBB total <= {GOAL_S} s: {met} ({totals['ukbb']:.3f} s)")


if __name__ == "__main__":
    main()
