"""The ``mrcohort`` command line: one module per command group (``phantom``: phantom and
train-demo-model; ``cohort``: ingest and stitch; ``run``: run, reprocess and demo;
``cluster``: worker-job pools and their job scripts; ``status``; ``segment``; ``measure``),
``common`` for what they share and ``app`` for the Typer app and ``main``. Imports the
library; never imported by it."""

from mrcohort.cli.app import app, main

__all__ = ["app", "main"]
