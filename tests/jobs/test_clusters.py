"""Cluster backends: GPU pinning of the local cluster, where each stage runs, the GPU kept
busy by participants prepared ahead, pool sizing and the pure helpers."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from rich.console import Console

from mrcohort.cohort import discover
from mrcohort.config import load_config
from mrcohort.config_cluster import parse_walltime
from mrcohort.errors import MrcohortError
from mrcohort.jobs.clusters.base import Demand
from mrcohort.jobs.clusters.jobqueue import _lifetime_args, pools_of
from mrcohort.jobs.clusters.local import LocalClusterSettings, local_gpus, start_local_cluster
from mrcohort.jobs.clusters.pools import pool_targets, submission_error
from mrcohort.jobs.clusters.scheduler import placement_of
from mrcohort.jobs.dispatch import StageFunctions, dispatch, in_flight_limit
from mrcohort.jobs.ledger import WorkItem
from tests.jobs import stage_probes
from tests.jobs.fakes import item_for, work_context


def test_local_gpus_follow_the_device_and_the_visible_gpus() -> None:
    assert local_gpus("auto", [], visible=["0", "1"]) == ["0", "1"]
    assert local_gpus("cuda", [1], visible=["4", "5"]) == ["5"]
    assert local_gpus("cuda:1", [], visible=["4", "5"]) == ["5"]
    assert local_gpus("cpu", [], visible=["0"]) == []
    assert local_gpus("auto", [], visible=[]) == []
    for device, chosen in (("cuda", []), ("cuda:2", []), ("auto", [3])):
        with pytest.raises(MrcohortError) as info:
            local_gpus(device, chosen, visible=["0", "1"] if chosen or ":" in device else [])
        assert info.value.code == "NO_GPU"


def test_walltime_lifetime_and_targets() -> None:
    assert parse_walltime("1-02:03:04") == 93784
    args = _lifetime_args("24:00:00", 10)
    assert args == ["--lifetime", f"{86400 - 600 - 300}s", "--lifetime-stagger", "300s"]
    assert _lifetime_args("00:10:00", 10)[1] == "300s"  # at least half the walltime
    pools = pools_of("slurm", load_config())
    assert [p.name for p in pools] == ["gpu", "cpu"] and pools[0].gpu and not pools[1].gpu
    assert pool_targets(pools, Demand(gpu=5, cpu=9)) == {"gpu": 1, "cpu": 1}
    assert pool_targets(pools, Demand(gpu=0, cpu=3)) == {"gpu": 0, "cpu": 1}
    assert pool_targets(pools, Demand(gpu=0, cpu=0)) == {"gpu": 0, "cpu": 0}
    only_gpu = pools_of("slurm", load_config(overrides={"cluster.slurm.cpu.maximum_jobs": 0}))
    # without a CPU pool the GPU jobs read and measure too: they stay while CPU work waits
    assert pool_targets(only_gpu, Demand(gpu=0, cpu=2)) == {"gpu": 1}


def test_a_gpu_job_runs_one_worker() -> None:
    cfg = load_config(overrides={"cluster.slurm.gpu.processes": 2})
    with pytest.raises(MrcohortError, match="one worker on one GPU"):
        pools_of("slurm", cfg)


def test_resource_spec_is_for_pbs_only() -> None:
    cfg = load_config(overrides={"cluster.slurm.cpu.resource_spec": "select=1:ncpus=4"})
    with pytest.raises(MrcohortError, match="PBS setting"):
        pools_of("slurm", cfg)
    pbs = load_config(overrides={"cluster.pbs.cpu.resource_spec": "select=1:ncpus=4"})
    assert pools_of("pbs", pbs)[1].kwargs["resource_spec"] == "select=1:ncpus=4"


def test_in_flight_limit_keeps_every_gpu_fed() -> None:
    cfg = load_config()
    assert in_flight_limit(cfg, gpu_slots=2, cpu_slots=4) == 2 * (1 + 3) + 8
    assert in_flight_limit(cfg, 0, 0) == 2
    assert in_flight_limit(load_config(overrides={"cluster.max_in_flight": 7}), 2, 4) == 7


def test_placement_from_worker_resources_and_submission_errors() -> None:
    workers = {"a": {"resources": {"GPU": 1}}, "b": {"resources": {"CPU": 4}}}
    assert placement_of(workers).gpu == {"GPU": 1} and placement_of(workers).cpu == {"CPU": 1}
    plain = placement_of({"a": {"resources": {}}})
    assert plain.gpu is None and plain.cpu is None
    exc = RuntimeError("Command exited with non-zero exit code.\nstderr:\nsbatch: error: bad\n")
    assert submission_error(exc) == "sbatch: error: bad"


@pytest.mark.slow
def test_local_gpu_workers_are_pinned_one_gpu_each() -> None:
    from distributed import Client

    settings = LocalClusterSettings(n_workers=1, gpus=("0", "3"), memory_limit="1GB")
    with start_local_cluster(settings) as cluster, Client(cluster) as client:
        client.wait_for_workers(3)
        seen = client.run(lambda: __import__("os").environ.get("CUDA_VISIBLE_DEVICES"))
        info = client.scheduler_info()["workers"]
        by_name = {info[a]["name"]: (seen[a], info[a]["resources"]) for a in seen}
    assert by_name == {
        "gpu-0": ("0", {"GPU": 1}),
        "gpu-3": ("3", {"GPU": 1}),
        "cpu-0": ("", {"CPU": 1}),
    }
    assert cluster.scheduler.address.startswith("tcp://127.0.0.1:")


def _items(n: int, folder: Path) -> list[WorkItem]:
    """Work items of ``n`` participant-visits (empty zips: the stand-ins never read them)."""
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"{1000001 + i}_20201_2_0.zip").touch()
    return [
        item_for(pv) for pv in sorted(discover("ukbb", folder).pvs, key=lambda p: p.participant_id)
    ]


def _dispatch(items, ctx, cfg, fns):
    return dispatch(
        items, ctx, cfg, client=None, console=Console(quiet=True), functions=fns, tick_s=0.5
    )


@pytest.mark.slow
def test_stages_run_where_they_belong_and_the_gpu_never_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local cluster with one (pretend) GPU worker and two CPU workers: every prepare and
    measure on a CPU worker, the measure on the worker that prepared it, every segment on the
    GPU worker; after the first one, the GPU worker starts each segmentation within 0.1 s of
    the last (prepare 0.3 s on 2 workers outpaces segment 0.4 s)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    ctx = work_context(tmp_path)
    ctx.store.mkdir()
    cfg = load_config(overrides={"cluster.workers": 2, "cluster.memory_limit": "1GB"})
    fns = StageFunctions(stage_probes.prepare, stage_probes.segment, stage_probes.measure)
    items = _items(8, tmp_path / "in")
    landed = [x for x in _dispatch(items, ctx, cfg, fns) if x is not None]
    assert sorted(item.slot for item, _ in landed) == [i.slot for i in items]
    lines = [json.loads(x) for x in (ctx.store / "probe.log").read_text().splitlines()]
    by = {(x["stage"], x["slot"]): x for x in lines}
    for item in items:
        prep, seg, meas = (by[(s, item.slot)] for s in ("prepare", "segment", "measure"))
        assert prep["worker"].startswith("cpu-") and prep["cuda"] == ""
        assert seg["worker"] == "gpu-0" and seg["cuda"] == "0"
        assert meas["address"] == prep["address"]
    segs = sorted((x for x in lines if x["stage"] == "segment"), key=lambda x: x["start"])
    gaps = [b["start"] - a["end"] for a, b in itertools.pairwise(segs)]
    assert max(gaps) < 0.1, gaps


@pytest.mark.slow
def test_a_participant_that_kills_its_workers_becomes_one_failure(tmp_path: Path) -> None:
    """Its task kills every worker it lands on (the nanny restarts them): after
    ``allowed_failures`` deaths it is one ``WORKER_LOST`` result; the others finish.

    (distributed also blames a task that merely waited on a dying worker; one visit in
    flight per worker and two deaths needed keep an innocent visit out of it here.)"""
    ctx = work_context(tmp_path)
    ctx.store.mkdir()
    cfg = load_config(
        overrides={
            "cluster.workers": 2,
            "cluster.memory_limit": "1GB",
            "cluster.allowed_failures": 2,
            "cluster.max_in_flight": 2,
        }
    )
    fns = StageFunctions(stage_probes.prepare_or_die, stage_probes.segment, stage_probes.measure)
    landed = dict(x for x in _dispatch(_items(4, tmp_path / "in"), ctx, cfg, fns) if x)
    by_slot = {item.slot: result for item, result in landed.items()}
    assert len(by_slot) == 4
    lost = by_slot.pop(stage_probes.KILLERS[0])
    assert lost.failure is not None and lost.failure["code"] == "WORKER_LOST"
    assert lost.ledger["retryable"] is True and lost.ledger["stage"] == "worker"
    assert all(r.failure is None for r in by_slot.values())


@pytest.mark.slow
def test_a_worker_loads_the_model_once_for_all_its_participants(tmp_path: Path) -> None:
    """The real demo model in a worker process, three participant-visits: one load."""
    from distributed import Client

    from mrcohort.jobs.run import run_job
    from mrcohort.segmentation import predictor
    from tests.builders import ukbb_zip

    for pid in ("1000001", "1000002", "1000003"):
        ukbb_zip(tmp_path / "in", pid)
    cfg = load_config(
        None,
        {"input.source": tmp_path / "in", "store.path": tmp_path / "s", "model.device": "cpu",
         "progress.interval_seconds": 3600.0},
    )  # fmt: skip
    settings = LocalClusterSettings(n_workers=1, memory_limit="2GB")
    with start_local_cluster(settings) as cluster, Client(cluster) as client:
        summary = run_job(cfg, client=client, console=Console(quiet=True))
        loads = client.run(lambda: sum(predictor.LOADS.values()))
    assert summary.n_ok == 3
    assert list(loads.values()) == [1]
