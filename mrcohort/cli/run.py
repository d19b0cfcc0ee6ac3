"""``mrcohort run`` (the cohort job, from a config file and/or flags), ``mrcohort reprocess``
(the last run of a store again: only what new weights or parameters made stale) and
``mrcohort demo`` (a phantom cohort through the whole job, summarised against its truth)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mrcohort.cli.common import (
    Layout,
    check_cohort,
    console,
    fail,
    out_console,
    print_failures,
)

if TYPE_CHECKING:
    from mrcohort.config import JobConfig
    from mrcohort.jobs.run import RunSummary

_MODEL_HELP = (
    "'demo', 'mrsegmentator' (its weights root: $MRSEG_WEIGHTS_PATH or ~/.mrsegmentator), "
    "an MRSegmentator weights root (base/, body_comp/) or an nnU-Net v2 model folder."
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Job configuration (TOML; every key documented in mrcohort/config_defaults.toml). "
        "Flags override it.",
    ),
]


def run(
    config: ConfigOption = None,
    source: Annotated[Path | None, typer.Option(help="Cohort folder (or manifest CSV).")] = None,
    store: Annotated[
        Path | None, typer.Option(help="Output store (tables, segmentations, runs).")
    ] = None,
    layout: Annotated[Layout | None, typer.Option(help="Input layout (docs/layouts.md).")] = None,
    cohort: Annotated[str | None, typer.Option(help="Cohort name (a partition value).")] = None,
    model: Annotated[str | None, typer.Option(help=_MODEL_HELP)] = None,
    body_comp: Annotated[
        bool | None,
        typer.Option("--body-comp", help="The body_comp model of an MRSegmentator 2.0 root."),
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Dask worker processes.")] = None,
    cpu: Annotated[bool | None, typer.Option("--cpu", help="Never use a GPU.")] = None,
    force: Annotated[
        bool | None, typer.Option("--force", help="Recompute everything, even what is up to date.")
    ] = None,
    retry_failed: Annotated[
        bool | None,
        typer.Option("--retry-failed", help="Also redo failures caused by the input."),
    ] = None,
    flush_every: Annotated[
        int | None, typer.Option(min=1, help="Flush to the tables every N participant-visits.")
    ] = None,
    dashboard: Annotated[
        bool | None, typer.Option("--dashboard", help="Serve the Dask dashboard (127.0.0.1).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait while another run holds the store.")
    ] = False,
) -> None:
    """Run the cohort job: only inputs that are new, changed or stale are processed."""
    overrides = {
        "input.source": source,
        "input.layout": layout.value if layout else None,
        "input.cohort": cohort and check_cohort(cohort),
        "store.path": store,
        "model.name": model,
        "model.body_comp": body_comp,
        "model.device": "cpu" if cpu else None,
        "cluster.workers": workers,
        "cluster.dashboard": dashboard,
        "run.force": force,
        "run.retry_failed": retry_failed,
        "store.flush_every_participants": flush_every,
    }
    cfg = _load(config, overrides)
    if not Path(cfg.input.source).exists():
        raise fail(f"source {cfg.input.source} does not exist")
    _report(_run(cfg, wait=wait))


def reprocess(
    store: Annotated[Path, typer.Option(help="Store of an earlier run.")],
    config: ConfigOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait while another run holds the store.")
    ] = False,
) -> None:
    """Run the store's last job again with today's weights and parameters: only what they
    made stale is recomputed (new weights: segment + measure; new parameters or biomarker
    code: measure only). For cron or scrontab: a no-op when nothing changed."""
    from mrcohort.jobs.status import latest_run

    if config is None:
        last = latest_run(store) if store.is_dir() else None
        if last is None or not (last / "config.toml").is_file():
            raise fail(f"no earlier run in {store} (runs/<run_id>/config.toml); use run")
        config = last / "config.toml"
    # a forced or retrying run is not repeated every night
    cfg = _load(config, {"store.path": store, "run.force": False, "run.retry_failed": False})
    _report(_run(cfg, wait=wait))


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the phantom cohort and the tables.")] = Path(
        "demo_out"
    ),
    participants: Annotated[int, typer.Option(min=1, help="Number of participants.")] = 3,
    seed: Annotated[int, typer.Option(help="Phantom seed.")] = 0,
    workers: Annotated[int | None, typer.Option(min=1, help="Dask worker processes.")] = None,
) -> None:
    """Generate a phantom cohort, run the whole job with the demo model, summarise vs truth."""
    from mrcohort.phantoms import write_cohort

    console.print(
        f"writing {participants} phantom participants (UK Biobank zips) to {out}", highlight=False
    )
    write_cohort(out, layout="ukbb", participants=participants, seed=seed, preset="mini")
    store = out / "tables"
    cfg = _load(
        None,
        {
            "input.source": out,
            "input.layout": "ukbb",
            "input.cohort": "demo",
            "store.path": store,
            "model.name": "demo",
            "cluster.workers": workers,
        },
    )
    summary = _run(cfg, wait=False)
    if summary.n_ok or summary.n_planned.get("skip"):
        out_console.print(demo_summary_table(store, out / "truth.csv"))
        out_console.print(
            f"tables: {store}/organ_metrics (query with DuckDB, see notebooks/)", highlight=False
        )
    _report(summary)


def _load(config: Path | None, overrides: Mapping[str, object]) -> JobConfig:
    from mrcohort.config import load_config, require_paths

    cfg = load_config(config, {k: v for k, v in overrides.items() if v is not None})
    require_paths(cfg)
    return cfg


def _run(cfg: JobConfig, *, wait: bool) -> RunSummary:
    from mrcohort.jobs.run import run_job

    return run_job(cfg, console=console, wait_for_lock=wait)


def _report(summary: RunSummary) -> None:
    out_console.print(
        f"run {summary.run_id}: {summary.n_ok} processed, {summary.n_failed} failed "
        f"({summary.plan}); model_key {summary.model_key}",
        highlight=False,
    )
    if summary.n_failed:
        print_failures(
            f"{summary.n_failed} participant-visits failed",
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
