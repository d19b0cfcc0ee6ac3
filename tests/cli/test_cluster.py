"""``mrcohort cluster`` (mrcohort.cli.cluster): the worker-job pools of the slurm and pbs
backends and their job scripts, as text (no scheduler needed), from the shipped defaults, a
job configuration and the user's ``jobqueue.yaml``; and the README's cluster example."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mrcohort.cli import app
from mrcohort.config import load_config
from mrcohort.jobs.clusters.jobqueue import job_scripts

runner = CliRunner()
README = Path(__file__).resolve().parents[2] / "README.md"


def _scripts(*args: str) -> dict[str, str]:
    """``--print-job-script``'s output split by its ``# pool: NAME`` header lines."""
    result = runner.invoke(app, ["cluster", *args, "--print-job-script"])
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.stdout and "[/" not in result.stdout  # plain text
    parts = re.split(r"^# pool: (\w+)\n", result.stdout, flags=re.MULTILINE)
    assert parts[0] == "", parts[0]
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def jobqueue_yaml(tmp_path, monkeypatch):
    """A user ``jobqueue.yaml`` (``DASK_CONFIG``) with queue, account and a prologue for
    ``jobqueue.slurm``; dask's configuration is read again before and after."""
    import dask
    import dask_jobqueue  # noqa: F401  (its defaults stay registered across refreshes)

    folder = tmp_path / "dask"
    folder.mkdir()
    (folder / "jobqueue.yaml").write_text(
        "jobqueue:\n"
        "  slurm:\n"
        "    queue: yaml-partition\n"
        "    account: yaml-account\n"
        "    job-script-prologue:\n"
        "      - module load yaml-cuda\n"
    )
    monkeypatch.setenv("DASK_CONFIG", str(folder))
    # dask reads $DASK_CONFIG's folder only at import: add it to the paths it refreshes from
    dask.config.refresh(paths=[*dask.config.paths, str(folder)])
    yield folder
    monkeypatch.delenv("DASK_CONFIG")
    dask.config.refresh()


def test_slurm_defaults_print_both_pools(tmp_path):
    scripts = _scripts("--backend", "slurm")
    assert list(scripts) == ["gpu", "cpu"]
    gpu, cpu = scripts["gpu"], scripts["cpu"]
    assert "#SBATCH --gres=gpu:1" in gpu and "#SBATCH --gres" not in cpu
    assert "--resources GPU=1,CPU=7" in gpu
    assert re.search(r"--resources CPU=\d+", cpu)
    for script in (gpu, cpu):
        assert script.startswith("#!/usr/bin/env bash")
        assert "#SBATCH -t 24:00:00" in script
        assert re.search(r"--lifetime \d+s --lifetime-stagger \d+s", script)
        assert f"{sys.executable} -m distributed.cli.dask_worker" in script
        assert "tcp://SCHEDULER-ADDRESS:8786" in script


def test_pbs_defaults():
    scripts = _scripts("--backend", "pbs")
    assert "#PBS -l select=1:ncpus=8:ngpus=1" in scripts["gpu"]
    assert "ngpus" not in scripts["cpu"]
    assert "#PBS -l walltime=24:00:00" in scripts["cpu"]


def test_summary_of_the_pools():
    result = runner.invoke(app, ["cluster", "--backend", "slurm"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "slurm worker-job pools (shipped defaults):"
    (gpu,) = [ln for ln in lines if ln.startswith("  gpu:")]
    (cpu,) = [ln for ln in lines if ln.startswith("  cpu:")]
    assert "queue (default)" in gpu and "cores 8" in gpu and "memory 64GB" in gpu
    assert "walltime 24:00:00" in gpu and "processes 1" in gpu and "jobs 0..1" in gpu
    assert "resources GPU=1,CPU=7" in gpu
    assert "processes 8" in cpu and "resources CPU=1" in cpu and "memory 32GB" in cpu


def test_a_config_file_is_honoured(tmp_path):
    config = tmp_path / "job.toml"
    config.write_text(
        '[cluster]\nbackend = "slurm"\n'
        "[cluster.slurm.gpu]\n"
        'queue = "gpu"\naccount = "proj123"\nwalltime = "12:00:00"\nmaximum_jobs = 3\n'
        'job_extra_directives = ["--constraint=a100"]\n'
        "[cluster.slurm.cpu]\nmaximum_jobs = 0\n"
    )
    scripts = _scripts("--config", str(config))  # the backend from the file
    assert list(scripts) == ["gpu"]
    gpu = scripts["gpu"]
    for line in ("#SBATCH -p gpu", "#SBATCH -A proj123", "#SBATCH -t 12:00:00"):
        assert f"{line}\n" in gpu
    assert "#SBATCH --constraint=a100" in gpu and "#SBATCH --gres=gpu:1" in gpu

    summary = runner.invoke(app, ["cluster", "--config", str(config)])
    assert summary.exit_code == 0, summary.output
    assert "jobs 0..3" in summary.stdout and "account proj123" in summary.stdout
    assert "  cpu: none (cluster.slurm.cpu.maximum_jobs = 0)" in summary.stdout


def test_jobqueue_yaml_fills_what_the_config_leaves_unset(jobqueue_yaml, tmp_path):
    scripts = _scripts("--backend", "slurm")
    for script in scripts.values():
        assert "#SBATCH -p yaml-partition\n" in script
        assert "#SBATCH -A yaml-account\n" in script
        assert "module load yaml-cuda\n" in script

    config = tmp_path / "job.toml"
    config.write_text(
        '[cluster.slurm.gpu]\nqueue = "gpu"\naccount = "proj123"\n'
        'job_script_prologue = ["source /opt/venv/bin/activate"]\n'
    )
    scripts = _scripts("--backend", "slurm", "--config", str(config))
    gpu, cpu = scripts["gpu"], scripts["cpu"]
    assert "#SBATCH -p gpu\n" in gpu and "yaml-partition" not in gpu
    assert "#SBATCH -A proj123\n" in gpu and "yaml-account" not in gpu
    assert gpu.index("module load yaml-cuda") < gpu.index("source /opt/venv/bin/activate")
    assert "#SBATCH -p yaml-partition\n" in cpu  # the cpu pool leaves them to the YAML


def test_bad_backend_is_one_line(tmp_path):
    for backend in ("local", "nope"):
        line = _one_error_line(runner.invoke(app, ["cluster", "--backend", backend]))
        assert f"backend {backend!r}" in line and "--backend slurm" in line
    # the shipped default backend is "local": no worker jobs to show
    _one_error_line(runner.invoke(app, ["cluster", "--print-job-script"]))


def test_bad_walltime_is_one_line(tmp_path):
    config = tmp_path / "job.toml"
    config.write_text('[cluster.slurm.gpu]\nwalltime = "30:00"\n')
    result = runner.invoke(app, ["cluster", "--backend", "slurm", "--config", str(config)])
    line = _one_error_line(result)
    assert "BAD_CONFIG" in line and "cluster.slurm.gpu.walltime" in line and "30:00" in line
    assert result.stdout == ""


def test_a_gpu_pool_of_several_processes_is_one_line(tmp_path):
    config = tmp_path / "job.toml"
    config.write_text("[cluster.pbs.gpu]\nprocesses = 2\n")
    result = runner.invoke(
        app, ["cluster", "--backend", "pbs", "--config", str(config), "--print-job-script"]
    )
    assert "cluster.pbs.gpu" in _one_error_line(result)


def test_help_shows_flags_as_flags():
    result = runner.invoke(app, ["cluster", "--help"])
    assert result.exit_code == 0, result.output
    (line,) = [ln for ln in result.stdout.splitlines() if ln.strip().startswith("--print-job")]
    assert not line.strip().removeprefix("--print-job-script").lstrip().startswith("<")
    assert "--no-print-job-script" not in result.stdout and "BOOLEAN" not in result.stdout
    assert "--backend slurm|pbs" in result.stdout


def _readme_cluster_toml() -> str:
    """The ```toml block of README.md's "Running on a cluster" section."""
    text = README.read_text()
    section = text.split("## Running on a cluster\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```toml\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "one toml block expected in the section"
    return blocks[0]


def test_readme_cluster_example_loads_and_gives_job_scripts(tmp_path):
    text = _readme_cluster_toml()
    assert 'log_directory = "/data/mrcohort_logs"' in text
    # dask-jobqueue creates the log folder when it writes a job script: keep it in tmp_path
    config = tmp_path / "readme-job.toml"
    config.write_text(text.replace("/data/mrcohort_logs", str(tmp_path / "logs")))
    cfg = load_config(config)
    assert cfg.cluster.backend == "slurm"
    scripts = job_scripts("slurm", cfg)
    for name, script in scripts.items():  # shown with pytest -s, or on failure
        print(f"\n# pool: {name}\n{script}")
    gpu, cpu = scripts["gpu"], scripts["cpu"]
    assert "#SBATCH -p gpu\n" in gpu and "#SBATCH -p cpu\n" in cpu
    assert "#SBATCH --gres=gpu:1" in gpu and "#SBATCH -A proj123" in cpu
    assert "module load cuda/12.4\nsource /opt/mrcohort/.venv/bin/activate" in gpu
    assert "--resources GPU=1,CPU=7" in gpu and "--resources CPU=1" in cpu
    assert "--nworkers 16" in cpu and "--interface ib0" in gpu
    assert f"#SBATCH -o {tmp_path}/logs/mrcohort-gpu-%J.out" in gpu
    assert cfg.cluster.tls.require_encryption

    result = runner.invoke(app, ["cluster", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "jobs 0..4" in result.stdout and "jobs 0..8" in result.stdout


def test_run_takes_the_backend_from_the_command_line(tmp_path: Path, monkeypatch) -> None:
    """``--backend`` / ``--scheduler`` override the file; contradictions are one line."""
    import mrcohort.cli.run as cli_run

    seen = {}
    monkeypatch.setattr(cli_run, "_run", lambda cfg, wait: seen.setdefault("cfg", cfg) and None)
    monkeypatch.setattr(cli_run, "_report", lambda summary: None)
    (tmp_path / "job.toml").write_text('[cluster]\nbackend = "slurm"\n')
    args = ["run", "--config", str(tmp_path / "job.toml"), "--source", str(tmp_path)]
    args += ["--store", str(tmp_path / "s")]
    assert runner.invoke(app, args).exit_code == 0
    assert seen.pop("cfg").cluster.backend == "slurm"
    assert runner.invoke(app, [*args, "--backend", "pbs"]).exit_code == 0
    assert seen.pop("cfg").cluster.backend == "pbs"
    assert runner.invoke(app, [*args, "--scheduler", "tls://10.0.0.5:8786"]).exit_code == 0
    cfg = seen.pop("cfg")
    assert (cfg.cluster.backend, cfg.cluster.scheduler.address) == (
        "scheduler",
        "tls://10.0.0.5:8786",
    )
    line = _one_error_line(runner.invoke(app, [*args, "--backend", "slurm", "--scheduler", "x"]))
    assert "--scheduler needs --backend scheduler" in line
    result = runner.invoke(app, [*args, "--backend", "scheduler"])  # main() prints it in 1 line
    assert result.exit_code != 0 and "scheduler.address" in str(result.exception)
