"""The batch runner: participant-visits on Dask, tables written in fixed batches."""

from __future__ import annotations

from mrcohort.cohort import Rejected, discover
from mrcohort.jobs.run import batch_file_key, input_id, plan_batches, run_cohort
from mrcohort.labels import MRSEG_LABEL_MAP
from mrcohort.schemas.store import read_table
from tests.builders import ukbb_zip
from tests.jobs.fakes import FAKE_LABEL, job_config, use_fake_segmenter


def test_batch_on_dask_writes_rows_and_failures(tmp_path, monkeypatch):
    """Thread-based LocalCluster: a good and a bad participant, a rejected input."""
    from distributed import Client, LocalCluster

    use_fake_segmenter(monkeypatch)
    ukbb_zip(tmp_path / "in", "1000003")
    (tmp_path / "in" / "1000004_20201_2_0.zip").write_bytes(b"")
    pvs = discover("ukbb", tmp_path / "in").pvs
    cfg = job_config(tmp_path)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        summary = run_cohort(
            cfg,
            pvs,
            client=client,
            rejected=[Rejected(tmp_path / "junk.zip", "UNRECOGNISED_FILE", "bad name")],
        )
    assert summary.n_visits == 2 and summary.n_ok == 1 and summary.n_failed == 2
    rows = read_table(cfg.store, "organ_metrics").to_pandas()
    assert list(rows["label_id"]) == list(MRSEG_LABEL_MAP.ids())
    assert rows.loc[rows["label_id"] == FAKE_LABEL, "n_vox"].item() > 0
    assert read_table(cfg.store, "qc").num_rows == len(MRSEG_LABEL_MAP.ids())
    fails = read_table(cfg.store, "failures").to_pandas()
    codes = dict(zip(fails["participant_id"], fails["code"], strict=True))
    assert codes == {"1000004": "NOT_A_ZIP", "": "UNRECOGNISED_FILE"}
    # one batch: every table in one file under the same deterministic key
    keys = {f.name for f in summary.files}
    assert len(keys) == 1 and len(summary.files) == 4
    assert list((cfg.store / "segmentations" / "k1").glob("*.nii.gz"))


def test_batches_are_fixed_by_the_sorted_inputs(tmp_path):
    ukbb_zip(tmp_path / "in", "1000001")
    (pv,) = discover("ukbb", tmp_path / "in").pvs
    rejected = Rejected(tmp_path / "junk.zip", "UNRECOGNISED_FILE", "bad name")
    ids = [input_id(pv), input_id(rejected)]
    assert ids[0].startswith("ukbb|1000001|2_0|") and ids[1].startswith("rejected|")
    assert plan_batches(["c", "a", "b", "a"], 2) == [["a", "b"], ["c"]]
    cfg = job_config(tmp_path)
    assert batch_file_key(cfg, ["a", "b"]) == batch_file_key(cfg, ["a", "b"])
    assert batch_file_key(cfg, ["a", "b"]) != batch_file_key(cfg, ["a", "c"])
