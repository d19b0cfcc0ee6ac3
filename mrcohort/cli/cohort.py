"""Command-line sub-app for cohort input: ``ingest`` and ``stitch``.

Registered into the main ``mrcohort`` command by ``mrcohort.cli``; usable on its own as
``python -m mrcohort.cli.cohort``.
"""

from __future__ import annotations

import itertools
import math
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mrcohort.errors import MrcohortError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Cohort input: ingest a cohort folder into the scans table; stitch station files.",
)
console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True)


class LayoutName(str, Enum):
    ukbb = "ukbb"
    nako = "nako"
    manifest = "manifest"


class Positions(str, Enum):
    auto = "auto"
    header = "header"
    content = "content"


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one red ``error:`` line on stderr; return the Exit to raise (code 2)."""
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _parse_spacing(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(v > 0 for v in values):
        raise fail(f"--spacing must be three positive numbers 'x,y,z' (mm), got {text!r}")
    return values  # type: ignore[return-value]


@app.command("ingest")
def ingest_command(
    layout: Annotated[LayoutName, typer.Option(help="Input layout (docs/layouts.md).")],
    source: Annotated[Path, typer.Option(help="Cohort folder, or the manifest CSV.")],
    cohort: Annotated[str, typer.Option(help="Cohort name (a partition value).")],
    out: Annotated[Path, typer.Option(help="Store root to write the tables into.")],
    layouts: Annotated[
        Path | None, typer.Option(help="YAML overriding the layout settings (layouts.yaml).")
    ] = None,
) -> None:
    """Read a cohort; write the scans table (one row per station) and failure rows."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from mrcohort.cohort import discover, load_layout
    from mrcohort.jobs.scans import ingest

    try:
        config = load_layout(layout.value, layouts)
    except (ValueError, OSError) as exc:
        raise fail(f"layout settings: {exc}") from exc
    try:
        found = discover(layout.value, source, config=config)
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bar = progress.add_task(f"{cohort}: participant-visits", total=len(found.groups))
            summary = ingest(
                layout.value,
                source,
                cohort=cohort,
                store=out,
                config=config,
                on_progress=lambda _g, _r: progress.advance(bar),
                discovery=found,
            )
    except MrcohortError as err:
        raise fail(f"{err.code}: {err.message}") from err
    except ValueError as exc:
        raise fail(str(exc)) from exc
    out_console.print(
        f"{summary.n_loaded} of {summary.n_groups} participant-visits read, "
        f"{summary.n_scan_rows} scans rows -> {out}/scans"
    )
    if summary.n_failed:
        console.print(
            f"[yellow]WARNING: {summary.n_failed} failure rows[/yellow] -> {out}/failures:"
        )
        for f in summary.failures:
            who = f"{f['participant_id'] or '?'}/{f['visit'] or '?'}"
            console.print(f"  {who} [{f['stage']}] {f['code']}: {f['message']}", highlight=False)


@app.command("stitch")
def stitch_command(
    stations: Annotated[list[Path], typer.Argument(help="Station image files, any order.")],
    out: Annotated[Path, typer.Option(help="Output image (e.g. OUT.nii.gz).")],
    like: Annotated[Path | None, typer.Option(help="Put the result on this image's grid.")] = None,
    spacing: Annotated[
        str | None, typer.Option(help="Output spacing 'x,y,z' in mm (default: native).")
    ] = None,
    positions: Annotated[
        Positions,
        typer.Option(help="header, content (overlap search), auto (content if needed)."),
    ] = Positions.auto,
    allow_gaps: Annotated[
        bool, typer.Option("--allow-gaps", help="Stitch across missing stations (zeros).")
    ] = False,
) -> None:
    """Stitch the stations of one channel into one image (linear-ramp blending)."""
    from mrcohort.cohort import (
        apply_placement,
        estimate_placement,
        lacks_positions,
        read_station_file,
    )
    from mrcohort.cohort.stitch import stitch
    from mrcohort.io.images import write_image

    grid_spacing = _parse_spacing(spacing)
    if like is not None and grid_spacing is not None:
        raise fail("give either --like or --spacing, not both")
    try:
        images = [read_station_file(p) for p in stations]
        reference = _grid_of(like) if like is not None else None
        mode = positions.value
        if mode == "content" or (mode == "auto" and lacks_positions(images)):
            placement = estimate_placement(images)
            names = [stations[i].name for i in placement.order]
            console.print("positions from content (headers carry none):", highlight=False)
            for k, (a, b) in enumerate(itertools.pairwise(names)):
                console.print(
                    f"  {a} -> {b}: overlap {placement.overlaps[k]} slices "
                    f"(NCC {placement.scores[k]:.3f})",
                    highlight=False,
                )
            images = apply_placement(images, placement)
        result = stitch(
            images,
            reference=reference,
            spacing=grid_spacing,
            positions="header",
            allow_gaps=allow_gaps,
        )
    except MrcohortError as err:
        raise fail(f"{err.code}: {err.message}") from err
    write_image(result, out)
    size = " x ".join(map(str, result.GetSize()))
    sp = " x ".join(f"{v:g}" for v in result.GetSpacing())
    out_console.print(f"wrote {out}: {len(stations)} stations -> {size} voxels at {sp} mm")


def _grid_of(path: Path):
    """An empty image with the grid of the image file at ``path`` (header only)."""
    import SimpleITK as sitk

    from mrcohort.cohort import DEFAULT_MAX_VOXELS
    from mrcohort.errors import IngestError, StitchError

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise IngestError("IMAGE_UNREADABLE", f"{path}: cannot read its header") from exc
    if reader.GetDimension() != 3:
        raise IngestError("BAD_DIMENSION", f"{path}: --like needs a 3D image")
    n_voxels = math.prod(int(v) for v in reader.GetSize())
    if n_voxels > DEFAULT_MAX_VOXELS:
        raise StitchError(
            "GRID_TOO_LARGE", f"{path}: {n_voxels} voxels, limit {DEFAULT_MAX_VOXELS}"
        )
    ref = sitk.Image([int(v) for v in reader.GetSize()], sitk.sitkUInt8)
    ref.SetOrigin(reader.GetOrigin())
    ref.SetSpacing(reader.GetSpacing())
    ref.SetDirection(reader.GetDirection())
    return ref


if __name__ == "__main__":
    app()
