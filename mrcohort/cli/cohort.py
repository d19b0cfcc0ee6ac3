"""``mrcohort ingest`` (a cohort folder into the scans table) and ``mrcohort stitch`` (station
files into one image)."""

from __future__ import annotations

import itertools
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mrcohort.cli.common import (
    Layout,
    check_cohort,
    console,
    fail,
    out_console,
    print_failures,
    progress_bar,
)
from mrcohort.errors import MrcohortError


class Positions(str, Enum):
    """Where ``stitch`` takes the station positions from."""

    auto = "auto"
    header = "header"
    content = "content"


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


def ingest(
    layout: Annotated[Layout, typer.Option(help="Input layout (docs/layouts.md).")],
    source: Annotated[Path, typer.Option(help="Cohort folder, or the manifest CSV.")],
    cohort: Annotated[str, typer.Option(help="Cohort name (a partition value).")],
    store: Annotated[
        Path | None, typer.Option(help="Store root to write the tables into (required).")
    ] = None,
    out: Annotated[Path | None, typer.Option(hidden=True, help="Old name of --store.")] = None,
    layouts: Annotated[
        Path | None, typer.Option(help="YAML overriding the layout settings (layouts.yaml).")
    ] = None,
) -> None:
    """Read a cohort; write the scans table (one row per station) and failure rows."""
    from mrcohort.cohort import discover, load_layout
    from mrcohort.jobs import ingest as ingest_cohort

    if store is not None and out is not None:
        raise fail("--out is the old name of --store: give one of them")
    store = store or out
    if store is None:
        raise fail("missing option --store (the store root to write the tables into)")
    check_cohort(cohort)
    try:
        config = load_layout(layout.value, layouts)
    except (ValueError, OSError) as exc:
        raise fail(f"layout settings: {exc}") from exc
    try:
        found = discover(layout.value, source, config=config)
        pvs, _rejected = found
        with progress_bar() as progress:
            bar = progress.add_task(f"{cohort}: participant-visits", total=len(pvs))
            summary = ingest_cohort(
                layout.value,
                source,
                cohort=cohort,
                store=store,
                config=config,
                on_progress=lambda _pv, _result: progress.advance(bar),
                discovery=found,
            )
    except MrcohortError as err:
        raise fail(f"{err.code}: {err.message}") from err
    except ValueError as exc:
        raise fail(str(exc)) from exc
    out_console.print(
        f"{summary.n_loaded} of {summary.n_visits} participant-visits read, "
        f"{summary.n_scan_rows} scans rows -> {store}/scans",
        highlight=False,
    )
    if summary.n_failed:
        print_failures(
            f"{summary.n_failed} failure rows",
            f"-> {store}/failures",
            summary.failures,
            who=lambda f: f"{f['participant_id'] or '?'}/{f['visit'] or '?'}",
        )


def stitch(
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
        DEFAULT_MAX_VOXELS,
        apply_placement,
        estimate_placement,
        lacks_positions,
    )
    from mrcohort.cohort import stitch as stitch_images
    from mrcohort.io.images import read_grid, read_station_file, write_image

    grid_spacing = _parse_spacing(spacing)
    if like is not None and grid_spacing is not None:
        raise fail("give either --like or --spacing, not both")
    try:
        images = [read_station_file(p) for p in stations]
        reference = read_grid(like, max_voxels=DEFAULT_MAX_VOXELS) if like else None
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
        result = stitch_images(
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
