"""The ``models`` registry: one row per cohort and model_key, written by the first run that
uses it, holding what the hash stands for; results join it by model_key."""

from __future__ import annotations

from pathlib import Path

from mrcohort.io.files import sha256_file
from mrcohort.jobs.run import run_job
from mrcohort.schemas.store import query, read_table
from mrcohort.segmentation.model import demo_model_path
from tests.builders import ukbb_zip
from tests.jobs.fakes import job_config, use_fake_segmenter


def test_the_registry_names_the_model_behind_each_key(tmp_path: Path, monkeypatch, client):
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    ukbb_zip(src, "1000001")
    first = run_job(job_config(src, store), client=client)
    again = run_job(job_config(src, store), client=client)  # the same key: no second row
    assert again.model_key == first.model_key
    models = read_table(store, "models").to_pandas()
    assert len(models) == 1
    row = models.iloc[0]
    demo = demo_model_path()
    assert (row["model_key"], row["model_name"], row["cohort"]) == (first.model_key, "demo", "t")
    assert Path(row["model_path"]) == demo
    folds = list(row["folds"])
    assert folds and list(row["checkpoint_sha256"]) == [
        sha256_file(demo / f"fold_{f}" / "checkpoint_final.pth") for f in folds
    ]
    assert row["dataset_sha256"] == sha256_file(demo / "dataset.json")
    assert row["n_labels"] == 40 and row["device_type"] == "cpu" and row["input_channel"] == "in"
    assert row["run_id"] == first.run_id and row["measure_key"] == "none"

    # a different inference setting is a different key, registered beside the first
    other = run_job(job_config(src, store, **{"model.tile_step_size": 0.8}), client=client)
    assert other.model_key != first.model_key
    joined = query(
        store,
        "SELECT m.model_name, m.tile_step_size, count(*) AS n FROM organ_metrics o "
        "JOIN models m USING (cohort, model_key) GROUP BY ALL ORDER BY 2",
    ).to_pylist()
    assert [(r["model_name"], r["tile_step_size"]) for r in joined] == [
        ("demo", 0.5),
        ("demo", 0.8),
    ]
    assert joined[0]["n"] == joined[1]["n"] > 0
