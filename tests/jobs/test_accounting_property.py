"""The accounting invariant, property-based (hypothesis): random small manifest cohorts that
mix good participants with bad inputs (bad ids, bad rows of a good participant, duplicated
rows, corrupt and missing files), changed between random re-runs (``--force``,
``--retry-failed``, flush sizes); after every run each input discovery saw is in the store
exactly once — its metric rows or one failures row — and no table holds a key twice.

The oracle here knows nothing of slots: it counts rows per participant-visit and per
rejected input from discovery's own result. Real stages on tiny NIfTI stations, the fake
segmentation model, one thread-based Dask cluster for every example.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mrcohort.cohort import discover
from mrcohort.cohort.channels import CHANNELS
from mrcohort.jobs.run import RunSummary, run_job
from mrcohort.labels import MRSEG_LABEL_MAP
from mrcohort.schemas.store import read_table
from tests.builders import nifti, write_manifest
from tests.jobs.fakes import job_config, use_fake_segmenter
from tests.jobs.store_checks import assert_no_duplicates

VISIT = "base"
#: organ_metrics rows of a measured participant-visit (one per label).
N_LABELS = len(MRSEG_LABEL_MAP.labels)
#: Participants a cohort can hold (ops pick one by index).
MAX_PARTICIPANTS = 4

_pick = st.integers(0, MAX_PARTICIPANTS - 1)
OPS = st.one_of(
    st.tuples(st.just("good")),
    st.tuples(st.just("bad_id"), st.integers(0, 1)),  # equal variants: identical rows
    st.tuples(st.just("bad_row"), _pick, st.integers(0, 1)),  # a good id, a bad visit
    st.tuples(st.just("dup_row"), _pick),
    st.tuples(st.just("corrupt"), _pick),
    st.tuples(st.just("delete"), _pick),
    st.tuples(st.just("restore"), _pick),
)
ROUNDS = st.lists(
    st.tuples(
        st.lists(OPS, max_size=4),
        st.booleans(),  # --force
        st.booleans(),  # --retry-failed
        st.sampled_from([1, 2, 50]),  # flush every
    ),
    min_size=1,
    max_size=3,
)


class Cohort:
    """A manifest cohort on disk and what each participant should come to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: list[list[str]] = []
        self.state: dict[str, str] = {}  # pid -> good | corrupt | missing | doubled

    def _files(self, pid: str) -> list[tuple[str, Path]]:
        return [(ch, self.root / pid / f"{ch}.nii.gz") for ch in CHANNELS]

    def _write(self, pid: str) -> None:
        rng = np.random.default_rng(int(pid[1:]))
        for _, path in self._files(pid):
            nifti(path, rng.uniform(1, 9, (4, 6, 5)).astype(np.float32))

    def _pid(self, i: int) -> str | None:
        pids = sorted(self.state)
        return pids[i % len(pids)] if pids else None

    def apply(self, op: tuple) -> None:
        kind, *args = op
        if kind == "good" and len(self.state) < MAX_PARTICIPANTS:
            pid = f"p{len(self.state):02d}"
            self._write(pid)
            self.rows += [[pid, VISIT, "dixon", ch, "1", f"{pid}/{ch}.nii.gz"] for ch in CHANNELS]
            self.state[pid] = "good"
        elif kind == "bad_id":
            self.rows.append(["bad id", VISIT, "dixon", "in", "1", f"x{args[0]}.nii.gz"])
        elif kind == "bad_row" and (pid := self._pid(args[0])):
            self.rows.append([pid, "bad visit", "dixon", "in", "1", f"y{args[1]}.nii.gz"])
        elif kind == "dup_row" and (pid := self._pid(args[0])):
            self.rows.append(next(r for r in self.rows if r[0] == pid and r[1] == VISIT))
            self.state[pid] = "doubled"
        elif kind == "corrupt" and (pid := self._pid(args[0])):
            self._files(pid)[0][1].write_bytes(b"not an image")
            self.state[pid] = "corrupt" if self.state[pid] != "doubled" else "doubled"
        elif kind == "delete" and (pid := self._pid(args[0])):
            self._files(pid)[1][1].unlink(missing_ok=True)
            self.state[pid] = "missing" if self.state[pid] != "doubled" else "doubled"
        elif kind == "restore" and (pid := self._pid(args[0])):
            self._write(pid)  # the same bytes as first written
            mine = [r for r in self.rows if r[0] == pid and r[1] == VISIT]
            self.rows = [r for r in self.rows if r not in mine] + list(
                {tuple(r): r for r in mine}.values()
            )
            self.state[pid] = "good"
        write_manifest(self.root / "manifest.csv", self.rows)


def _keyed(store: Path, table: str, summary: RunSummary):
    df = read_table(store, table).to_pandas()
    return df[(df["model_key"] == summary.model_key) & (df["measure_key"] == summary.measure_key)]


def check_store(cohort: Cohort, store: Path, summary: RunSummary) -> None:
    """Every input discovery sees now is in the store exactly once; no key twice."""
    assert summary.accounting is not None and summary.accounting.ok
    found = discover("manifest", cohort.root)
    organ = _keyed(store, "organ_metrics", summary)
    failures = _keyed(store, "failures", summary)
    n_ok = n_failed = 0
    for pv in found.pvs:
        pid = pv.participant_id
        metrics = organ[(organ["participant_id"] == pid) & (organ["visit"] == pv.visit)]
        failed = failures[(failures["participant_id"] == pid) & (failures["visit"] == pv.visit)]
        if cohort.state[pid] == "good":
            assert len(metrics) == N_LABELS and failed.empty, (pid, failed["message"].tolist())
        elif cohort.state[pid] in ("corrupt", "missing"):
            assert metrics.empty and len(failed) == 1, (pid, len(metrics), len(failed))
        else:
            assert (len(metrics), len(failed)) in ((N_LABELS, 0), (0, 1)), pid
        n_ok += len(metrics) == N_LABELS
        n_failed += len(failed) == 1
    rejected = failures[failures["visit"].isna()]
    assert Counter(rejected["code"]) == Counter(r.code for r in found.rejected)
    assert rejected["slot"].is_unique
    assert len(organ) == N_LABELS * n_ok, "metric rows of no input discovery sees"
    assert len(failures) == n_failed + len(found.rejected), "failures rows of no input"
    ledger = read_table(store, "ledger").to_pandas()
    worked = sum(n for action, n in summary.n_planned.items() if action != "skip")
    assert (ledger["run_id"] == summary.run_id).sum() == worked
    assert_no_duplicates(store)


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failure prints its example as is
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rounds=ROUNDS)
def test_every_input_is_in_the_store_exactly_once_after_every_run(rounds, monkeypatch, client):
    use_fake_segmenter(monkeypatch)
    with tempfile.TemporaryDirectory() as tmp:
        cohort, store = Cohort(Path(tmp, "cohort")), Path(tmp, "store")
        cohort.apply(("good",))  # discovery finds something in the first run
        for ops, force, retry, flush_every in rounds:
            for op in ops:
                cohort.apply(op)
            cfg = job_config(
                cohort.root,
                store,
                **{
                    "input.layout": "manifest",
                    "run.force": force,
                    "run.retry_failed": retry,
                    "store.flush_every_participants": flush_every,
                },
            )
            check_store(cohort, store, run_job(cfg, client=client))
