"""Dask backends of the cohort job, one small module each, behind one interface
(`open_cluster` → `ClusterHandle`): ``local`` (embedded cluster, default), ``slurm`` and
``pbs`` (worker-job pools through dask-jobqueue), ``scheduler`` (an existing scheduler)."""

from mrcohort.jobs.clusters.base import ClusterHandle, Demand, Placement
from mrcohort.jobs.clusters.open import open_cluster, segment_device

__all__ = ["ClusterHandle", "Demand", "Placement", "open_cluster", "segment_device"]
