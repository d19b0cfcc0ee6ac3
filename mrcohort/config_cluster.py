"""``[cluster]`` of the job configuration: where the participant-visits run.

Backends: ``local`` (an embedded cluster on this machine), ``slurm`` and ``pbs`` (worker jobs
through dask-jobqueue, a GPU pool and a CPU pool), ``scheduler`` (an existing Dask scheduler
by address). The pool keys carry dask-jobqueue's own names; a key left unset ("" / 0 / [])
is taken from the user's dask-jobqueue configuration (``~/.config/dask/jobqueue.yaml``,
section ``jobqueue.<config_name>``) and only then from mrcohort's fallbacks.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mrcohort.config_base import MEMORY, Section, bad

__all__ = [
    "ClusterConfig",
    "JobQueueConfig",
    "LocalConfig",
    "PoolConfig",
    "SchedulerConfig",
    "TLSConfig",
    "parse_walltime",
]

_WALLTIME = re.compile(r"(?:(\d+)-)?(\d+):(\d\d):(\d\d)")


def parse_walltime(text: str) -> float:
    """Seconds of a walltime ``HH:MM:SS`` or ``D-HH:MM:SS`` (the forms SLURM and PBS read
    alike; SLURM's two-part ``MM:SS`` is refused as ambiguous)."""
    match = _WALLTIME.fullmatch(text.strip())
    if not match:
        raise ValueError(f'{text!r} is not a walltime such as "24:00:00" or "1-00:00:00"')
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


class PoolConfig(Section):
    """One pool of worker jobs (dask-jobqueue keyword names; unset = jobqueue.yaml)."""

    config_name: str = ""
    queue: str = ""
    account: str = ""
    walltime: str = ""
    cores: int = Field(0, ge=0)
    memory: str = ""
    processes: int = Field(0, ge=0)
    gpus_per_job: int = Field(0, ge=0)
    resource_spec: str = ""
    job_extra_directives: tuple[str, ...] = ()
    worker_extra_args: tuple[str, ...] = ()
    job_script_prologue: tuple[str, ...] = ()
    local_directory: str = ""
    log_directory: str = ""
    python: str = ""
    minimum_jobs: int = Field(0, ge=0)
    maximum_jobs: int = Field(1, ge=0)

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, value: str) -> str:
        if value:
            try:
                parse_walltime(value)
            except ValueError as exc:
                raise bad(str(exc)) from None
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if value and (value == "auto" or not MEMORY.fullmatch(value)):
            raise bad(f'{value!r} is not a size such as "64GB"')
        return value

    @model_validator(mode="after")
    def _jobs(self) -> PoolConfig:
        if self.minimum_jobs > self.maximum_jobs:
            raise bad("minimum_jobs must be <= maximum_jobs", "minimum_jobs")
        return self


class JobQueueConfig(Section):
    """``[cluster.slurm]`` / ``[cluster.pbs]``: the GPU pool and the CPU pool."""

    gpu: PoolConfig = PoolConfig()
    cpu: PoolConfig = PoolConfig()


def _slurm_default() -> JobQueueConfig:
    return JobQueueConfig(gpu=PoolConfig(gpus_per_job=1), cpu=PoolConfig())


class LocalConfig(Section):
    """``[cluster.local]``: GPU workers of the embedded cluster."""

    gpus: tuple[int, ...] = ()
    """GPU numbers to use, one worker each ([] = every visible GPU, per ``model.device``)."""


class SchedulerConfig(Section):
    """``[cluster.scheduler]``: an existing Dask scheduler."""

    address: str = ""
    wait_for_workers_seconds: float = Field(600.0, gt=0)


class TLSConfig(Section):
    """``[cluster.tls]``: distributed's ``Security`` (TLS) for multi-node runs."""

    ca_file: str = ""
    cert: str = ""
    key: str = ""
    require_encryption: bool = False

    @model_validator(mode="after")
    def _complete(self) -> TLSConfig:
        given = [bool(self.ca_file), bool(self.cert), bool(self.key)]
        if any(given) and not all(given):
            raise bad("ca_file, cert and key are given together", "ca_file")
        if self.require_encryption and not all(given):
            raise bad("require_encryption needs ca_file, cert and key", "require_encryption")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.ca_file)


class ClusterConfig(Section):
    """``[cluster]``: the Dask cluster the participant-visits run on."""

    backend: Literal["local", "slurm", "pbs", "scheduler"] = "local"
    workers: int = Field(0, ge=0)
    torch_threads: int = Field(0, ge=0)
    memory_limit: str = "auto"
    dashboard: bool = False
    host: str = "127.0.0.1"
    interface: str = ""
    max_in_flight: int = Field(0, ge=0)
    prepared_ahead: int = Field(3, ge=1)
    allowed_failures: int = Field(3, ge=1)
    lifetime_margin_minutes: float = Field(10.0, ge=0)
    local: LocalConfig = LocalConfig()
    slurm: JobQueueConfig = Field(default_factory=_slurm_default)
    pbs: JobQueueConfig = Field(default_factory=_slurm_default)
    scheduler: SchedulerConfig = SchedulerConfig()
    tls: TLSConfig = TLSConfig()

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not MEMORY.fullmatch(value):
            raise bad(f'{value!r} is not "auto" or a size such as "16GB"')
        return value

    @model_validator(mode="after")
    def _address(self) -> ClusterConfig:
        if self.backend == "scheduler" and not self.scheduler.address:
            raise bad('backend "scheduler" needs scheduler.address', "scheduler")
        return self
