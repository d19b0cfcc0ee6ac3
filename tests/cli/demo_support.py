"""The one ``mrcohort demo`` run the slow CLI and notebook tests share (fixture ``demo_run``
in ``tests/cli/conftest.py``): its size and the bad zips mixed into it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.builders import rezip, ukbb_zip, without_channel

#: Demo participants (``--participants``): with seed 0 both sexes and three age groups in
#: ``phenotypes.csv`` (the notebooks plot by sex and age group).
N_GOOD = 4
#: Participant ids the demo writes.
GOOD_IDS = [str(1_000_001 + i) for i in range(N_GOOD)]
#: Inputs the demo's job must fail on, with their codes.
BAD = {
    "1000101_20201_2_0.zip": "NOT_A_ZIP",
    "1000102_20201_2_0.zip": "EMPTY_ZIP",
    "1000103_20201_2_0.zip": "MISSING_CHANNEL",
}


def write_bad_zips(folder: Path, scratch: Path) -> None:
    """The `BAD` zips, into ``folder``."""
    (folder / "1000101_20201_2_0.zip").write_bytes(b"this is not a zip file")
    rezip(folder / "1000102_20201_2_0.zip", {})
    # a complete zip without its fat (F) series: the missing channel is the only fault
    without_channel(ukbb_zip(scratch, "1000103"), folder / "1000103_20201_2_0.zip", "_F")


def run_demo(out: Path, scratch: Path) -> subprocess.CompletedProcess[str]:
    """``mrcohort demo --out out`` with the bad zips already there."""
    write_bad_zips(out, scratch)  # `demo` adds the good ones
    return subprocess.run(
        [sys.executable, "-m", "mrcohort.cli", "demo", "--out", str(out),
         "--participants", str(N_GOOD)],
        check=False, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
