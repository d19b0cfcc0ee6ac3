"""``mrcohort run`` (the cohort job, from a config file and/or flags), ``mrcohort reprocess``
(the last run of a store again: only what new weights or parameters made stale) and
``mrcohort demo`` (a phantom cohort through the whole job, summarised against its truth)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mrcohort.cli.common import (
    Backend,
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
    backend: Annotated[
        Backend | None,
        typer.Option(help="Where to run: local, slurm / pbs worker jobs, or a scheduler."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Address of an existing Dask scheduler (implies --backend scheduler)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait while another run holds the store.")
    ] = False,
) -> None:
    """Run the cohort job: only inputs that are new, changed or stale are processed."""
    if scheduler and backend not in (None, Backend.scheduler):
        raise fail(f"--scheduler needs --backend scheduler, not {backend.value}")
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
        "cluster.backend": "scheduler" if scheduler else backend and backend.value,
        "cluster.scheduler.address": scheduler,
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
        bool,
        typer.Option(
            "--wait",
            help="Wait while another run holds the store (with --submit: submit even then; "
            "the job waits).",
        ),
    ] = False,
    if_changed: Annotated[
        bool,
        typer.Option(
            "--if-changed",
            help="Exit 0 doing nothing when today's model_key and measure_key are those of "
            "the store's last finished run (checked without taking the store lock).",
        ),
    ] = False,
    submit: Annotated[
        bool,
        typer.Option(
            "--submit",
            help="Submit the reprocessing as a SLURM batch job (sbatch) instead of running it "
            "here; its log: <store>/runs/reprocess-<jobid>.log.",
        ),
    ] = False,
    sbatch_option: Annotated[
        list[str] | None,
        typer.Option(
            "--sbatch-option",
            metavar="OPTION",
            help="With --submit: an sbatch option, passed as is (repeatable), e.g. "
            "--sbatch-option=--partition=gpu --sbatch-option=--time=12:00:00.",
        ),
    ] = None,
) -> None:
    """Run the store's last job again with today's weights and parameters: only what they
    made stale is recomputed (new weights: segment + measure; new parameters or biomarker
    code: measure only). For cron or scrontab: --if-changed exits at once when nothing
    changed, --submit runs the reprocessing as a SLURM job."""
    from mrcohort.jobs.status import latest_run

    if sbatch_option and not submit:
        raise fail("--sbatch-option needs --submit")
    given = config
    if config is None:
        last = latest_run(store) if store.is_dir() else None
        if last is None or not (last / "config.toml").is_file():
            raise fail(f"no earlier run in {store} (runs/<run_id>/config.toml); use run")
        config = last / "config.toml"
    # a forced or retrying run is not repeated every night
    cfg = _load(config, {"store.path": store, "run.force": False, "run.retry_failed": False})
    if if_changed and not _keys_changed(cfg, submit=submit):
        return
    if submit:
        _submit(store, given, wait=wait, options=sbatch_option or [])
        return
    _report(_run(cfg, wait=wait))


def _keys_changed(cfg: JobConfig, *, submit: bool) -> bool:
    """Whether today's ``model_key`` or ``measure_key`` differs from the last finished run's
    row of the ``runs`` table (cohort of ``cfg``); prints which, or that nothing changed.
    Reads the store only: no lock, no cluster."""
    from mrcohort.schemas.store import read_table

    store = Path(cfg.store.path)
    rows = [
        r
        for r in read_table(store, "runs").to_pylist()
        if r["cohort"] == cfg.input.cohort and r["state"] == "finished"
    ]
    last = max(rows, key=lambda r: r["started_at"], default=None)
    today = _today_keys(cfg, submit=submit)
    if last is None:
        console.print(
            f"no finished run of cohort {cfg.input.cohort} in {store}/runs: reprocessing",
            highlight=False,
        )
        return True
    for model_key, measure_key in today:
        if (model_key, measure_key) == (last["model_key"], last["measure_key"]):
            out_console.print(
                f"model and parameters unchanged (model_key {model_key}, "
                f"measure_key {measure_key}): nothing to do",
                highlight=False,
            )
            return False
    new_models = " / ".join(dict.fromkeys(m for m, _ in today))
    if last["model_key"] not in {m for m, _ in today}:
        console.print(f"model_key {last['model_key']} -> {new_models}", highlight=False)
    if last["measure_key"] != today[0][1]:
        console.print(f"measure_key {last['measure_key']} -> {today[0][1]}", highlight=False)
    return True


def _today_keys(cfg: JobConfig, *, submit: bool) -> list[tuple[str, str]]:
    """``(model_key, measure_key)`` of today's weights and parameters, as the run would
    compute them. With ``--submit`` and the local backend the job's node, not this one,
    decides where segmentation runs (a GPU: fp16, one key; the CPU: fp32, another):
    ``model.device`` "cuda" means the GPU key, "auto" either."""
    from mrcohort.jobs.context import work_context

    variants = [cfg]
    if submit and cfg.cluster.backend == "local" and cfg.model.device != "cpu":
        variants = [_on_device(cfg, "cuda")]
        if cfg.model.device == "auto":
            variants.append(_on_device(cfg, "cpu"))
    keys = []
    for variant in variants:
        ctx = work_context(variant, run_id="if-changed")
        keys.append((ctx.model_key, ctx.measure_key))
    return keys


def _on_device(cfg: JobConfig, device: str) -> JobConfig:
    """``cfg`` segmenting on ``device`` whatever this machine has (for the key only: the
    ``scheduler`` backend takes ``model.device`` as given instead of looking for GPUs)."""
    cluster = cfg.cluster.model_copy(update={"backend": "scheduler"})
    model = cfg.model.model_copy(update={"device": device})
    return cfg.model_copy(update={"model": model, "cluster": cluster})


#: The job name of ``reprocess --submit`` (``squeue -n mrcohort-reprocess``).
REPROCESS_JOB_NAME = "mrcohort-reprocess"


def reprocess_job_script(store: Path, config: Path | None) -> str:
    """The batch script of ``reprocess --submit``: this Python runs ``reprocess --wait``."""
    store = store.resolve()
    command = [sys.executable, "-m", "mrcohort", "reprocess", "--store", str(store), "--wait"]
    if config is not None:
        command += ["--config", str(config.resolve())]
    return "\n".join(
        [
            "#!/bin/bash",
            f"#SBATCH --job-name={REPROCESS_JOB_NAME}",
            f"#SBATCH --output={store / 'runs' / 'reprocess-%j.log'}",
            "# submitted by: mrcohort reprocess --submit",
            f"exec {shlex.join(command)}",
            "",
        ]
    )


def _submit(store: Path, config: Path | None, *, wait: bool, options: list[str]) -> None:
    """``sbatch`` the reprocessing job; prints ``submitted batch job N``."""
    from mrcohort.jobs.lock import holder, holder_summary

    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise fail("--submit needs SLURM's sbatch, which is not on PATH")
    busy = holder(store) if store.is_dir() else None
    if busy is not None and not wait:
        raise fail(
            f"STORE_BUSY: store {store} is in use by {holder_summary(busy)}: not submitting "
            "(with --wait it is submitted anyway and waits for the store)"
        )
    (store / "runs").mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [sbatch, "--parsable", *options],
            input=reprocess_job_script(store, config),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise fail(f"sbatch failed: {exc}") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        raise fail(f"sbatch failed (exit {done.returncode}): {lines[-1] if lines else ''}")
    job_id = done.stdout.strip().split(";")[0]
    out_console.print(f"submitted batch job {job_id}", highlight=False)


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
        out_console.print(
            f"QC pictures: {store}/qc_pictures (one page: mrcohort qc-gallery --store {store})",
            highlight=False,
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
