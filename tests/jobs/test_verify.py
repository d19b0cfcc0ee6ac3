"""``mrcohort verify``: damaged files of a real store found, the repair, and the run after it
equal to a store that was never damaged (thread cluster, fake model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mrcohort.cli.app import app
from mrcohort.jobs.flush import journal_dir
from mrcohort.jobs.run import run_job
from mrcohort.jobs.verify import repair_store, verify_store
from tests.jobs import store_checks
from tests.jobs.fakes import job_config, use_fake_segmenter

GOOD = ["1000001", "1000002", "1000003", "1000004"]
BAD = {"1000099": "NOT_A_ZIP"}


@pytest.fixture
def stores(tmp_path, monkeypatch, client) -> tuple[Path, Path, Path]:
    """(source, reference store, a copy of it to damage)."""
    use_fake_segmenter(monkeypatch)
    source, reference = tmp_path / "in", tmp_path / "reference"
    store_checks.write_cohort_folder(source, GOOD, list(BAD))
    run_job(job_config(source, reference), client=client)
    store = tmp_path / "store"
    shutil.copytree(reference, store)
    return source, reference, store


def _cut(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _latest_ok(store: Path):
    return store_checks.ledger(store).query("outcome == 'ok'").sort_values("slot")


def test_a_clean_store_verifies_and_the_cli_exits_0(stores) -> None:
    _, reference, _ = stores
    result = verify_store(reference)
    assert result.ok and result.segmentations == len(GOOD)
    assert result.qc_pictures == len(GOOD) and result.table_files > 0
    out = CliRunner().invoke(app, ["verify", "--store", str(reference)])
    assert out.exit_code == 0, out.output
    assert "0 problems" in out.output


def test_damage_is_found_repaired_and_redone_by_the_next_run(stores, client) -> None:
    """A cut organ_metrics file (input A), a ledger file overwritten (input B), a cut
    segmentation (input C, its flush intact) and a deleted QC picture (input A): verify lists
    all four and exits 1; --repair takes back A's and B's flushes and records C's
    segmentation as lost; the next run redoes exactly A, B (segment) and C (segment again),
    and the store equals the reference."""
    source, reference, store = stores
    ok = _latest_ok(store)
    a, b, c = (ok.iloc[i] for i in range(3))
    part = f"model_key={a['model_key']}/part-{a['flush_id']}.parquet"
    _cut(store / "organ_metrics" / "cohort=t" / part)
    (store / "ledger" / "cohort=t" / f"model_key={b['model_key']}" /
     f"part-{b['flush_id']}.parquet").write_bytes(b"PAR1 not really")  # fmt: skip
    seg = store / "segmentations" / c["model_key"] / f"{c['input_sha256']}.nii.gz"
    _cut(seg)
    picture = next((store / "qc_pictures").rglob(f"{a['participant_id']}*"))
    picture.unlink()

    out = CliRunner().invoke(app, ["verify", "--store", str(store)])
    assert out.exit_code == 1, out.output
    result = verify_store(store)
    kinds = sorted((p.kind, p.flush_id) for p in result.problems)
    assert kinds == sorted(
        [("table_file", a["flush_id"]), ("table_file", b["flush_id"]),
         ("segmentation", None), ("qc_picture", None)]
    )  # fmt: skip
    assert {p.path for p in result.problems if p.kind == "segmentation"} == {
        seg.relative_to(store).as_posix()
    }

    done = repair_store(store, result.problems)
    assert any(a["flush_id"] in line for line in done), done
    assert any(c["slot"] in line for line in done), done
    assert not seg.exists() and not list(journal_dir(store).glob("*"))
    left = verify_store(store)
    assert [p.kind for p in left.problems] == [], left.problems  # picture: its flush went too

    summary = run_job(job_config(source, store), client=client)
    assert summary.plan == "2 to segment, 1 to measure only, 2 up to date"
    now = store_checks.ledger(store).sort_values("computed_at").groupby("slot").tail(1)
    assert now.set_index("slot").loc[c["slot"], "action"] == "segment"
    store_checks.assert_recovered(store, reference, good=GOOD, bad=BAD, attempts_per_slot=None)
    assert verify_store(store).ok
