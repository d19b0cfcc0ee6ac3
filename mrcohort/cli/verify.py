"""``mrcohort verify``: check a store's files against its ledger, and ``--repair`` so that
the next run redoes what a damaged file lost (:mod:`mrcohort.jobs.verify`). Registered in
:mod:`mrcohort.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrcohort.cli.common import console, out_console, store_locked

#: Problems printed one per line (the rest are counted).
_SHOWN = 50


def verify(
    store: Annotated[Path, typer.Option(help="The store to check.")],
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Take back every flush with a damaged table file (its inputs are redone by "
            "the next run), remove damaged segmentations, recover interrupted flushes.",
        ),
    ] = False,
    segmentations: Annotated[
        bool,
        typer.Option(
            "--segmentations/--no-segmentations",
            help="Hash every stored segmentation against the ledger (reads them all).",
        ),
    ] = True,
    threads: Annotated[int, typer.Option(min=1, help="Files read at once.")] = 4,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for a running job to release the store.")
    ] = False,
) -> None:
    """Check every table file, stored segmentation and QC picture; exit 1 if any is damaged."""
    from mrcohort.jobs.verify import repair_store, verify_store

    with store_locked(store, wait=wait, command="mrcohort verify", failed="verify failed"):
        result = verify_store(store, segmentations=segmentations, threads=threads)
        done = repair_store(store, result.problems) if repair and not result.ok else []
    out_console.print(
        f"checked {result.table_files:,} table files, {result.segmentations:,} segmentations, "
        f"{result.qc_pictures:,} QC pictures: {len(result.problems):,} "
        f"problem{'' if len(result.problems) == 1 else 's'}",
        highlight=False,
    )
    for problem in result.problems[:_SHOWN]:
        out_console.print(f"  {problem.kind}: {problem.path}: {problem.detail}", highlight=False)
    if len(result.problems) > _SHOWN:
        out_console.print(f"  … and {len(result.problems) - _SHOWN:,} more", highlight=False)
    for line in done:
        console.print(f"repair: {line}", highlight=False)
    if result.problems and not repair:
        console.print("run `mrcohort verify --repair`, then the job again", highlight=False)
    if result.problems:
        raise typer.Exit(1)
