"""Dask backends of the measuring job: `local` (the embedded ``LocalCluster``, default)."""

from mrcohort.jobs.clusters.local import LocalClusterSettings, start_local_cluster

__all__ = ["LocalClusterSettings", "start_local_cluster"]
