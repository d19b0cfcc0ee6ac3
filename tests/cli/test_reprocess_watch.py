"""Scheduled reprocessing (``mrcohort reprocess --if-changed --submit``): a no-op when the
weights and parameters are those of the store's last run (no lock, no cluster), a reprocess
when they changed, and the reprocess submitted as a SLURM batch job (a stand-in ``sbatch``;
and, marked ``slurm``, the real one of ``.ci/slurm-local``, which runs it to the end)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import mrcohort.cli.run as run_cli
from mrcohort.cli import app
from mrcohort.config import load_config
from mrcohort.jobs.context import work_context
from mrcohort.jobs.lock import StoreLock
from mrcohort.jobs.run import run_job
from mrcohort.schemas.store import read_table
from mrcohort.segmentation.model import demo_model_path
from tests.builders import ukbb_zip
from tests.jobs.fakes import job_config, use_fake_segmenter
from tests.slurm_support import require_slurm

runner = CliRunner()
QUIET = Console(stderr=True, quiet=True)


def _runs_rows(store: Path) -> list[dict]:
    return sorted(read_table(store, "runs").to_pylist(), key=lambda r: r["started_at"])


def _run_dirs(store: Path) -> set[str]:
    return {p.name for p in (store / "runs").iterdir() if p.is_dir()}


def _change_weights(model: Path) -> None:
    """A new model_key: one byte more in plans.json (still the same JSON, so the model still
    loads and segments as before)."""
    with (model / "plans.json").open("a") as f:
        f.write("\n")


def _errors(result) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]


@pytest.fixture
def done(tmp_path, monkeypatch, client):
    """A store after one finished run (fake segmenter, thread cluster) over 2 tiny zips,
    with a copy of the demo model as its weights; ``reprocess`` runs on the same cluster."""
    use_fake_segmenter(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src, store, model = tmp_path / "in", tmp_path / "store", tmp_path / "model"
    for pid in ("1000001", "1000002"):
        ukbb_zip(src, pid)
    shutil.copytree(demo_model_path(), model)
    cfg = job_config(src, store, **{"model.name": str(model)})
    first = run_job(cfg, client=client, console=QUIET)
    assert (first.n_ok, first.n_failed) == (2, 0)
    monkeypatch.setattr(
        run_cli, "_run", lambda cfg, wait: run_job(cfg, client=client, console=QUIET)
    )
    return {"src": src, "store": store, "model": model, "cfg": cfg, "key": first.model_key}


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    """An ``sbatch`` on PATH that records its arguments and script and answers a job id;
    ``FAKE_SBATCH_FAIL`` makes it fail as sbatch does."""
    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch-record"
    bin_dir.mkdir()
    record.mkdir()
    script = bin_dir / "sbatch"
    script.write_text(
        "#!/bin/bash\n"
        'if [ -n "$FAKE_SBATCH_FAIL" ]; then\n'
        '  echo "sbatch: error: Batch job submission failed: $FAKE_SBATCH_FAIL" >&2; exit 1\n'
        "fi\n"
        f'printf "%s\\n" "$@" > {record}/args\n'
        f"cat > {record}/script\n"
        "echo 4242\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("FAKE_SBATCH_FAIL", raising=False)
    return record


def test_if_changed_is_a_no_op_without_lock_or_cluster(done, monkeypatch):
    store = done["store"]
    before = _run_dirs(store)
    (row,) = _runs_rows(store)

    def no_run(*_args, **_kwargs):
        raise AssertionError("--if-changed started a run")

    monkeypatch.setattr(run_cli, "_run", no_run)
    # another process holds the store: a check that took the lock would say STORE_BUSY
    with StoreLock(store, run_id="someone-else"):
        result = runner.invoke(app, ["reprocess", "--store", str(store), "--if-changed"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"model and parameters unchanged (model_key {row['model_key']}, "
        f"measure_key {row['measure_key']}): nothing to do"
    )
    assert row["model_key"] == done["key"]
    assert _run_dirs(store) == before and len(_runs_rows(store)) == 1


def test_if_changed_sees_new_weights_and_reprocesses(done):
    store, old = done["store"], done["key"]
    before = _run_dirs(store)
    _change_weights(done["model"])
    new = work_context(done["cfg"], run_id="x").model_key
    assert new != old

    result = runner.invoke(app, ["reprocess", "--store", str(store), "--if-changed"])
    assert result.exit_code == 0, result.output
    assert f"model_key {old} -> {new}" in result.stderr
    assert "measure_key" not in result.stderr
    assert f"run {_runs_rows(store)[-1]['run_id']}: 2 processed, 0 failed" in result.stdout
    assert len(_run_dirs(store) - before) == 1
    rows = _runs_rows(store)
    assert [r["model_key"] for r in rows] == [old, new]
    assert rows[-1]["n_to_segment"] == 2

    again = runner.invoke(app, ["reprocess", "--store", str(store), "--if-changed"])
    assert again.exit_code == 0, again.output
    assert f"unchanged (model_key {new}," in again.stdout
    assert len(_runs_rows(store)) == 2


def test_if_changed_sees_new_parameters_and_submits(done, fake_sbatch, tmp_path):
    store = done["store"]
    (row,) = _runs_rows(store)
    config = tmp_path / "job.toml"
    config.write_text(
        f'[input]\nsource = "{done["src"]}"\ncohort = "t"\n'
        f'[store]\npath = "{store}"\n'
        f'[model]\nname = "{done["model"]}"\ndevice = "cpu"\n'
        "[measure]\nerosion_mm = 2.0\n"
    )
    new_measure = load_config(config).measure.measure_key()
    assert new_measure != row["measure_key"]
    before = _run_dirs(store)

    args = ["reprocess", "--store", str(store), "--config", str(config), "--if-changed"]
    result = runner.invoke(
        app,
        [*args, "--submit", "--sbatch-option=--partition=cpu", "--sbatch-option", "--time=1:00:00"],
    )
    assert result.exit_code == 0, result.output
    assert f"measure_key {row['measure_key']} -> {new_measure}" in result.stderr
    assert "model_key" not in result.stderr
    assert result.stdout.strip() == "submitted batch job 4242"
    assert (fake_sbatch / "args").read_text().split() == [
        "--parsable",
        "--partition=cpu",
        "--time=1:00:00",
    ]
    script = (fake_sbatch / "script").read_text()
    assert script.startswith("#!/bin/bash\n")
    assert "#SBATCH --job-name=mrcohort-reprocess\n" in script
    assert f"#SBATCH --output={store.resolve()}/runs/reprocess-%j.log\n" in script
    assert (
        f"{sys.executable} -m mrcohort reprocess --store {store.resolve()} --wait "
        f"--config {config.resolve()}\n"
    ) in script
    assert _run_dirs(store) == before and len(_runs_rows(store)) == 1  # nothing ran here


def test_submit_without_config_runs_the_last_runs_config(done, fake_sbatch):
    store = done["store"]
    result = runner.invoke(app, ["reprocess", "--store", str(store), "--submit"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "submitted batch job 4242"
    script = (fake_sbatch / "script").read_text()
    assert f"-m mrcohort reprocess --store {store.resolve()} --wait\n" in script
    assert "--config" not in script
    assert (fake_sbatch / "args").read_text().split() == ["--parsable"]


def test_submit_refuses_a_busy_store_unless_wait(done, fake_sbatch):
    store = done["store"]
    with StoreLock(store, run_id="someone-else"):
        busy = runner.invoke(app, ["reprocess", "--store", str(store), "--submit"])
        assert busy.exit_code == 2
        (line,) = _errors(busy)
        assert "STORE_BUSY" in line and "someone-else" in line and "not submitting" in line
        assert not (fake_sbatch / "script").exists()
        waiting = runner.invoke(app, ["reprocess", "--store", str(store), "--submit", "--wait"])
    assert waiting.exit_code == 0, waiting.output
    assert waiting.stdout.strip() == "submitted batch job 4242"


def test_submit_errors_are_one_line(done, fake_sbatch, monkeypatch, tmp_path):
    store = done["store"]
    monkeypatch.setenv("FAKE_SBATCH_FAIL", "invalid partition specified: nope")
    failed = runner.invoke(
        app, ["reprocess", "--store", str(store), "--submit", "--sbatch-option=--partition=nope"]
    )
    assert failed.exit_code == 2
    assert _errors(failed) == [
        "error: sbatch failed (exit 1): sbatch: error: Batch job submission failed: "
        "invalid partition specified: nope"
    ]
    assert failed.stderr.strip() == _errors(failed)[0]

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    missing = runner.invoke(app, ["reprocess", "--store", str(store), "--submit"])
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "error: --submit needs SLURM's sbatch, which is not on PATH"

    stray = runner.invoke(app, ["reprocess", "--store", str(store), "--sbatch-option=-p"])
    assert stray.exit_code == 2
    assert stray.stderr.strip() == "error: --sbatch-option needs --submit"


def test_submit_from_a_login_node_keys_the_device_of_the_job(done, fake_sbatch, tmp_path):
    """Local backend, --submit: the job's node decides between GPU (fp16) and CPU (fp32)
    keys; a "cuda" job is keyed for the GPU even where this machine has none."""
    cfg, cpu_key = done["cfg"], done["key"]  # the first run segmented on the CPU
    auto = load_config(None, {**_overrides(done), "model.device": "auto"})
    cuda = load_config(None, {**_overrides(done), "model.device": "cuda"})
    assert run_cli._today_keys(cfg, submit=True) == [(cpu_key, cfg.measure.measure_key())]
    (gpu_key, _), (auto_cpu_key, _) = run_cli._today_keys(auto, submit=True)
    assert auto_cpu_key == cpu_key and gpu_key != cpu_key
    assert [k for k, _ in run_cli._today_keys(cuda, submit=True)] == [gpu_key]

    config = tmp_path / "auto.toml"
    config.write_text(
        f'[input]\nsource = "{done["src"]}"\ncohort = "t"\n'
        f'[store]\npath = "{done["store"]}"\n'
        f'[model]\nname = "{done["model"]}"\ndevice = "auto"\n'
    )
    args = ["reprocess", "--store", str(done["store"]), "--config", str(config), "--if-changed"]
    result = runner.invoke(app, [*args, "--submit"])
    assert result.exit_code == 0, result.output
    assert f"unchanged (model_key {cpu_key}," in result.stdout
    assert not (fake_sbatch / "script").exists()


def _overrides(done: dict) -> dict[str, object]:
    return {
        "input.source": done["src"],
        "input.cohort": "t",
        "store.path": done["store"],
        "model.name": str(done["model"]),
    }


def test_if_changed_without_an_earlier_run(tmp_path):
    result = runner.invoke(
        app, ["reprocess", "--store", str(tmp_path / "nope"), "--if-changed", "--submit"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: no earlier run in")


# --- the real SLURM of .ci/slurm-local ------------------------------------------------------

#: Final states of a job (``squeue -t all`` keeps them for ``MinJobAge``).
DONE_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}
)
SLURM_TIMEOUT_S = 420.0


def _job_state(env: dict[str, str], job_id: str) -> str:
    done = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"],
        env=env, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else ""


@pytest.mark.slurm
@pytest.mark.slow
def test_submitted_reprocess_runs_on_slurm(tmp_path, monkeypatch, client):
    env = require_slurm()
    monkeypatch.setenv("SLURM_CONF", env["SLURM_CONF"])  # the in-process sbatch call
    use_fake_segmenter(monkeypatch)  # the first run only (in this process)
    src, store, model = tmp_path / "in", tmp_path / "store", tmp_path / "model"
    for pid in ("1000001", "1000002"):
        ukbb_zip(src, pid)
    shutil.copytree(demo_model_path(), model)
    config = tmp_path / "job.toml"
    config.write_text(
        f'[input]\nsource = "{src}"\ncohort = "t"\n'
        f'[store]\npath = "{store}"\n'
        f'[model]\nname = "{model}"\ndevice = "cpu"\n'
        '[cluster]\nworkers = 1\nmemory_limit = "3GB"\n'
    )
    cfg = load_config(config)
    first = run_job(cfg, client=client, console=QUIET)
    assert (first.n_ok, first.n_failed) == (2, 0)
    _change_weights(model)
    new = work_context(cfg, run_id="x").model_key
    assert new != first.model_key

    args = ["reprocess", "--store", str(store), "--config", str(config), "--if-changed"]
    options = [f"--chdir={tmp_path}", "--time=15", "--mem=4G"]  # SLURM's default: 1 GB/CPU
    result = runner.invoke(app, [*args, "--submit", *(f"--sbatch-option={o}" for o in options)])
    assert result.exit_code == 0, result.output
    assert f"model_key {first.model_key} -> {new}" in result.stderr
    job_id = result.stdout.strip().removeprefix("submitted batch job ")
    assert job_id.isdigit(), result.stdout
    log = store / "runs" / f"reprocess-{job_id}.log"
    deadline = time.monotonic() + SLURM_TIMEOUT_S
    try:
        while (state := _job_state(env, job_id)) not in DONE_STATES:
            assert time.monotonic() < deadline, (
                f"job {job_id} not done within {SLURM_TIMEOUT_S:g} s ({state or 'gone'}); log:\n"
                + (log.read_text()[-3000:] if log.is_file() else "(none)")
            )
            if not state and log.is_file() and "model_key" in log.read_text():
                break  # squeue forgot it (MinJobAge): the log says it ended
            time.sleep(1.0)
    finally:
        subprocess.run(["scancel", job_id], env=env, capture_output=True, timeout=20, check=False)
    text = log.read_text()
    assert state in ("COMPLETED", ""), f"job {job_id}: {state}\n{text[-3000:]}"
    assert "2 processed, 0 failed" in text and f"model_key {new}" in text, text[-3000:]
    rows = _runs_rows(store)
    assert [r["model_key"] for r in rows] == [first.model_key, new]
    assert rows[-1]["n_ok"] == 2

    again = runner.invoke(app, [*args, "--submit"])
    assert again.exit_code == 0, again.output
    assert f"unchanged (model_key {new}," in again.stdout
