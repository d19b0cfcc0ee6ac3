"""``mrcohort compact``: merge a store's small per-flush files into files of ~1,000
participant-visits, atomically for readers (:mod:`mrcohort.jobs.compact`). Registered in
:mod:`mrcohort.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrcohort.cli.common import console, fail, store_locked


def compact(
    store: Annotated[Path, typer.Option(help="The store to compact.")],
    target_participants: Annotated[
        int, typer.Option(min=1, help="Participant-visits per merged file (about).")
    ] = 1000,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for a running job to release the store.")
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="The filesystem cannot swap folders atomically (NFS): compact anyway, "
            "promising that nobody reads the store meanwhile.",
        ),
    ] = False,
) -> None:
    """Merge each partition's small files; rows, keys and values stay exactly the same."""
    from mrcohort.jobs.compact import ExchangeUnsupported
    from mrcohort.jobs.compact import compact as run_compaction
    from mrcohort.jobs.flush import recover

    with store_locked(store, wait=wait, command="mrcohort compact", failed="compaction failed"):
        for line in recover(store):
            console.print(f"recovery: {line}", highlight=False)
        try:
            summary = run_compaction(store, target_participants=target_participants,
                                     offline=offline)  # fmt: skip
        except ExchangeUnsupported as err:
            hint = "; if nobody reads the store meanwhile, use --offline"
            raise fail(f"{err.strerror}{hint}") from err
    console.print(
        f"compacted {summary.flushes_merged} flushes in {summary.partitions} partitions: "
        f"{summary.files_before:,} -> {summary.files_after:,} files in {summary.seconds:.1f} s",
        highlight=False,
    )
