"""Flushes: every table then the ledger (the commit), superseded rows removed, and recovery
of what a crash left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mrcohort.jobs import flush as flush_module
from mrcohort.jobs.flush import Flusher, journal_dir, recover
from mrcohort.schemas.rows import failure_row, provenance
from mrcohort.schemas.store import read_table


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _rows(pid: str, *, measure_key: str = "m1") -> dict[str, list[dict[str, object]]]:
    prov = provenance(
        input_sha256="a" * 64, params_hash="p", model_key="k1", measure_key=measure_key, run_id="r"
    )
    organ = {
        "cohort": "t",
        "participant_id": pid,
        "visit": "2_0",
        "sequence": "dixon",
        "label_id": 5,
        "label_name": "liver",
        "label_group": "organ",
        "n_vox": 10,
        "volume_ml": 1.0,
        "is_empty": False,
        "touches_border": False,
        **prov,
    }
    return {"organ_metrics": [organ]}


def _ledger(pid: str) -> dict[str, object]:
    return {
        "cohort": "t",
        "participant_id": pid,
        "visit": "2_0",
        "slot": f"{pid}/2_0",
        "layout": "ukbb",
        "source": f"{pid}.zip",
        "fingerprint": "f",
        "action": "segment",
        "outcome": "ok",
        "retryable": False,
        "wrote_scans": False,
        "flush_id": "",
        **provenance(
            input_sha256="a" * 64, params_hash="p", model_key="k1", measure_key="m1", run_id="r"
        ),
    }


def _flusher(store: Path, clock: Clock | None = None, run_id: str = "r1") -> Flusher:
    return Flusher(
        store,
        cohort="t",
        model_key="k1",
        run_id=run_id,
        every_n=2,
        every_s=10.0,
        clock=clock or Clock(),
    )


def test_due_after_n_inputs_or_t_seconds(tmp_path):
    clock = Clock()
    f = _flusher(tmp_path, clock)
    assert not f.due()
    f.add(_rows("1"), _ledger("1"))
    assert not f.due()
    clock.t = 10.0
    assert f.due()  # time
    f.flush()
    f.add(_rows("2"), _ledger("2"))
    f.add(_rows("3"), _ledger("3"))
    assert f.due()  # count


def test_a_flush_writes_every_table_then_the_ledger(tmp_path):
    f = _flusher(tmp_path)
    f.add(_rows("1"), _ledger("1"))
    err = type("E", (), {"code": "NOT_A_ZIP", "message": "m", "stage": "ingest"})()
    fail = failure_row(
        err,
        cohort="t",
        participant_id="2",
        visit="2_0",
        source="2.zip",
        input_sha256=None,
        params_hash="p",
        model_key="k1",
        measure_key="m1",
    )
    f.add({"failures": [fail]}, _ledger("2"))
    committed = f.flush()
    assert [r["flush_id"] for r in committed] == ["r1-00000"] * 2
    assert [p.parent.parent.parent.name for p in f.files] == ["organ_metrics", "failures", "ledger"]
    assert all(p.name == "part-r1-00000.parquet" for p in f.files)
    assert not list(journal_dir(tmp_path).glob("*.json"))
    assert f.flush() == []  # nothing queued: nothing written


def test_superseded_rows_leave_the_earlier_flush(tmp_path):
    f = _flusher(tmp_path)
    f.add(_rows("1"), _ledger("1"))
    f.add(_rows("2"), _ledger("2"))
    f.flush()
    g = _flusher(tmp_path, run_id="r2")
    g.add(_rows("1"), _ledger("1"), replaces=["r1-00000"])
    g.flush()
    organ = read_table(tmp_path, "organ_metrics").to_pandas()
    assert sorted(organ["participant_id"]) == ["1", "2"]
    first = tmp_path / "organ_metrics" / "cohort=t" / "model_key=k1" / "part-r1-00000.parquet"
    assert pq.read_table(first).column("participant_id").to_pylist() == ["2"]


def test_a_failed_flush_rolls_itself_back(tmp_path, monkeypatch):
    """Disk full while writing the ledger: the flush's data files go too, at once."""
    f = _flusher(tmp_path)
    f.add(_rows("1"), _ledger("1"))
    real_write = f._write

    def write(name, rows, flush_id):
        if name == "ledger":
            raise OSError(28, "No space left on device")
        return real_write(name, rows, flush_id)

    monkeypatch.setattr(f, "_write", write)
    with pytest.raises(OSError):
        f.flush()
    assert read_table(tmp_path, "organ_metrics").num_rows == 0
    assert not list(journal_dir(tmp_path).glob("*.json"))


def test_recover_rolls_back_what_a_kill_left(tmp_path, monkeypatch):
    """A SIGKILL between the data files and the ledger (no in-process rollback ran)."""
    f = _flusher(tmp_path)
    f.add(_rows("1"), _ledger("1"))
    real_write = f._write

    def write(name, rows, flush_id):
        if name == "ledger":
            raise KeyboardInterrupt  # stands for the kill
        return real_write(name, rows, flush_id)

    monkeypatch.setattr(f, "_write", write)
    monkeypatch.setattr(flush_module, "_roll_back", lambda *a: None)  # a kill runs no code
    with pytest.raises(KeyboardInterrupt):
        f.flush()
    monkeypatch.undo()
    assert read_table(tmp_path, "organ_metrics").num_rows == 1  # visible, not committed
    (tmp_path / ".staging").mkdir(exist_ok=True)
    (tmp_path / ".staging" / ".tmp-part-x.parquet").write_bytes(b"half")
    done = recover(tmp_path)
    assert "rolled back flush r1-00000" in done
    assert read_table(tmp_path, "organ_metrics").num_rows == 0
    assert not any((tmp_path / ".staging").iterdir())
    assert not list(journal_dir(tmp_path).glob("*.json"))


def test_recover_rolls_back_after_a_damaged_journal_entry(tmp_path):
    f = _flusher(tmp_path)
    f.add(_rows("1"), _ledger("1"))
    f.flush()
    ledger = next((tmp_path / "ledger").rglob("part-*.parquet"))
    ledger.unlink()  # as if killed before the commit...
    (journal_dir(tmp_path) / "r1-00000.json").write_text("")  # ...with an empty entry
    assert recover(tmp_path) == ["rolled back flush r1-00000 (damaged journal entry)"]
    assert read_table(tmp_path, "organ_metrics").num_rows == 0


def test_recover_finishes_a_committed_flush(tmp_path, monkeypatch):
    f = _flusher(tmp_path)
    f.add(_rows("1"), _ledger("1"))
    f.flush()
    g = _flusher(tmp_path, run_id="r2")
    g.add(_rows("1"), _ledger("1"), replaces=["r1-00000"])
    monkeypatch.setattr(flush_module, "_finish", lambda *a: None)  # killed after the commit
    g.flush()
    monkeypatch.undo()
    assert read_table(tmp_path, "organ_metrics").num_rows == 2  # the duplicate, for now
    entry = json.loads(next(journal_dir(tmp_path).glob("*.json")).read_text())
    assert entry["supersede"] == {"r1-00000": ["1/2_0"]}
    assert recover(tmp_path) == ["finished flush r2-00000"]
    assert read_table(tmp_path, "organ_metrics").num_rows == 1
    assert recover(tmp_path) == []
