"""Every input discovery saw ends in the store exactly once (issue 13): inputs that share an
identity each keep their own slot, and the end-of-run check reads the store (not what the run
believes it wrote) and fails the run when an input is missing or doubled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mrcohort.cohort import Discovery, ParticipantVisit, Rejected, discover
from mrcohort.jobs.accounting import Accounting, AccountingError
from mrcohort.jobs.flush import Flusher
from mrcohort.jobs.ledger import Action, LedgerState, plan
from mrcohort.jobs.run import run_job
from mrcohort.schemas.store import read_table
from tests.builders import dixon_manifest_cohort, write_manifest
from tests.jobs.fakes import job_config, use_fake_segmenter
from tests.jobs.store_checks import assert_no_duplicates

MANIFEST = {"input.layout": "manifest"}
BAD_ROW = ["bad id", "base", "dixon", "in", "1", "p01/in_0.nii.gz"]


def _cohort(src: Path, participants=("p01",), extra_rows=()) -> list[list[str]]:
    """A manifest cohort of tiny Dixon NIfTI stations, plus ``extra_rows``."""
    dixon_manifest_cohort(src, participants, shape=(4, 6, 5))
    rows = [line.split(",") for line in (src / "manifest.csv").read_text().splitlines()[1:]]
    rows += [list(r) for r in extra_rows]
    write_manifest(src / "manifest.csv", rows)
    return rows


def _run(src: Path, store: Path, client, **overrides: object):
    return run_job(job_config(src, store, **(MANIFEST | overrides)), client=client)


def _failures(store: Path):
    return read_table(store, "failures").to_pandas().sort_values("slot")


@pytest.mark.parametrize("flush_every", [1, 2, 100])
def test_two_bad_rows_with_one_id_lose_nothing(tmp_path, monkeypatch, client, flush_every):
    """The issue's repro: one good participant and two manifest rows with the id ``bad id``,
    at every flush size: the good one's metrics and two failures rows are written."""
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "m", tmp_path / "store"
    _cohort(src, extra_rows=[BAD_ROW, BAD_ROW])
    summary = _run(src, store, client, **{"store.flush_every_participants": flush_every})
    assert (summary.n_ok, summary.n_failed) == (1, 2)
    assert summary.accounting is not None and summary.accounting.ok
    assert read_table(store, "organ_metrics").num_rows == 40
    failures = _failures(store)
    assert failures["code"].tolist() == ["BAD_PARTICIPANT_ID"] * 2
    assert failures["slot"].nunique() == 2
    assert read_table(store, "ledger").num_rows == 3
    assert_no_duplicates(store)


def test_forcing_identical_bad_rows_replaces_each_ones_row(tmp_path, monkeypatch, client):
    """The second of two identical rows is planned under its own slot: a forced run replaces
    its earlier failures row instead of adding a second one (flushes of one input each)."""
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "m", tmp_path / "store"
    _cohort(src, extra_rows=[BAD_ROW, BAD_ROW])
    _run(src, store, client)
    forced = _run(src, store, client, **{"run.force": True})
    assert forced.n_planned["reject"] == 2
    assert len(_failures(store)) == 2
    assert_no_duplicates(store)
    retried = _run(src, store, client, **{"run.retry_failed": True})
    assert retried.n_planned["reject"] == 2 and len(_failures(store)) == 2


def test_a_run_cut_short_between_identical_rows_writes_the_second_next_time(
    tmp_path, monkeypatch, client
):
    """The first of two identical bad rows committed, then the run died: the second one is
    not taken for done because the first one is."""
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "m", tmp_path / "store"
    _cohort(src, extra_rows=[BAD_ROW, BAD_ROW])
    real_flush = Flusher.flush
    calls = []

    def dies_after_one(self):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("killed")
        return real_flush(self)

    with monkeypatch.context() as patch:
        patch.setattr(Flusher, "flush", dies_after_one)
        with pytest.raises(RuntimeError, match="killed"):
            _run(src, store, client)
    assert len(_failures(store)) == 1
    resumed = _run(src, store, client)
    assert resumed.n_planned["reject"] == 1 and resumed.n_planned["skip"] == 1
    assert len(_failures(store)) == 2 and _failures(store)["slot"].nunique() == 2
    assert read_table(store, "organ_metrics").num_rows == 40


def _pv(pid: str, source: Path, root: Path) -> ParticipantVisit:
    return ParticipantVisit("manifest", pid, "base", source, root)


def test_plan_gives_every_input_its_own_slot(tmp_path):
    """A participant-visit yielded twice: the first one is processed, the second becomes one
    DUPLICATE_VISIT rejection under its source; a rejected input whose participant-visit
    slot is taken falls back to its source; identical rejections are numbered."""
    root = tmp_path
    first, second = _pv("p1", root / "a.csv", root), _pv("p1", root / "b.csv", root)
    named = Rejected(root / "c.zip", "NOT_A_ZIP", "c", participant_id="p1", visit="base")
    rows = [Rejected(root / "m.csv", "BAD_PARTICIPANT_ID", "x", line=n, key="rowk") for n in (2, 3)]
    found = Discovery([first, second], [named, named, *rows])
    items = plan(found, LedgerState(), root=root).items
    assert [(i.slot, i.action) for i in items] == [
        ("p1/base", Action.SEGMENT),
        ("source:b.csv", Action.REJECT),
        ("source:c.zip", Action.REJECT),
        ("source:c.zip#2", Action.REJECT),
        ("source:m.csv#rowk", Action.REJECT),
        ("source:m.csv#rowk#2", Action.REJECT),
    ]
    assert items[0].pv is first
    dup = items[1].rejected
    assert dup is not None and dup.code == "DUPLICATE_VISIT"
    assert (dup.participant_id, dup.visit) == ("p1", "base") and "a.csv" in dup.message


def test_a_participant_visit_found_twice_is_measured_once(tmp_path, monkeypatch, client):
    """Through the whole run (a layout that yields one participant-visit from two sources):
    one set of metric rows and one DUPLICATE_VISIT failure, also on a re-run."""
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "m", tmp_path / "store"
    _cohort(src)
    shutil.copy(src / "manifest.csv", src / "again.csv")
    found = discover("manifest", src)
    twice = Discovery([*found.pvs, _pv_from(found.pvs[0], src / "again.csv")], found.rejected)
    monkeypatch.setattr("mrcohort.jobs.run.discover", lambda *a, **k: twice)
    summary = _run(src, store, client)
    assert (summary.n_ok, summary.n_failed) == (1, 1)
    assert read_table(store, "organ_metrics").num_rows == 40
    failures = _failures(store)
    assert failures["code"].tolist() == ["DUPLICATE_VISIT"]
    assert failures["slot"].tolist() == ["source:again.csv"]
    again = _run(src, store, client)
    assert again.n_planned["skip"] == 2
    assert_no_duplicates(store)


def _pv_from(pv: ParticipantVisit, source: Path) -> ParticipantVisit:
    return ParticipantVisit(pv.layout, pv.participant_id, pv.visit, source, pv.root, pv.entries)


def test_a_flush_that_overwrites_an_earlier_one_fails_the_run(tmp_path, monkeypatch, client):
    """The issue's mechanism: a batch rewritten under an earlier flush's name loses that
    flush's rows although every flush reported its ledger rows. The store check finds the
    inputs, the run fails (ACCOUNTING), status.json names them, the runs row says failed."""
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "m", tmp_path / "store"
    _cohort(src, ("p01", "p02"), extra_rows=[BAD_ROW])
    real_flush = Flusher.flush

    def same_name_every_time(self):
        self.n_flushes = 0
        return real_flush(self)

    monkeypatch.setattr(Flusher, "flush", same_name_every_time)
    with pytest.raises(AccountingError) as info:
        _run(src, store, client)
    err = info.value
    assert err.code == "ACCOUNTING" and err.stage == "run"
    lost = err.accounting.missing
    assert len(lost) == 2 and set(lost.values()) == {"no ledger row of this run"}
    assert "of 3 inputs discovery saw, 2 missing (" in err.message
    run_dir = next((store / "runs").glob("*/status.json")).parent
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed"
    assert status["accounting"]["n_missing"] == 2 and set(status["accounting"]["missing"]) == set(
        lost
    )
    assert str(run_dir / "status.json") in err.message
    runs = read_table(store, "runs").to_pandas()
    assert runs["state"].tolist() == ["failed"]


def test_rows_removed_behind_the_ledger_fail_the_next_run(tmp_path, monkeypatch, client):
    """An up-to-date input whose metric rows are gone (a file deleted by hand) is reported,
    not silently taken for done; --force writes it again."""
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "m", tmp_path / "store"
    _cohort(src, extra_rows=[BAD_ROW])
    _run(src, store, client)
    for table in ("organ_metrics", "vessel_metrics", "qc"):
        shutil.rmtree(store / table)
    with pytest.raises(AccountingError) as info:
        _run(src, store, client)
    assert dict(info.value.accounting.missing) == {
        "p01/base": "the ledger says ok, but no metric rows"
    }
    assert "--force" in info.value.message
    forced = _run(src, store, client, **{"run.force": True})
    assert forced.accounting is not None and forced.accounting.ok
    assert read_table(store, "organ_metrics").num_rows == 40


def test_rows_written_twice_fail_the_next_run(tmp_path, monkeypatch, client):
    """A flush's files present under two names (its rows twice): the metric rows and the
    failures row of each input are found doubled."""
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "m", tmp_path / "store"
    _cohort(src, extra_rows=[BAD_ROW])
    _run(src, store, client, **{"store.flush_every_participants": 100})
    for table in ("organ_metrics", "failures"):
        (part,) = (store / table).rglob("part-*.parquet")
        shutil.copy(part, part.with_name("part-copy.parquet"))
    with pytest.raises(AccountingError) as info:
        _run(src, store, client)
    acc = info.value.accounting
    assert not acc.missing and len(acc.duplicated) == 2
    assert acc.duplicated["p01/base"] == "40 metric rows repeat a key"
    assert [why for slot, why in acc.duplicated.items() if slot != "p01/base"] == [
        "2 failures rows"
    ]


def test_the_message_names_the_first_few_and_counts_the_rest() -> None:
    acc = Accounting(
        100_000,
        missing={f"p{i:03d}/2_0": "no ledger row of this run" for i in range(5)},
        duplicated={"p9/2_0": "2 failures rows"},
    )
    assert not acc.ok
    assert acc.message() == (
        "of 100,000 inputs discovery saw, 5 missing (p000/2_0: no ledger row of this run; "
        "p001/2_0: no ledger row of this run; p002/2_0: no ledger row of this run (+2 more)) "
        "and 1 duplicated (p9/2_0: 2 failures rows) in the store"
    )
    status = acc.as_status()
    assert (status["ok"], status["n_missing"], status["n_duplicated"]) == (False, 5, 1)
    assert Accounting(3).message() == "all 3 inputs are in the store exactly once"
