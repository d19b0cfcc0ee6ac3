"""Dask worker preload of the fault tests: the worker segments with `FakeSegmenter` (no
torch, milliseconds a call; ``MRCOHORT_TEST_SEGMENT_S`` seconds more each call, to keep a
run busy). Reaches the worker processes of a real ``mrcohort run`` through the environment::

    DASK_DISTRIBUTED__WORKER__PRELOAD='["tests.jobs.fault_worker"]' PYTHONPATH=<repo>
"""

from __future__ import annotations

import os
import time

from tests.jobs.fakes import FakeSegmenter


class _SlowFake(FakeSegmenter):
    def segment(self, image):
        time.sleep(float(os.environ.get("MRCOHORT_TEST_SEGMENT_S", "0") or 0))
        return super().segment(image)


def dask_setup(worker: object) -> None:
    """Called by distributed in each worker process as it starts (and restarts)."""
    import mrcohort.segmentation.predictor as predictor

    predictor.get_segmenter = lambda *args, **kwargs: _SlowFake()
