"""Backend ``slurm``: worker jobs through dask-jobqueue's ``SLURMJob`` (`jobqueue` pools)."""

from __future__ import annotations

from typing import Any

__all__ = ["job_class", "request_gpus"]


def job_class() -> type:
    from dask_jobqueue.slurm import SLURMJob

    return SLURMJob


def request_gpus(kwargs: dict[str, Any], gpus: int, cores: object, memory: object) -> None:
    """Ask SLURM for ``gpus`` GPUs per job (``--gres=gpu:N``) unless the directives already
    ask for GPUs (``--gres``, ``--gpus``, ``-G``)."""
    directives = kwargs.setdefault("job_extra_directives", [])
    if not any(d.startswith(("--gres", "--gpus", "-G")) for d in directives):
        directives.append(f"--gres=gpu:{gpus}")
