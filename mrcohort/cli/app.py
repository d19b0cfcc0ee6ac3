"""Command line: ``mrcohort demo | phantom | run | segment | train-demo-model``."""

from __future__ import annotations

import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mrcohort.cli.cohort import LayoutName, fail
from mrcohort.cli.cohort import app as cohort_app
from mrcohort.cli.measure import app as measure_app
from mrcohort.errors import MrcohortError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Whole-body MRI cohorts (UK Biobank, NAKO) to biomarker tables.",
)
# `ingest` and `stitch` (cohort/), `measure` (biomarkers/) live beside their code
app.add_typer(cohort_app)
app.add_typer(measure_app)
console = Console(stderr=True)
out_console = Console()

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class Layout(str, Enum):
    ukbb = "ukbb"
    nifti = "nifti"
    nako = "nako"


class PresetName(str, Enum):
    mini = "mini"
    mini_nako = "mini_nako"
    ukbb = "ukbb"
    nako = "nako"


@app.command()
def phantom(
    out: Annotated[Path, typer.Option(help="Folder to write the phantom cohort into.")],
    layout: Annotated[
        Layout, typer.Option(help="ukbb: DICOM zips; nifti: NIfTI + manifest.csv; nako: folders")
    ] = Layout.ukbb,
    participants: Annotated[int, typer.Option(min=1, help="Number of participants.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed (deterministic output).")] = 0,
    preset: Annotated[PresetName, typer.Option(help="Acquisition geometry.")] = PresetName.mini,
    snr: Annotated[float, typer.Option(min=0.1, help="Signal-to-noise ratio.")] = 20.0,
) -> None:
    """Write a synthetic cohort with analytic ground truth (truth.csv, truth/<id>/*.nii.gz)."""
    from mrcohort.phantoms import write_cohort

    write_cohort(
        out, layout=layout.value, participants=participants, seed=seed, preset=preset.value, snr=snr
    )
    out_console.print(
        f"wrote {participants} phantom participants ({layout.value}, {preset.value}) to {out}"
    )
    if layout is Layout.nako:
        out_console.print(f"ingest with: mrcohort ingest --layout nako --source {out}/nako ...")


_MODEL_HELP = (
    "'demo', 'mrsegmentator' (its weights root: $MRSEG_WEIGHTS_PATH or ~/.mrsegmentator), "
    "an MRSegmentator weights root (base/, body_comp/) or an nnU-Net v2 model folder."
)
_BODY_COMP_HELP = "Use the body_comp model of an MRSegmentator 2.0 weights root (10 classes)."


def _model_folder(model: str, body_comp: bool) -> str:
    """The model argument, with ``--body-comp`` resolved to the weights root's body_comp/."""
    if not body_comp:
        return model
    from mrcohort.segmentation.model import resolve_model_folder

    return str(resolve_model_folder(model, variant="body_comp"))


@app.command()
def run(
    source: Annotated[Path, typer.Option(help="Cohort folder (or manifest CSV).")],
    store: Annotated[Path, typer.Option(help="Output store (tables, segmentations).")],
    layout: Annotated[
        LayoutName, typer.Option(help="Input layout (docs/layouts.md).")
    ] = LayoutName.ukbb,
    cohort: Annotated[str, typer.Option(help="Cohort name (a partition value).")] = "ukbb",
    model: Annotated[str, typer.Option(help=_MODEL_HELP)] = "demo",
    body_comp: Annotated[bool, typer.Option("--body-comp", help=_BODY_COMP_HELP)] = False,
    workers: Annotated[int | None, typer.Option(help="Dask worker processes.")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Never use a GPU.")] = False,
) -> None:
    """Run the cohort job (ingest, stitch, segment, measure, write) on an embedded cluster."""
    if not source.exists():
        raise fail(f"source {source} does not exist")
    if not _NAME_RE.match(cohort):
        raise fail(f"cohort name {cohort!r} must match [A-Za-z0-9_.-]+")
    summary = _run_job(
        source,
        store,
        layout=layout.value,
        cohort=cohort,
        model=_model_folder(model, body_comp),
        workers=workers,
        device="cpu" if cpu else "auto",
    )
    _report_failures(summary)


def _check_store(store: Path) -> None:
    """Fail before any compute when the store cannot be written."""
    import tempfile

    try:
        store.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=store):
            pass
    except OSError as exc:
        raise fail(f"store {store} is not a writable folder: {exc.strerror or exc}") from exc


def _run_job(
    source: Path,
    store: Path,
    *,
    layout: str,
    cohort: str,
    model: str,
    workers: int | None,
    device: str,
):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from mrcohort.jobs.clusters.local import LocalClusterSettings
    from mrcohort.jobs.participant import JobConfig
    from mrcohort.jobs.run import discover_tasks, resolve_model_key, run_cohort

    _check_store(store)
    cfg = resolve_model_key(JobConfig(cohort=cohort, store=store, model=model, device=device))
    tasks, rejected = discover_tasks(layout, source)
    if not tasks and not rejected:
        raise fail(f"no participants found in {source} (layout {layout}, see docs/layouts.md)")
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task(f"{cohort}: participants", total=len(tasks) + len(rejected))
        return run_cohort(
            cfg,
            tasks,
            rejected=rejected,
            cluster=LocalClusterSettings(n_workers=workers),
            on_progress=lambda _r: progress.advance(bar),
        )


def _report_failures(summary) -> None:
    out_console.print(f"processed {summary.n_ok} participants, model_key {summary.model_key}")
    if summary.n_failed:
        console.print(
            f"[yellow]WARNING: {summary.n_failed} participants failed[/yellow] "
            "(see the failures table):"
        )
        for f in summary.failures:
            who = f["participant_id"] or f["source"]
            console.print(f"  {who} [{f['stage']}] {f['code']}: {f['message']}", highlight=False)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the phantom cohort and the tables.")] = Path(
        "demo_out"
    ),
    participants: Annotated[int, typer.Option(min=1, help="Number of participants.")] = 3,
    seed: Annotated[int, typer.Option(help="Phantom seed.")] = 0,
    workers: Annotated[int | None, typer.Option(help="Dask worker processes.")] = None,
) -> None:
    """Generate a phantom cohort, run the whole job with the demo model, summarise vs truth."""
    from mrcohort.phantoms import write_cohort

    console.print(f"writing {participants} phantom participants (UK Biobank zips) to {out}")
    write_cohort(out, layout="ukbb", participants=participants, seed=seed, preset="mini")
    store = out / "tables"
    summary = _run_job(
        out, store, layout="ukbb", cohort="demo", model="demo", workers=workers, device="auto"
    )
    if summary.n_ok:
        out_console.print(demo_summary_table(store, out / "truth.csv"))
        out_console.print(f"tables: {store}/organ_metrics (query with DuckDB, see notebooks/)")
    _report_failures(summary)


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


@app.command()
def segment(
    images: Annotated[list[Path], typer.Argument(help="Images to segment (NIfTI, MHA, ...).")],
    out: Annotated[Path, typer.Option(help="Output folder for <name>_seg.nii.gz.")],
    model: Annotated[str, typer.Option(help=_MODEL_HELP)] = "demo",
    body_comp: Annotated[bool, typer.Option("--body-comp", help=_BODY_COMP_HELP)] = False,
    folds: Annotated[list[int] | None, typer.Option(help="Folds to use (default: all).")] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="First fold only, step 0.8, no mirroring.")
    ] = False,
    cpu: Annotated[bool, typer.Option("--cpu", help="Never use a GPU.")] = False,
) -> None:
    """Segment images with a model loaded once; writes <image name>_seg.nii.gz per input."""
    from rich.progress import track

    from mrcohort.cohort import read_station_file
    from mrcohort.io.images import write_image
    from mrcohort.segmentation.model import InferenceSettings, fast_settings, load_model_folder
    from mrcohort.segmentation.predictor import Segmenter

    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise fail(f"input image(s) not found: {', '.join(missing)}")
    names = [p.name.removesuffix(".gz").rsplit(".", 1)[0] for p in images]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise fail(f"several inputs would write the same output: {', '.join(clashes)}_seg.nii.gz")
    chosen = tuple(folds) if folds else None
    model = _model_folder(model, body_comp)
    settings = (
        fast_settings(load_model_folder(model, chosen)) if fast else InferenceSettings(chosen)
    )
    seg = Segmenter.load(model, settings, device="cpu" if cpu else "auto")
    for path, name in track(
        list(zip(images, names, strict=True)), description="segmenting", console=console
    ):
        # checked read: 2D/4D, absurd sizes, NaN/Inf → one-line error, exit 2
        write_image(seg.segment(read_station_file(path)), out / f"{name}_seg.nii.gz")
    out_console.print(f"wrote {len(images)} segmentations to {out} (model_key {seg.model_key})")


@app.command("train-demo-model")
def train_demo_model(
    out: Annotated[Path, typer.Option(help="Model folder to write.")],
    body_comp: Annotated[
        bool, typer.Option("--body-comp", help="Train the body-composition demo model.")
    ] = False,
    iterations: Annotated[
        int | None, typer.Option(min=1, help="Default: 4000 (base), 2500 (--body-comp).")
    ] = None,
    n_train: Annotated[
        int | None, typer.Option(min=1, help="Training phantoms. Default: 16 (base), 12.")
    ] = None,
    seed: Annotated[int, typer.Option()] = 20201,
) -> None:
    """Re-train a shipped demo model on phantoms (seeded; base ~50, body-comp ~12 minutes)."""
    from mrcohort.devtools.train_demo import DEMO_DEFAULTS, TrainSettings, train

    label_set = "body_comp" if body_comp else "base"
    default_its, default_n = DEMO_DEFAULTS[label_set]
    settings = TrainSettings(
        seed=seed,
        n_train=n_train or default_n,
        iterations=iterations or default_its,
        label_set=label_set,
    )
    train(out, settings, log=lambda m: console.print(m, highlight=False))
    out_console.print(f"wrote model folder {out}")


def main() -> None:
    """Console entry point: expected errors print one line and exit non-zero."""
    try:
        app()
    except MrcohortError as err:
        console.print(f"[red]error:[/red] {err.code}: {err.message}", highlight=False)
        sys.exit(2)
    except OSError as err:  # disk full, permissions, vanished folder: one line, not a trace
        console.print(f"[red]error:[/red] {err}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
