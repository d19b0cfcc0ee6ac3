"""Fixtures shared by every test folder, and the path of the optional real data.

Real data (``../shared/data`` beside the repository: TotalSegmentator examples, QMRITools
stations) is optional: tests that need it are marked ``shared_data`` and call
:func:`shared_data`, which skips them when the folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: ``../shared/data`` next to the repository checkout.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """``SHARED_DATA / parts``; skips the calling test when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (needs ../shared/data)")
    return path


@pytest.fixture(scope="session")
def good_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small complete field-20201 zip (6 stations x 4 channels), ``1000001_20201_2_0.zip``.

    Shared by the whole session: copy it before changing it.
    """
    from tests.builders import ukbb_zip  # imported here: conftest stays light for every test

    return ukbb_zip(tmp_path_factory.mktemp("ukbb"))


@pytest.fixture(scope="session")
def mini_nako():
    """A small NAKO-like phantom participant (4 Dixon stations, 2 HASTE stations)."""
    from mrcohort.phantoms import make_participant

    return make_participant(2, 0, "mini_nako")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder written by the real training code, 2 iterations (smoke test)."""
    from mrcohort.devtools.train_demo import TrainSettings, train

    out = tmp_path_factory.mktemp("model") / "tiny"
    return train(out, TrainSettings(iterations=2, n_train=1), log=lambda _msg: None)


@pytest.fixture(scope="session")
def weights_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MRSegmentator 2.0 weights root: base/ and body_comp/ (the demo models)."""
    import shutil

    from mrcohort.segmentation.model import demo_model_path

    root = tmp_path_factory.mktemp("mrseg_weights")
    shutil.copytree(demo_model_path(), root / "base")
    shutil.copytree(demo_model_path("body_comp"), root / "body_comp")
    return root


@pytest.fixture(scope="session")
def phantom():
    """A held-out phantom (cohort stream, not the training stream) with body composition."""
    from mrcohort.phantoms import make_participant

    return make_participant(11, 0, "mini")


@pytest.fixture
def mr_image():
    """A random 24 x 40 x 48 image on the demo models' grid (3.5 x 3.5 x 5 mm)."""
    import numpy as np
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    arr = rng.normal(500, 100, (24, 40, 48)).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((3.5, 3.5, 5.0))
    img.SetOrigin((-80.0, -60.0, 300.0))
    return img


@pytest.fixture
def client():
    """A thread-based Dask cluster in this process (`tests.jobs.fakes.thread_client`: the fake
    segmenter's monkeypatch reaches its workers), closed after the test."""
    from tests.jobs.fakes import thread_client

    c = thread_client()
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()
