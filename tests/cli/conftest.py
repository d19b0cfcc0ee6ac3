"""Fixtures of the CLI tests: the one shared demo run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.demo_support import run_demo


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One ``mrcohort demo`` run (N_GOOD phantoms plus the BAD zips) that every slow CLI and
    notebook test reads: the demo folder and the finished process."""
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, tmp_path_factory.mktemp("scratch"))
