"""The store at cohort scale (issue 12): a synthetic store of N participants x 40 labels
(organ_metrics, vessel_metrics, qc, ledger) written through the job's own writer (`Flusher`,
200 participant-visits per flush as the job's default), then, on this machine:

- "median liver fat fraction by sex and age decade" through ``organ_metrics_current`` joined
  to a phenotype table, in DuckDB (goal < 1 s);
- the wide table loaded into pandas (goal < 5 s);
- ``compact`` (files of ~1,000 participant-visits), and both reads again after it — the
  ratios before/after are measured side by side in this one run.

    python benchmarks/store_scale.py [--participants 100000] [--out /tmp/store-scale]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import mrcohort
from mrcohort.devtools.synthetic_store import phenotypes, write_synthetic_store
from mrcohort.jobs.compact import compact

_QUERY = """
SELECT p.sex, 10 * (p.age_years // 10) AS age_decade, count(*) AS n,
       median(o.ff_median) AS median_liver_ff
FROM organ_metrics_current o JOIN pheno p USING (participant_id)
WHERE o.label_name = 'liver' AND NOT o.is_empty
GROUP BY ALL ORDER BY 1, 2
"""


def _files(store: Path) -> tuple[int, int]:
    files = list(store.rglob("part-*.parquet"))
    return len(files), sum(p.stat().st_size for p in files)


def _timed(fn, repeat: int = 3):
    """(best seconds of ``repeat``, last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _reads(store: Path, pheno) -> dict[str, float]:
    def query():
        con = mrcohort.duckdb(store)
        con.register("pheno", pheno)
        try:
            return con.sql(_QUERY).fetchall()
        finally:
            con.close()

    q_s, rows = _timed(query)
    w_s, wide = _timed(lambda: mrcohort.wide_table(store))
    return {"query_s": q_s, "wide_s": w_s, "rows": rows, "wide_shape": wide.shape}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/mrcohort-store-scale"))
    args = parser.parse_args()
    store = args.out / "store"
    shutil.rmtree(args.out, ignore_errors=True)

    start = time.perf_counter()
    written = write_synthetic_store(store, args.participants)
    write_s = time.perf_counter() - start
    n_files, n_bytes = _files(store)
    print(f"write: {args.participants:,} participants x 40 labels, {written.flushes} flushes, "
          f"{n_files:,} files, {n_bytes / 2**20:.1f} MiB, {write_s:.1f} s "
          f"({1e3 * write_s / args.participants:.2f} ms/participant)")  # fmt: skip
    pheno = phenotypes(args.participants)

    before = _reads(store, pheno)
    summary = compact(store, target_participants=1000)
    _, c_bytes = _files(store)
    after = _reads(store, pheno)
    print(f"compact: {summary.files_before:,} -> {summary.files_after:,} files "
          f"({c_bytes / 2**20:.1f} MiB) in {summary.seconds:.1f} s")  # fmt: skip
    for label, key, goal in (("query (median liver FF by sex, age decade)", "query_s", 1.0),
                             ("wide table into pandas", "wide_s", 5.0)):  # fmt: skip
        print(f"{label}: {before[key]:.2f} s before compaction, {after[key]:.2f} s after "
              f"(ratio {before[key] / after[key]:.2f}x; goal < {goal:.0f} s)")  # fmt: skip
    print(f"wide shape {after['wide_shape']}; query rows equal before/after: "
          f"{before['rows'] == after['rows']}")  # fmt: skip
    for sex, decade, n, ff in after["rows"]:
        print(f"  {sex} {decade}s  n={n:>6,}  median liver FF {ff:.3f}")


if __name__ == "__main__":
    main()
