"""Dask's scheduler and worker without the HTTP server each otherwise always starts.

distributed starts an HTTP server on every scheduler (port 8787: Prometheus metrics, health,
JSON about the cluster) and on every worker (a free port; ``dask worker`` binds it to
0.0.0.0), whether the dashboard is wanted or not, and with no authentication. mrcohort's
clusters use these classes: nothing listens but the comm ports (TLS with ``[cluster.tls]`` or,
on the embedded cluster, per-run credentials: `mrcohort.jobs.clusters.base.run_security`),
unless the dashboard is asked for, and then only on the scheduler, at its dashboard address.
"""

from __future__ import annotations

from distributed import Scheduler, Worker

__all__ = ["QuietScheduler", "QuietWorker"]


class QuietScheduler(Scheduler):
    """A ``distributed.Scheduler`` that serves HTTP only at an explicit dashboard address."""

    def start_http_server(
        self,
        routes: list,
        dashboard_address: str | None,
        default_port: int = 0,
        ssl_options: object | None = None,
    ) -> None:
        if dashboard_address is None:
            return  # distributed would bind 8787 (or a free port) anyway
        super().start_http_server(routes, dashboard_address, default_port, ssl_options)


class QuietWorker(Worker):
    """A ``distributed.Worker`` that serves HTTP only when its own dashboard is on
    (``dashboard=True``; ``dask worker --no-dashboard`` and the embedded cluster: off)."""

    def start_http_server(
        self,
        routes: list,
        dashboard_address: str | None,
        default_port: int = 0,
        ssl_options: object | None = None,
    ) -> None:
        if not self._dashboard:
            return  # distributed would bind a free port (dask worker: on 0.0.0.0) anyway
        super().start_http_server(routes, dashboard_address, default_port, ssl_options)
