"""Dask worker preload of the fault tests: the worker segments with `FakeSegmenter` (no
torch, milliseconds a call); with ``MRCOHORT_TEST_WORKER_PIDS=DIR`` each worker process that
starts leaves a file named by its pid there. Reaches the worker processes of a real
``mrcohort run`` through the environment::

    DASK_DISTRIBUTED__WORKER__PRELOAD='["tests.jobs.fault_worker"]' PYTHONPATH=<repo>
"""

from __future__ import annotations

import os

from tests.jobs.fakes import FakeSegmenter


def dask_setup(worker: object) -> None:
    """Called by distributed in each worker process as it starts (and restarts)."""
    import mrcohort.segmentation.predictor as predictor

    folder = os.environ.get("MRCOHORT_TEST_WORKER_PIDS")
    if folder:
        open(os.path.join(folder, str(os.getpid())), "w").close()
    predictor.get_segmenter = lambda *args, **kwargs: FakeSegmenter()
