"""Run one layout's cohort as the user this process runs as, twice: the cohort job (fake
segmentation model, thread-based Dask cluster) and ``ingest``; each into its own store.

Started by ``test_corpus.py`` as an unprivileged user (``setpriv``/``runuser``): file
permissions mean nothing to root, so unreadable inputs are only unreadable to another user::

    python -m tests.badinputs.unprivileged LAYOUT SOURCE RUN_STORE INGEST_STORE
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def main(layout: str, source: Path, run_store: Path, ingest_store: Path) -> None:
    from mrcohort.cohort import load_layout
    from mrcohort.jobs import ingest
    from mrcohort.jobs.run import run_job
    from tests.jobs.fakes import job_config, thread_client, use_fake_segmenter

    with pytest.MonkeyPatch.context() as patch:
        use_fake_segmenter(patch)
        client = thread_client()
        try:
            run_job(job_config(source, run_store, **{"input.layout": layout}), client=client)
        finally:
            cluster = client.cluster
            client.close()
            cluster.close()
    ingest(layout, source, cohort="t", store=ingest_store, config=load_layout(layout, None))


if __name__ == "__main__":
    main(sys.argv[1], *map(Path, sys.argv[2:5]))
