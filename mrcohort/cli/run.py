"""``mrcohort run`` (the cohort job on an embedded Dask cluster) and ``mrcohort demo`` (a
phantom cohort through the whole job, summarised against its truth)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mrcohort.cli.common import (
    BodyCompOption,
    CpuOption,
    Layout,
    ModelOption,
    WorkersOption,
    check_cohort,
    console,
    device_for,
    fail,
    model_folder,
    out_console,
    print_failures,
    progress_bar,
)

if TYPE_CHECKING:
    from mrcohort.jobs.run import RunSummary


def run(
    source: Annotated[Path, typer.Option(help="Cohort folder (or manifest CSV).")],
    store: Annotated[Path, typer.Option(help="Output store (tables, segmentations).")],
    layout: Annotated[Layout, typer.Option(help="Input layout (docs/layouts.md).")] = Layout.ukbb,
    cohort: Annotated[str, typer.Option(help="Cohort name (a partition value).")] = "ukbb",
    model: ModelOption = "demo",
    body_comp: BodyCompOption = False,
    workers: WorkersOption = None,
    cpu: CpuOption = False,
) -> None:
    """Run the cohort job (ingest, stitch, segment, measure, write) on an embedded cluster."""
    if not source.exists():
        raise fail(f"source {source} does not exist")
    check_cohort(cohort)
    summary = run_job(
        source,
        store,
        layout=layout,
        cohort=cohort,
        model=model_folder(model, body_comp),
        workers=workers,
        device=device_for(cpu),
    )
    _report(summary)


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the phantom cohort and the tables.")] = Path(
        "demo_out"
    ),
    participants: Annotated[int, typer.Option(min=1, help="Number of participants.")] = 3,
    seed: Annotated[int, typer.Option(help="Phantom seed.")] = 0,
    workers: WorkersOption = None,
) -> None:
    """Generate a phantom cohort, run the whole job with the demo model, summarise vs truth."""
    from mrcohort.phantoms import write_cohort

    console.print(
        f"writing {participants} phantom participants (UK Biobank zips) to {out}", highlight=False
    )
    write_cohort(out, layout="ukbb", participants=participants, seed=seed, preset="mini")
    store = out / "tables"
    summary = run_job(
        out,
        store,
        layout=Layout.ukbb,
        cohort="demo",
        model="demo",
        workers=workers,
        device="auto",
    )
    if summary.n_ok:
        out_console.print(demo_summary_table(store, out / "truth.csv"))
        out_console.print(
            f"tables: {store}/organ_metrics (query with DuckDB, see notebooks/)", highlight=False
        )
    _report(summary)


def run_job(
    source: Path,
    store: Path,
    *,
    layout: Layout,
    cohort: str,
    model: str,
    workers: int | None,
    device: str,
) -> RunSummary:
    """Discover the participant-visits and run the job on them with a progress bar."""
    from mrcohort.cohort import discover
    from mrcohort.jobs import JobConfig, LocalClusterSettings, resolve_model_key, run_cohort

    _check_store(store)
    cfg = resolve_model_key(JobConfig(cohort=cohort, store=store, model=model, device=device))
    pvs, rejected = discover(layout.value, source)
    if not pvs and not rejected:
        raise fail(
            f"no participants found in {source} (layout {layout.value}, see docs/layouts.md)"
        )
    with progress_bar() as progress:
        bar = progress.add_task(f"{cohort}: participants", total=len(pvs) + len(rejected))
        return run_cohort(
            cfg,
            pvs,
            rejected=rejected,
            cluster=LocalClusterSettings(n_workers=workers),
            on_progress=lambda _result: progress.advance(bar),
        )


def _check_store(store: Path) -> None:
    """Fail before any compute when the store cannot be written."""
    try:
        store.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=store):
            pass
    except OSError as exc:
        raise fail(f"store {store} is not a writable folder: {exc.strerror or exc}") from exc


def _report(summary: RunSummary) -> None:
    out_console.print(
        f"processed {summary.n_ok} participants, model_key {summary.model_key}", highlight=False
    )
    if summary.n_failed:
        print_failures(
            f"{summary.n_failed} participants failed",
            "(see the failures table)",
            summary.failures,
            who=_who,
        )


def _who(row: Mapping[str, object]) -> str:
    return str(row["participant_id"] or row["source"])


def demo_summary_table(store: Path, truth_csv: Path) -> Table:
    """Per label: mean measured volume and fat fraction next to the phantom truth."""
    from mrcohort.schemas.store import query

    sql = f"""
        WITH t AS (SELECT * FROM read_csv_auto('{str(truth_csv).replace("'", "''")}',
                                               types={{'participant_id': 'VARCHAR'}}))
        SELECT t.label_name, count(m.participant_id) AS n,
               avg(m.volume_ml) AS vol, avg(t.volume_ml) AS vol_true,
               avg(m.ff_median) AS ff, avg(t.fat_fraction) AS ff_true
        FROM t LEFT JOIN organ_metrics m
          ON m.participant_id = t.participant_id AND m.label_id = t.label_id
        GROUP BY t.label_id, t.label_name ORDER BY t.label_id
    """
    rows = query(store, sql).to_pylist()
    table = Table(title="demo: measured (mean over participants) vs phantom truth")
    for col in ("label", "n", "volume ml", "true ml", "Dixon FF", "true FF"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for r in rows:
        table.add_row(
            r["label_name"],
            str(r["n"]),
            _fmt(r["vol"], 1),
            _fmt(r["vol_true"], 1),
            _fmt(r["ff"], 3),
            _fmt(r["ff_true"], 3),
        )
    return table


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
