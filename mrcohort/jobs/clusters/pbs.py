"""Backend ``pbs``: worker jobs through dask-jobqueue's ``PBSJob`` (`jobqueue` pools)."""

from __future__ import annotations

from typing import Any

__all__ = ["job_class", "request_gpus"]


def job_class() -> type:
    from dask_jobqueue.pbs import PBSJob

    return PBSJob


def request_gpus(kwargs: dict[str, Any], gpus: int, cores: object, memory: object) -> None:
    """Ask PBS Pro for ``gpus`` GPUs per job in the chunk (``-l select=1:ncpus=C:ngpus=N:
    mem=M``) unless a ``resource_spec`` is given (by the job config or jobqueue.yaml)."""
    if kwargs.get("resource_spec"):
        return
    spec = f"select=1:ncpus={cores}:ngpus={gpus}"
    if memory:
        spec += f":mem={str(memory).replace(' ', '')}"
    kwargs["resource_spec"] = spec
