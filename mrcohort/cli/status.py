"""``mrcohort status``: the latest run of a store (counts, rate, ETA, failures), from its
``status.json`` checked against the store lock. Registered in :mod:`mrcohort.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrcohort.cli.common import fail, out_console
from mrcohort.errors import MrcohortError
from mrcohort.jobs.status import format_status, read_status


def status(
    store: Annotated[Path, typer.Option(help="Output store whose latest run to show.")],
) -> None:
    """Show the latest run of a store: state, counts, rate, ETA and the latest failures."""
    if not store.is_dir():
        raise fail(f"store {store} does not exist")
    try:
        found = read_status(store)
    except MrcohortError as err:
        raise fail(f"{err.code}: {err.message}") from err
    if found is None:
        raise fail(f"no runs in store {store} (no runs/*/status.json); start one with mrcohort run")
    out_console.print(format_status(found), markup=False, highlight=False)
