"""The bad-input corpus (issue 13): one cohort run per layout holding every bad kind of that
layout beside two good participants. Each bad input ends as exactly one failures row with its
documented code and a message naming the input and what is wrong; the good participants get
their metric rows; the run's own accounting (every input exactly once) passes.

Unreadable files and folders are written by root and read by an unprivileged user
(``setpriv`` or ``runuser`` starting :mod:`tests.badinputs.unprivileged`), through both the
cohort job and ``ingest``: both must give the same row.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from mrcohort.failure_codes import FAILURE_CODES
from mrcohort.jobs.run import run_job
from mrcohort.schemas.store import read_table
from tests.badinputs.corpus import (
    KINDS,
    MANIFEST_GOOD,
    NAKO_GOOD,
    UKBB_GOOD,
    Kind,
    write_good_manifest,
    write_good_nako,
    write_good_ukbb,
)
from tests.builders import write_manifest
from tests.jobs.fakes import job_config, thread_client, use_fake_segmenter

REPO = Path(__file__).resolve().parents[2]
GOOD = {"ukbb": UKBB_GOOD, "nako": NAKO_GOOD, "manifest": MANIFEST_GOOD}
NOBODY = 65534


def _write(layout: str, src: Path, kinds: dict[str, Kind]) -> None:
    """The good participants and ``kinds`` of ``layout`` in ``src``."""
    rows = []
    if layout == "ukbb":
        write_good_ukbb(src)
    elif layout == "nako":
        write_good_nako(src)
    else:
        rows += write_good_manifest(src)
    for kind in kinds.values():
        rows += kind.write(src)
    if layout == "manifest":
        write_manifest(src / "manifest.csv", rows)


def _of(layout: str, *, unprivileged: bool) -> dict[str, Kind]:
    return {n: k for n, k in KINDS.items() if k.layout == layout and k.unprivileged == unprivileged}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Layout -> the store of one cohort run over that layout's (privileged) kinds."""
    patch = pytest.MonkeyPatch()
    use_fake_segmenter(patch)
    client = thread_client()
    stores: dict[str, Path] = {}
    try:
        for layout in GOOD:
            tmp = tmp_path_factory.mktemp(f"bad_{layout}")
            src, store = tmp / "src", tmp / "store"
            _write(layout, src, _of(layout, unprivileged=False))
            summary = run_job(job_config(src, store, **{"input.layout": layout}), client=client)
            assert summary.accounting is not None and summary.accounting.ok
            stores[layout] = store
        yield stores
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
        patch.undo()


def _as_user() -> list[str] | None:
    """The command prefix running a command as ``nobody``; ``[]`` when not root."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    return None


@pytest.fixture(scope="module")
def unprivileged_runs() -> Iterator[dict[str, dict[str, Path]]]:
    """Layout -> {"run": store, "ingest": store} of the unprivileged kinds, read as nobody."""
    prefix = _as_user()
    if prefix is None:
        pytest.skip("running as root and neither setpriv nor runuser is installed")
    base = Path(tempfile.mkdtemp(prefix="mrcohort-unprivileged-", dir="/tmp"))
    base.chmod(0o755)
    out = base / "out"
    out.mkdir()
    out.chmod(0o777)
    env = os.environ | {"HOME": str(out), "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    stores: dict[str, dict[str, Path]] = {}
    try:
        for layout in ("ukbb", "nako"):
            kinds = _of(layout, unprivileged=True)
            if not kinds:
                continue
            src = base / layout
            _write(layout, src, kinds)
            pair = {"run": out / f"{layout}_run", "ingest": out / f"{layout}_ingest"}
            cmd = [*prefix, sys.executable, "-m", "tests.badinputs.unprivileged", layout, str(src)]
            done = subprocess.run(
                [*cmd, str(pair["run"]), str(pair["ingest"])],
                check=False,
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            stores[layout] = pair
        yield stores
    finally:
        for path in base.rglob("*"):  # give root's own cleanup its way back in
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def _rows_of(failures: pd.DataFrame, kind: Kind) -> pd.DataFrame:
    text = failures["participant_id"] + "|" + failures["source"] + "|" + failures["message"]
    return failures[text.str.contains(kind.token, regex=False)]


def _check(failures: pd.DataFrame, kind: Kind) -> None:
    rows = _rows_of(failures, kind)
    assert len(rows) == 1, rows[["code", "source", "message"]].to_dict("records")
    for row in rows.itertuples():
        assert row.code == kind.code, row.message
        assert kind.fragment in row.message, row.message
        assert row.code in FAILURE_CODES


def _failures(store: Path) -> pd.DataFrame:
    return read_table(store, "failures").to_pandas()


PRIVILEGED = [n for n, k in KINDS.items() if not k.unprivileged]
UNPRIVILEGED = [n for n, k in KINDS.items() if k.unprivileged]


def test_the_corpus_covers_the_issue() -> None:
    assert len(KINDS) >= 25
    assert {k.layout for k in KINDS.values()} == set(GOOD)


@pytest.mark.parametrize("name", PRIVILEGED)
def test_each_bad_input_gets_one_row_with_its_code(runs, name: str) -> None:
    kind = KINDS[name]
    _check(_failures(runs[kind.layout]), kind)


@pytest.mark.parametrize("layout", list(GOOD))
def test_good_participants_complete_and_nothing_else_fails(runs, layout: str) -> None:
    metrics = read_table(runs[layout], "organ_metrics").to_pandas()
    assert set(metrics["participant_id"]) == set(GOOD[layout])
    failures = _failures(runs[layout])
    shown = failures[["code", "message"]].to_dict("records")
    assert len(failures) == len(_of(layout, unprivileged=False)), shown


@pytest.mark.parametrize("name", UNPRIVILEGED)
def test_unreadable_inputs_get_one_row_in_run_and_ingest(unprivileged_runs, name: str) -> None:
    kind = KINDS[name]
    pair = unprivileged_runs[kind.layout]
    _check(_failures(pair["run"]), kind)
    _check(_failures(pair["ingest"]), kind)


@pytest.mark.parametrize("layout", ["ukbb", "nako"])
def test_unprivileged_run_completes_the_readable_participants(unprivileged_runs, layout) -> None:
    store = unprivileged_runs[layout]["run"]
    metrics = read_table(store, "organ_metrics").to_pandas()
    assert set(metrics["participant_id"]) == set(GOOD[layout])
    assert len(_failures(store)) == len(_of(layout, unprivileged=True))
