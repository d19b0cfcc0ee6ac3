"""What every cluster backend gives the job: a client, where each kind of task may run
(`Placement`), the device segmentation runs on, and a hook that grows or shrinks worker
pools with the work that waits (`ClusterHandle`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mrcohort.config_cluster import TLSConfig
from mrcohort.errors import MrcohortError

__all__ = [
    "ClusterHandle",
    "Demand",
    "Placement",
    "cluster_error",
    "run_security",
    "security_of",
]

#: Worker resource of a GPU worker (one GPU each) and of CPU stage slots.
GPU = "GPU"
CPU = "CPU"


@dataclass(frozen=True)
class Placement:
    """Worker resources each kind of task asks for (``None``: any worker).

    With GPU workers, segmentation asks ``{"GPU": 1}`` and the CPU stages (read + stitch,
    measure) ask ``{"CPU": 1}``, which GPU workers offer only on cores their GPU task does
    not need: a GPU worker always has a free thread for the next segmentation."""

    cpu: Mapping[str, float] | None = None
    gpu: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Demand:
    """Work waiting for each pool (participant-visits), given to `ClusterHandle.scale`."""

    gpu: int
    cpu: int


@dataclass
class ClusterHandle:
    """A running cluster as the job sees it.

    Attributes
    ----------
    client
        ``distributed.Client`` connected to it.
    placement
        Resources each kind of task asks for.
    device
        ``"cuda"`` or ``"cpu"``: what segmentation workers run the model on.
    backend
        The backend's name.
    dashboard_link
        The Dask dashboard's address, or None (no HTTP endpoint).
    scale
        Called on every tick of the job with the work that waits: adaptive backends submit
        or release worker jobs; replaces jobs that ended (walltime, node failure).
    planned_slots
        ``(gpu, cpu)`` task slots the backend is bringing up (jobs still queued count), so
        the job keeps enough work in flight before the workers arrive.
    """

    client: object
    placement: Placement
    device: str
    backend: str
    dashboard_link: str | None = None
    scale: Callable[[Demand], None] = field(default=lambda _demand: None)
    planned_slots: Callable[[], tuple[int, int]] = field(default=lambda: (0, 0))

    def live_slots(self) -> tuple[int, int]:
        """``(gpu, cpu)`` task slots of the workers connected now."""
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})  # type: ignore[attr-defined]
        gpu = cpu = 0
        for info in workers.values():
            resources = info.get("resources") or {}
            gpu += int(resources.get(GPU, 0))
            if self.placement.cpu is None:
                cpu += 0 if resources.get(GPU) else int(info.get("nthreads", 1))
            else:
                cpu += int(resources.get(CPU, 0))
        return gpu, cpu


def security_of(tls: TLSConfig):  # -> distributed.Security | None
    """distributed's ``Security`` from ``[cluster.tls]`` (one certificate for every role),
    or None when TLS is not configured."""
    if not tls.enabled:
        return None
    from distributed.security import Security

    return Security(
        tls_ca_file=tls.ca_file,
        tls_client_cert=tls.cert,
        tls_client_key=tls.key,
        tls_scheduler_cert=tls.cert,
        tls_scheduler_key=tls.key,
        tls_worker_cert=tls.cert,
        tls_worker_key=tls.key,
        require_encryption=tls.require_encryption,
    )


def run_security(tls: TLSConfig):  # -> distributed.Security
    """The embedded cluster's ``Security``: ``[cluster.tls]`` when configured, else
    credentials made for this run alone (a self-signed certificate and key, in memory only,
    handed to the worker processes through their pipes): TLS with client certificates
    required, so nobody without them (another user of the machine) can reach the scheduler or
    a worker."""
    configured = security_of(tls)
    if configured is not None:
        return configured
    from distributed.security import Security

    return Security.temporary()


def cluster_error(backend: str, exc: BaseException) -> MrcohortError:
    """``CLUSTER_START``: the cluster could not be started or reached (one line)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return MrcohortError("CLUSTER_START", f"{backend} cluster: {text}", stage="cluster")
