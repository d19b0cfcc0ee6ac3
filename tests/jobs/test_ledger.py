"""Wanted − done: the plan from what discovery found and what the ledger holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrcohort.cohort import Discovery, Rejected, discover
from mrcohort.cohort.fingerprint import input_fingerprint
from mrcohort.jobs.flush import Flusher
from mrcohort.jobs.ledger import (
    Action,
    Attempt,
    Keys,
    LedgerState,
    Plan,
    WorkItem,
    plan,
    read_ledger,
    slot_of,
)
from mrcohort.jobs.records import ledger_row
from tests.builders import ukbb_zip
from tests.jobs.fakes import item_for, work_context


@pytest.fixture
def found(tmp_path: Path) -> Discovery:
    for pid in ("1000001", "1000002"):
        ukbb_zip(tmp_path / "in", pid)
    (tmp_path / "in" / "junk_name.zip").write_bytes(b"x")
    return discover("ukbb", tmp_path / "in")


def _actions(p: Plan) -> list[str]:
    return [i.action.value for i in p.items]


def test_empty_store_means_everything_to_do(found, tmp_path):
    p = plan(found, LedgerState(), root=tmp_path / "in")
    assert _actions(p) == ["segment", "segment", "reject"]
    assert p.summary() == "2 to segment, 0 to measure only, 0 up to date, 1 rejected by discovery"
    assert [i.slot for i in p.items] == ["1000001/2_0", "1000002/2_0", "source:junk_name.zip"]


def _state(found: Discovery, **attempt: object) -> LedgerState:
    pv = found.pvs[0]
    fields = {
        "fingerprint": input_fingerprint(pv),
        "input_sha256": "a" * 64,
        "outcome": "ok",
        "retryable": False,
        "segmentation_sha256": "s" * 64,
    }
    fields |= attempt
    state = LedgerState(latest={slot_of(pv): Attempt(**fields)})  # type: ignore[arg-type]
    state.sha_by_fingerprint[fields["fingerprint"]] = fields["input_sha256"]  # type: ignore[index]
    state.segmentations["a" * 64] = "s" * 64
    return state


@pytest.mark.parametrize(
    ("attempt", "options", "expected"),
    [
        ({}, {}, "skip"),  # done
        ({"outcome": "failed"}, {}, "skip"),  # the input's own failure: not retried...
        ({"outcome": "failed"}, {"retry_failed": True}, "measure"),  # ...unless asked
        ({"outcome": "failed", "retryable": True}, {}, "measure"),  # environment: retried
        ({}, {"force": True}, "segment"),
        ({"fingerprint": "other"}, {}, "segment"),  # changed files, hash unknown
    ],
)
def test_plan_per_attempt(found, tmp_path, attempt, options, expected):
    p = plan(found, _state(found, **attempt), root=tmp_path / "in", **options)
    assert p.items[0].action.value == expected
    assert p.items[1].action is Action.SEGMENT


def test_measure_only_when_the_hash_has_a_stored_segmentation(found, tmp_path):
    """New measurement keys: the hash is known by fingerprint, its segmentation stored."""
    state = _state(found)
    state.latest.clear()  # nothing under these keys yet
    item = plan(found, state, root=tmp_path / "in").items[0]
    assert item.action is Action.MEASURE
    assert (item.known_sha256, item.segmentation_sha256) == ("a" * 64, "s" * 64)


def test_inputs_sharing_a_slot_each_get_their_own(tmp_path):
    rej = Rejected(tmp_path / "m.csv", "BAD_PARTICIPANT_ID", "bad")
    p = plan(Discovery([], [rej, rej]), LedgerState(), root=tmp_path)
    assert [i.slot for i in p.items] == ["source:m.csv", "source:m.csv#2"]


def test_read_ledger_after_a_flush(found, tmp_path):
    store = tmp_path / "store"
    ctx = work_context(tmp_path)
    flusher = Flusher(store, cohort="t", model_key="k1", run_id="r1", every_n=10, every_s=60)
    pv = found.pvs[0]
    item = item_for(pv)
    row = ledger_row(
        ctx,
        item,
        input_sha256="a" * 64,
        segmentation_sha256="s" * 64,
        err=None,
        wrote_scans=True,
        seconds={"ingest": 1.0},
        worker="w",
    )
    flusher.add({}, row)
    flusher.flush()
    state = read_ledger(store, Keys("t", "k1", "m1"))
    attempt = state.latest[slot_of(pv)]
    assert (attempt.outcome, attempt.input_sha256) == ("ok", "a" * 64)
    assert state.sha_by_fingerprint == {item.fingerprint: "a" * 64}
    assert state.segmentations == {"a" * 64: "s" * 64}
    assert state.flushes[slot_of(pv)] == ("r1-00000",)
    assert state.scans == {slot_of(pv): "a" * 64}
    assert read_ledger(store, Keys("t", "k1", "other")).latest == {}
    assert read_ledger(store, Keys("t", "k2", "m1")).segmentations == {}
    assert read_ledger(store, Keys("nope", "k1", "m1")) == LedgerState()
    assert isinstance(plan(found, state, root=tmp_path / "in").items[0], WorkItem)
