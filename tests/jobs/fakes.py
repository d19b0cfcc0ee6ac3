"""Stand-ins for the job tests: a fake segmentation model (no model folder, no torch), a small
work context, work items, and a job configuration writing to a temporary store."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.cohort import ParticipantVisit
from mrcohort.cohort.fingerprint import input_fingerprint
from mrcohort.config import JobConfig, load_config
from mrcohort.jobs.ledger import Action, WorkItem, slot_of
from mrcohort.jobs.participant import WorkContext
from mrcohort.labels import MRSEG_LABEL_MAP

#: The label the fake model paints on every voxel with signal (liver).
FAKE_LABEL = 5


class FakeSegmenter:
    """Labels every voxel with a positive value as `FAKE_LABEL`, on the image's own grid;
    counts its calls (``FakeSegmenter.calls``)."""

    model_key = "k1"
    label_map = MRSEG_LABEL_MAP
    calls = 0
    _lock = threading.Lock()

    def segment(self, image: sitk.Image) -> sitk.Image:
        with FakeSegmenter._lock:
            FakeSegmenter.calls += 1
        arr = (sitk.GetArrayFromImage(image) > 0).astype(np.uint8) * FAKE_LABEL
        out = sitk.GetImageFromArray(arr)
        out.CopyInformation(image)
        return out


def use_fake_segmenter(monkeypatch: pytest.MonkeyPatch) -> type[FakeSegmenter]:
    """Make every job in this process segment with `FakeSegmenter`; reset its call count."""
    import mrcohort.segmentation.predictor as predictor

    FakeSegmenter.calls = 0
    monkeypatch.setattr(predictor, "get_segmenter", lambda *a, **k: FakeSegmenter())
    return FakeSegmenter


def work_context(tmp_path: Path, **changes: object) -> WorkContext:
    """A context writing to ``tmp_path/store`` under the fake model's key."""
    fields: dict[str, object] = {
        "cohort": "t",
        "store": tmp_path / "store",
        "run_id": "r1",
        "layout": "ukbb",
        "model": "demo",
        "model_key": "k1",
        "measure_key": "m1",
    }
    return WorkContext(**(fields | changes))  # type: ignore[arg-type]


def item_for(pv: ParticipantVisit, action: Action = Action.SEGMENT, **changes: object) -> WorkItem:
    """A work item for ``pv`` as the plan would make it for a store that holds nothing."""
    fields: dict[str, object] = {
        "slot": slot_of(pv),
        "fingerprint": input_fingerprint(pv),
        "action": action,
        "source": pv.relative_source,
        "pv": pv,
    }
    return WorkItem(**(fields | changes))  # type: ignore[arg-type]


def job_config(source: Path, store: Path, **overrides: object) -> JobConfig:
    """A job over ``source`` into ``store``: one flush per participant-visit, CPU, demo model
    name (the fake segmenter replaces it)."""
    base: dict[str, object] = {
        "input.source": source,
        "input.cohort": "t",
        "store.path": store,
        "store.flush_every_participants": 1,
        "model.device": "cpu",
        "progress.interval_seconds": 3600.0,
    }
    return load_config(None, base | overrides)


def thread_client():  # -> distributed.Client
    """A thread-based Dask cluster in this process (monkeypatches reach its workers)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False},
    )
    return Client(cluster)
