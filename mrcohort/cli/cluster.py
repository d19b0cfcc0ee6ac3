"""``mrcohort cluster``: the worker jobs the ``slurm`` and ``pbs`` backends would submit, as
a short summary of the pools or as their job scripts (``--print-job-script``), from the job
configuration and the user's dask-jobqueue ``jobqueue.yaml``. Submits nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mrcohort.cli.common import fail
from mrcohort.errors import MrcohortError

if TYPE_CHECKING:
    from mrcohort.config import JobConfig
    from mrcohort.jobs.clusters.jobqueue import Pool

__all__ = ["cluster"]

BACKENDS = ("slurm", "pbs")
#: The summary's keys, as dask-jobqueue names them.
_SUMMARY = ("queue", "account", "cores", "memory", "walltime", "processes")


def cluster(
    backend: Annotated[
        str | None,
        typer.Option(metavar="slurm|pbs", help="Default: the configuration's cluster.backend."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Job configuration (TOML; see mrcohort/config_defaults.toml). "
            "Without it: the shipped defaults.",
        ),
    ] = None,
    print_job_script: Annotated[
        bool,
        typer.Option(
            "--print-job-script",
            help="Print each pool's job script as it would be submitted (the scheduler's "
            "address is a placeholder).",
        ),
    ] = False,
) -> None:
    """Show the worker jobs of the slurm / pbs backend: the GPU and CPU pools (queue, cores,
    memory, walltime, jobs, Dask resources), or their job scripts. Submits nothing."""
    from mrcohort.config import load_config

    chosen = backend or ""
    try:
        cfg = load_config(config, {})
        chosen = backend or cfg.cluster.backend
        if chosen not in BACKENDS:
            raise fail(
                f"backend {chosen!r} has no worker jobs to show: use --backend slurm or "
                "--backend pbs (or cluster.backend in the configuration)"
            )
        from mrcohort.jobs.clusters.jobqueue import job_scripts, pools_of

        if print_job_script:
            typer.echo(job_script_text(job_scripts(chosen, cfg)))
        else:
            typer.echo(_summary(chosen, cfg, pools_of(chosen, cfg), config))
    except MrcohortError as err:
        raise fail(f"{err.code}: {err.message}") from None
    except (ValueError, TypeError) as exc:  # dask-jobqueue refusing a jobqueue.yaml value
        raise fail(f"BAD_CONFIG: cluster.{chosen}: {exc}") from None


def _summary(backend: str, cfg: JobConfig, pools: Sequence[Pool], config: Path | None) -> str:
    lines = [f"{backend} worker-job pools ({config or 'shipped defaults'}):"]
    for pool in pools:
        values = {key: _effective(pool, key) for key in _SUMMARY}
        args = list(pool.kwargs.get("worker_extra_args", ()))
        lines.append(
            f"  {pool.name}: queue {values['queue'] or '(default)'}, "
            f"account {values['account'] or '-'}, cores {values['cores']}, "
            f"memory {values['memory']}, walltime {values['walltime']}, "
            f"processes {values['processes'] or 1}, "
            f"jobs {pool.minimum_jobs}..{pool.maximum_jobs}, "
            f"resources {_arg(args, '--resources') or '-'}, "
            f"lifetime {_arg(args, '--lifetime') or '-'} "
            f"(jobqueue.yaml section jobqueue.{pool.config_name})"
        )
    table = getattr(cfg.cluster, backend)
    left_out = [name for name in ("gpu", "cpu") if getattr(table, name).maximum_jobs == 0]
    for name in left_out:
        lines.append(f"  {name}: none (cluster.{backend}.{name}.maximum_jobs = 0)")
    lines.append("job scripts: mrcohort cluster --print-job-script")
    return "\n".join(lines)


def _effective(pool: Pool, key: str) -> Any:
    """The value the job gets: the pool's keyword argument, else dask-jobqueue's setting
    (``jobqueue.yaml``, then its shipped default), as dask-jobqueue itself decides."""
    if key in pool.kwargs:
        return pool.kwargs[key]
    import dask

    return dask.config.get(f"jobqueue.{pool.config_name}.{key.replace('_', '-')}", None)


def _arg(args: Sequence[str], flag: str) -> str:
    """The value after the last ``flag`` in a worker's arguments ('' when absent)."""
    found = [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]
    return found[-1] if found else ""


def job_script_text(scripts: Mapping[str, str]) -> str:
    """``{pool: script}`` as ``--print-job-script`` prints it."""
    return "\n\n".join(f"# pool: {name}\n{text.rstrip()}" for name, text in scripts.items())
