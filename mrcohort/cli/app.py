"""The ``mrcohort`` command: the Typer app with ``--version`` and every command, and ``main``
(the console entry point: expected errors print one line and exit 2)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mrcohort import __version__
from mrcohort.cli import (
    cluster,
    cohort,
    compact,
    export,
    measure,
    phantom,
    qc,
    query,
    run,
    schema,
    segment,
    status,
    verify,
)
from mrcohort.cli.common import fail
from mrcohort.errors import MrcohortError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    # plain help: Typer's rich panels show a `<bool>` placeholder beside every flag
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
    help="Whole-body MRI cohorts (UK Biobank, NAKO) to biomarker tables.",
)

for command in (
    run.demo,
    phantom.phantom,
    cohort.ingest,
    cohort.stitch,
    run.run,
    run.reprocess,
    status.status,
    cluster.cluster,
    segment.segment,
    measure.measure,
    schema.schema,
    query.query,
    qc.qc_gallery,
    export.export,
    compact.compact,
    verify.verify,
    phantom.train_demo_model,
):
    app.command()(command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mrcohort {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Whole-body MRI cohorts (UK Biobank, NAKO) to biomarker tables."""


def main() -> None:
    """Console entry point: expected errors print one line and exit non-zero."""
    try:
        app()
    except MrcohortError as err:
        sys.exit(fail(f"{err.code}: {err.message}").exit_code)
    except OSError as err:  # disk full, permissions, vanished folder: one line, not a trace
        sys.exit(fail(str(err)).exit_code)
