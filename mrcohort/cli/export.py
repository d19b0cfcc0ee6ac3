"""``mrcohort export``: a table of the store as one Parquet or CSV file — the wide table (one
row per participant-visit) with its data dictionary beside it, or one long table's current
rows. Registered in :mod:`mrcohort.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrcohort.cli.common import console, fail

_FORMATS = (".parquet", ".csv")


def export(
    store: Annotated[Path, typer.Option(help="The store to export from.")],
    out: Annotated[Path, typer.Option(help="Output file: .parquet or .csv.")],
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            help="One row per participant-visit, a column per label and metric "
            "(absent structures are null); writes OUT's data dictionary beside it.",
        ),
    ] = False,
    table: Annotated[
        str | None, typer.Option(help="Export this table instead (long, one row per label…).")
    ] = None,
    cohort: Annotated[str | None, typer.Option(help="Only this cohort.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Only this model: a model_key or a models-registry name.")
    ] = None,
    sequence: Annotated[
        str | None, typer.Option(help="Wide: the sequence, when the store holds several.")
    ] = None,
    all_versions: Annotated[
        bool,
        typer.Option(
            "--all-versions", help="Long: every model and measurement version, not the current."
        ),
    ] = False,
) -> None:
    """Write the wide table, or one table, of a store to a Parquet or CSV file."""
    if wide == (table is not None):
        raise fail("give exactly one of --wide and --table NAME")
    if out.suffix.lower() not in _FORMATS:
        raise fail(f"--out {out}: the file name must end in .parquet or .csv")
    if not store.is_dir():
        raise fail(f"store {store} does not exist")
    try:
        if wide:
            _export_wide(store, out, cohort=cohort, model=model, sequence=sequence)
        else:
            _export_long(store, out, str(table), cohort, model, current=not all_versions)
    except (ValueError, OSError) as err:
        raise fail(f"export failed: {err}") from err


def _export_wide(
    store: Path, out: Path, *, cohort: str | None, model: str | None, sequence: str | None
) -> None:
    from mrcohort.wide import build_wide, wide_dictionary, with_units

    table, columns = build_wide(store, cohort=cohort, model=model, sequence=sequence)
    sidecar = dictionary_path(out)
    _write(with_units(table, columns), out)
    _write(wide_dictionary(columns), sidecar)
    console.print(
        f"{table.num_rows:,} participant-visits x {table.num_columns} columns -> {out}; "
        f"data dictionary -> {sidecar}",
        highlight=False,
    )


def _export_long(
    store: Path, out: Path, name: str, cohort: str | None, model: str | None, *, current: bool
) -> None:
    from mrcohort.readers import open_table

    table = open_table(name, store, current=current, cohort=cohort, model=model, to="arrow")
    _write(table, out)
    console.print(f"{table.num_rows:,} rows of {name} -> {out}", highlight=False)


def dictionary_path(out: Path) -> Path:
    """The data dictionary of an export: ``wide.parquet`` -> ``wide.dictionary.csv``."""
    return out.with_name(f"{out.stem}.dictionary.csv")


def _write(table, out: Path) -> None:  # table: pyarrow.Table
    """Atomically: a reader of ``out`` sees the old file or the whole new one."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from mrcohort.io.files import atomic_target

    with atomic_target(out.resolve()) as tmp:
        if out.suffix.lower() == ".csv":
            pacsv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp, compression="zstd")
