"""The ``mrcohort`` command line: one module per command group; imports the library, never
imported by it."""

from mrcohort.cli.app import app, main

__all__ = ["app", "main"]
