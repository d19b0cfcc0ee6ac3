"""``mrcohort schema``: the data dictionary (every declared table's columns with type, unit,
nullability and description) as plain text or as the Markdown of ``docs/tables.md``.
Registered in :mod:`mrcohort.cli.app`."""

from __future__ import annotations

from typing import Annotated

import typer

from mrcohort.cli.common import fail


def schema(
    tables: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TABLE",
            help="Tables to show, e.g. organ_metrics qc (default: every table).",
            show_default=False,
        ),
    ] = None,
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown",
            help="Print Markdown (docs/tables.md is `mrcohort schema --markdown`).",
        ),
    ] = False,
) -> None:
    """Show the columns of the tables: type, unit, nullability, partition key, description."""
    from mrcohort.schemas.dictionary import data_dictionary, to_markdown, to_text

    try:
        entries = data_dictionary(tables)
    except ValueError as err:
        raise fail(str(err)) from err
    typer.echo(to_markdown(entries) if markdown else to_text(entries), nl=False)
