"""GPU throughput: mrcohort (``Segmenter``, engine torch, cuda) vs MRSegmentator, same weights.

A random-weight nnU-Net v2 model folder of MRSegmentator's size is written first (nnU-Net's
default 3d_fullres ``PlainConvUNet``: 6 stages, 32-64-128-256-320-320 features, 3x3x3
kernels, strides [1,1,1] then [2,2,2] while a patch axis stays >= 8, patch 128^3,
41 outputs = 40 labels + background, model spacing 3 x 1.5 x 1.5 mm (z, y, x); plans via
``mrcohort.devtools.train_demo.demo_plans`` with these architecture kwargs, checkpoint via
``save_model_folder``). Then ``--scans`` full-size NAKO volumes (320 x 260 x 316 at
1.40625 x 1.40625 x 3 mm; random tissue inside a body ellipse, or ``--phantom``) are written
as MHA and segmented by

- ours: read, ``Segmenter.segment`` (engine torch, device cuda: resampling, sliding
  window and argmax on the GPU; only uint8 labels leave it), write — model loaded once;
- the peer: the ``mrsegmentator`` CLI in legacy mode (``MRSEG_WEIGHTS_PATH`` = the model
  folder, ``--fold 0``; one call for all scans, its defaults: 3 preprocessing and 8 export
  processes) when ``--mrseg-cmd`` is given or the ``mrsegmentator`` package is importable;
  otherwise nnU-Net's ``predict_single_npy_array`` per scan with MRSegmentator's predictor
  settings (what MRSegmentator does with ``--split_level``), read and write included.

It prints scans/hour for each, the GPU busy fraction while each ran (``torch.cuda.
utilization()`` — NVML — sampled every 0.2 s in a thread; nvidia-smi as fallback), the time
split where known, and the fraction of identical voxels between the two label maps; the
same as JSON in ``--out``/gpu_results.json. With random weights the labels are noise-like:
agreement checks numerical equivalence of the two paths, not segmentation quality. The model
spacing differs from the volumes' so both resample (``--spacing 3,1.40625,1.40625``: none).
A wall-clock budget (``--budget-s``, default 420) stops the peer early (reported) so the
whole command stays under 8 minutes.

Run on a CUDA machine from the repository root (it exits with a message when there is no
CUDA GPU):

    python benchmarks/segmentation_gpu.py [--scans 3] [--mrseg-cmd /path/bin/mrsegmentator]
        [--peer auto|cli|npy] [--out DIR] [--budget-s 420] [--phantom]
    python benchmarks/segmentation_gpu.py --job [--participants 6]   # the whole job's GPU use

On this workplace's GPU machines (python3 3.12 with CUDA torch, no nnU-Net, no network):
first, here, ``bash benchmarks/segmentation_gpu_site.sh`` (writes the ignored
``.whl/mrcohort-gpu-site.tar.xz``: nnU-Net, SimpleITK, mrsegmentator and their missing
dependencies for cp312, ~40 MB), then ONE device command carrying ``.whl``:

    mkdir -p /tmp/site && tar -xJf .whl/mrcohort-gpu-site.tar.xz -C /tmp/site &&
    PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 benchmarks/segmentation_gpu.py --out $OUT

``--smoke``: the same script end to end on the CPU with a tiny network and tiny volumes
(a check that it works, figures meaningless); ``--mrseg-cmd /tmp/mrseg-venv/bin/mrsegmentator``
makes the smoke run use the peer CLI too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

NAKO_SHAPE_ZYX = (316, 260, 320)
NAKO_SPACING_ZYX = (3.0, 1.40625, 1.40625)


@dataclass(frozen=True)
class Arch:
    features: tuple[int, ...]
    patch: tuple[int, int, int]
    spacing_zyx: tuple[float, float, float]
    shape_zyx: tuple[int, int, int]
    vol_spacing_zyx: tuple[float, float, float]


FULL = Arch(
    (32, 64, 128, 256, 320, 320), (128, 128, 128), (3.0, 1.5, 1.5), NAKO_SHAPE_ZYX, NAKO_SPACING_ZYX
)
SMOKE = Arch((4, 8, 16), (16, 32, 32), (3.0, 1.5, 1.5), (24, 40, 48), NAKO_SPACING_ZYX)


def strides_for(patch: tuple[int, ...], n_stages: int) -> list[list[int]]:
    """nnU-Net-like strides: [1,1,1] first, then 2 on every axis still >= 8 voxels."""
    size = list(patch)
    out = [[1, 1, 1]]
    for _ in range(n_stages - 1):
        s = [2 if n >= 8 else 1 for n in size]
        size = [n // k for n, k in zip(size, s, strict=True)]
        out.append(s)
    return out


def write_model(folder: Path, arch: Arch, seed: int = 0) -> Path:
    """A random-weight nnU-Net v2 model folder (MRSegmentator's flat layout)."""
    import torch

    from mrcohort.devtools.train_demo import (
        CONFIGURATION,
        TrainSettings,
        build_network,
        demo_dataset_json,
        demo_plans,
        save_model_folder,
    )

    n = len(arch.features)
    plans = demo_plans(arch.spacing_zyx, arch.patch)
    plans["dataset_name"] = "Dataset998_RandomMRSegSize"
    cfg = plans["configurations"][CONFIGURATION]
    kw = cfg["architecture"]["arch_kwargs"]
    kw["n_stages"] = n
    kw["features_per_stage"] = list(arch.features)
    kw["kernel_sizes"] = [[3, 3, 3]] * n
    kw["strides"] = strides_for(arch.patch, n)
    kw["n_conv_per_stage"] = [2] * n
    kw["n_conv_per_stage_decoder"] = [2] * (n - 1)
    cfg["median_image_size_in_voxels"] = list(arch.shape_zyx)
    plans["original_median_spacing_after_transp"] = list(arch.vol_spacing_zyx)
    plans["original_median_shape_after_transp"] = list(arch.shape_zyx)
    dataset_json = demo_dataset_json(1)
    dataset_json["name"] = "random weights, MRSegmentator-sized (benchmark only)"
    torch.manual_seed(seed)
    net = build_network(plans, dataset_json)
    save_model_folder(
        folder, net, plans, dataset_json, TrainSettings(iterations=0), train_seconds=0
    )
    n_params = sum(p.numel() for p in net.parameters())
    print(
        f"model: PlainConvUNet {n} stages {list(arch.features)}, strides {kw['strides']}, patch "
        f"{list(arch.patch)}, spacing {list(arch.spacing_zyx)}, {n_params / 1e6:.1f} M parameters"
    )
    return folder


def random_volume(shape_zyx: tuple[int, int, int], spacing_zyx, seed: int):
    """Body-shaped random volume: tissue-like noise inside an elliptic cylinder, 0 outside."""
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    _, ny, nx = shape_zyx
    yy, xx = np.ogrid[:ny, :nx]
    body = ((yy - ny / 2) / (0.42 * ny)) ** 2 + ((xx - nx / 2) / (0.45 * nx)) ** 2 <= 1
    vol = rng.gamma(4.0, 100.0, size=shape_zyx).astype(np.float32)
    vol *= body[None]
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing(tuple(float(s) for s in reversed(spacing_zyx)))
    return img


def phantom_volume(seed: int, index: int, preset: str):
    from mrcohort.cohort.stitch import stitch
    from mrcohort.phantoms import make_participant

    return stitch(make_participant(seed, index, preset).stations["in"])


@dataclass
class GpuSampler:
    """Mean GPU utilisation (NVML via torch, else nvidia-smi) while a block runs."""

    period: float = 0.2
    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @staticmethod
    def read() -> float | None:
        import torch

        try:
            return float(torch.cuda.utilization())
        except Exception:
            pass
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout
            return float(out.split()[0])
        except Exception:
            return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            v = self.read()
            if v is not None:
                self.samples.append(v)
            self._stop.wait(self.period)

    def __enter__(self) -> GpuSampler:
        import torch

        if torch.cuda.is_available():
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def busy(self) -> float | None:
        return float(np.mean(self.samples)) / 100 if self.samples else None


def mrseg_command(arg: str | None) -> list[str] | None:
    """How to start the mrsegmentator CLI: the given executable, else the importable module."""
    if arg:
        return [arg]
    try:
        import mrsegmentator.main  # noqa: F401
    except Exception:
        return None
    return [sys.executable, "-c", "from mrsegmentator.main import main; main()"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scans", type=int, default=3)
    ap.add_argument("--peer", choices=["auto", "cli", "npy"], default="auto")
    ap.add_argument("--mrseg-cmd", default=None, help="mrsegmentator executable (own venv)")
    ap.add_argument("--spacing", default=None, help="model spacing z,y,x mm (default 3,1.5,1.5)")
    ap.add_argument("--patch", default=None, help="patch z,y,x (default 128,128,128)")
    ap.add_argument("--phantom", action="store_true", help="phantom NAKO volumes (slower)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop the peer after this")
    ap.add_argument("--out", type=Path, default=None, help="folder for gpu_results.json")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run to check the script")
    ap.add_argument(
        "--job", action="store_true", help="the whole cohort job instead (benchmarks/gpu_job.py)"
    )
    if "--job" in sys.argv[1:]:  # the whole job: its own options
        from gpu_job import main as job_main

        raise SystemExit(job_main([a for a in sys.argv[1:] if a != "--job"]))
    args = ap.parse_args()
    t_start = time.perf_counter()

    from mrcohort.segmentation.nnunet_env import ensure_nnunet_env

    ensure_nnunet_env()
    import SimpleITK as sitk
    import torch

    if args.smoke:
        arch, device = SMOKE, "cpu"
    else:
        if not torch.cuda.is_available():
            sys.exit(
                "segmentation_gpu.py: no CUDA GPU visible (torch "
                f"{torch.__version__}, cuda available: False); run it on a machine with an "
                "NVIDIA GPU and a CUDA build of torch, or use --smoke for a CPU check."
            )
        arch, device = FULL, "cuda"
    if args.spacing:
        arch = replace(arch, spacing_zyx=tuple(float(v) for v in args.spacing.split(",")))
    if args.patch:
        arch = replace(arch, patch=tuple(int(v) for v in args.patch.split(",")))

    from mrcohort.segmentation.model import InferenceSettings
    from mrcohort.segmentation.predictor import Segmenter

    dev_name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    print(
        f"# segmentation_gpu{' --smoke' if args.smoke else ''} — {time.strftime('%Y-%m-%d %H:%M')}"
        f", {dev_name}, torch {torch.__version__}, {os.cpu_count()} CPUs"
    )
    work = Path(tempfile.mkdtemp(prefix="mrcohort-gpubench-"))
    model_dir = write_model(work / "model", arch)
    inputs = work / "in"
    inputs.mkdir()
    t0 = time.perf_counter()
    paths = []
    for i in range(args.scans):
        img = (
            phantom_volume(11, i, "mini" if args.smoke else "nako")
            if args.phantom
            else random_volume(arch.shape_zyx, arch.vol_spacing_zyx, seed=i)
        )
        paths.append(inputs / f"scan{i}.mha")
        sitk.WriteImage(img, str(paths[-1]))
    shape = tuple(reversed(sitk.ReadImage(str(paths[0])).GetSize()))
    print(f"{args.scans} volumes {shape} (z,y,x) written in {time.perf_counter() - t0:.1f} s")

    results: dict[str, dict] = {}

    # ---- ours -----------------------------------------------------------------------------
    out_ours = work / "ours"
    out_ours.mkdir()
    t_load, seg = _timed(Segmenter.load, model_dir, InferenceSettings(), device=device)
    warm = sitk.ReadImage(str(paths[0]))
    seg.segment(warm[:, :, : max(8, warm.GetSize()[2] // 4)])  # warm-up: cuDNN autotune etc.
    if device == "cuda":
        torch.cuda.synchronize()
    per = []
    with GpuSampler() as gs:
        t0 = time.perf_counter()
        for p in paths:
            t1 = time.perf_counter()
            lab = seg.segment(sitk.ReadImage(str(p)))
            sitk.WriteImage(lab, str(out_ours / f"{p.stem}_seg.mha"), True)
            per.append(time.perf_counter() - t1)
        wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    results["ours"] = {
        "what": "Segmenter.segment (engine torch) + read/write, model loaded once",
        "load_s": t_load,
        "wall_s": wall,
        "per_scan_s": per,
        "scans_done": len(paths),
        "scans_per_hour": 3600 * len(paths) / wall,
        "scans_per_hour_incl_load": 3600 * len(paths) / (wall + t_load),
        "gpu_busy": gs.busy,
        "gpu_peak_alloc_gib": peak,
    }
    print(
        f"ours: {wall / len(paths):.1f} s/scan ({', '.join(f'{s:.1f}' for s in per)}), "
        f"load {t_load:.1f} s"
    )
    del seg
    if device == "cuda":
        torch.cuda.empty_cache()

    # ---- peer -----------------------------------------------------------------------------
    cmd = mrseg_command(args.mrseg_cmd) if args.peer in ("auto", "cli") else None
    if args.peer == "cli" and cmd is None:
        sys.exit("--peer cli: mrsegmentator is neither importable nor given by --mrseg-cmd")
    remaining = args.budget_s - (time.perf_counter() - t_start)
    out_peer = work / "peer"
    out_peer.mkdir()
    if cmd is not None:
        results["peer"] = run_peer_cli(cmd, model_dir, inputs, out_peer, device, remaining)
    else:
        results["peer"] = run_peer_npy(model_dir, paths, out_peer, device, remaining)

    # ---- agreement and report ---------------------------------------------------------------
    agree = []
    for p in paths:
        f_peer = out_peer / f"{p.stem}_seg.mha"
        if f_peer.is_file():
            a = sitk.GetArrayFromImage(sitk.ReadImage(str(out_ours / f"{p.stem}_seg.mha")))
            b = sitk.GetArrayFromImage(sitk.ReadImage(str(f_peer)))
            agree.append(float((a == b).mean()) if a.shape == b.shape else float("nan"))
    results["agreement_identical_voxels"] = agree
    o, q = results["ours"], results["peer"]
    print("\n| engine | scans | s/scan | scans/hour | GPU busy | load s |")
    print("|---|---|---|---|---|---|")
    for name, r in (("ours", o), ("peer: " + q["what"], q)):
        n = r["scans_done"]
        busy = "n/a" if r.get("gpu_busy") is None else f"{r['gpu_busy']:.0%}"
        sps = f"{r['wall_s'] / n:.1f}" if n else "-"
        load = "-" if r.get("load_s") is None else f"{r['load_s']:.1f}"
        print(f"| {name} | {n} | {sps} | {r['scans_per_hour']:.0f} | {busy} | {load} |")
    if q["scans_per_hour"]:
        print(
            f"\nthroughput ours/peer: {o['scans_per_hour'] / q['scans_per_hour']:.2f}x "
            f"(ours incl. its model load: "
            f"{o['scans_per_hour_incl_load'] / q['scans_per_hour']:.2f}x)"
        )
    if o["gpu_peak_alloc_gib"] is not None:
        print(f"ours: peak GPU memory allocated {o['gpu_peak_alloc_gib']:.1f} GiB")
    if agree:
        print(f"identical voxels ours vs peer: {', '.join(f'{x:.4f}' for x in agree)}")
    if q.get("note"):
        print(f"note: {q['note']}")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    results["meta"] = {
        "device": dev_name,
        "torch": torch.__version__,
        "shape_zyx": list(shape),
        "model_spacing_zyx": list(arch.spacing_zyx),
        "patch": list(arch.patch),
        "features": list(arch.features),
        "smoke": args.smoke,
    }
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_results.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)


def _timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return time.perf_counter() - t0, out


def run_peer_cli(cmd, model_dir: Path, inputs: Path, out: Path, device: str, budget: float) -> dict:
    """The mrsegmentator CLI on the whole input folder (one call), within the time budget."""
    full = [*cmd, "-i", str(inputs), "-o", str(out), "--fold", "0", "--no_tqdm"]
    if device == "cpu":
        full.append("--cpu_only")
    env = dict(os.environ, MRSEG_WEIGHTS_PATH=str(model_dir))
    n_in = len(list(inputs.iterdir()))
    log = out.parent / "mrseg.log"
    note = None
    with GpuSampler() as gs, log.open("wb") as fh:
        t0 = time.perf_counter()
        try:
            rc = subprocess.run(
                full,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=max(30.0, budget),
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            rc, note = None, f"stopped at the {max(30.0, budget):.0f} s budget"
        wall = time.perf_counter() - t0
    if rc not in (0, None):
        print(log.read_text()[-3000:])
        sys.exit(f"mrsegmentator failed (rc {rc})")
    done = len(list(out.glob("*_seg.mha")))
    print(f"peer (mrsegmentator CLI, {n_in} scans in one call): {wall:.1f} s, {done} done")
    return {
        "what": "mrsegmentator CLI --fold 0, one call (load and start-up included)",
        "load_s": None,
        "wall_s": wall,
        "scans_done": done,
        "scans_per_hour": 3600 * done / wall if done else 0.0,
        "gpu_busy": gs.busy,
        "note": note,
    }


def run_peer_npy(model_dir: Path, paths: list[Path], out: Path, device: str, budget: float) -> dict:
    """nnU-Net's predict_single_npy_array per scan, set up as MRSegmentator sets it up."""
    import SimpleITK as sitk
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    t0 = time.perf_counter()
    pred = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=True,  # no-op: the checkpoint allows no mirroring axes
        device=torch.device(device),
        verbose=False,
        verbose_preprocessing=False,
        allow_tqdm=False,
    )
    pred.initialize_from_trained_model_folder(str(model_dir), use_folds=(0,))
    t_load = time.perf_counter() - t0
    per, note = [], None
    with GpuSampler() as gs:
        t0 = time.perf_counter()
        for p in paths:
            if per and (time.perf_counter() - t0) + max(per) > budget:
                note = f"stopped after {len(per)} scans at the {budget:.0f} s budget"
                break
            t1 = time.perf_counter()
            img = sitk.DICOMOrient(sitk.ReadImage(str(p)), "LPS")
            arr = sitk.GetArrayFromImage(img).astype(np.float32)[None]
            lab = pred.predict_single_npy_array(
                arr, {"spacing": list(reversed(img.GetSpacing()))}, None
            )
            o = sitk.GetImageFromArray(np.asarray(lab, np.uint8))
            o.CopyInformation(img)
            sitk.WriteImage(o, str(out / f"{p.stem}_seg.mha"), True)
            per.append(time.perf_counter() - t1)
        wall = time.perf_counter() - t0
    print(
        f"peer (predict_single_npy_array): {', '.join(f'{s:.1f}' for s in per)} s, "
        f"load {t_load:.1f} s"
    )
    return {
        "what": "nnUNetPredictor.predict_single_npy_array (MRSegmentator's settings)",
        "load_s": t_load,
        "wall_s": wall,
        "per_scan_s": per,
        "scans_done": len(per),
        "scans_per_hour": 3600 * len(per) / wall if per else 0.0,
        "gpu_busy": gs.busy,
        "note": note,
    }


if __name__ == "__main__":
    main()
