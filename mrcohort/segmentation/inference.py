"""nnU-Net v2 inference with every resampling step in torch, on the predictor's device.

nnU-Net's ``predict_single_npy_array`` preprocesses and exports on the CPU with scipy; the
export (resampling one probability map per class back to the input grid) is most of the
time (MRSegmentator: "most of the computation time is needed for resampling the images on
the CPU"; nnU-Net #2912: 57.9 s with scipy vs 0.39 s with ``resample_torch_fornnunet``).
This module keeps nnU-Net's own pieces for what defines the result — crop to non-zero, the
plans' normalisation classes, ``compute_new_shape``, the network and its Gaussian sliding
window — and replaces only the resampling:

1. image → target spacing on the device with the plans' own resampling: nnU-Net's cubic
   spline (``resample_data_or_seg_to_shape``, order 3) reproduced by `resample.
   resample_like_nnunet` (separable matrices; equal to scipy to float32 rounding), or
   ``resample_torch_fornnunet`` when the plans name a torch resampler;
2. sliding window (``predict_sliding_window_return_logits``) on the device;
3. logits → input grid with ``resample_torch_fornnunet`` on the device (trilinear, equal to
   nnU-Net's order-1 export to float32 rounding), then argmax there; when the input already
   has the model's spacing no resampling happens at all.

An earlier version resampled the image trilinearly: 3.3% of labelled voxels then differed
from nnU-Net on a resampled input (benchmarks/RESULTS.md).

Only a uint8 label array leaves the device. Large volumes are processed in overlapping
chunks along the first (slowest) axis so the logits never exceed a memory budget
(``max_voxels_logits``); the chunk margin is one patch length, so every kept voxel saw the
same context as without chunking except at chunk edges beyond a patch (documented
trade-off, as MRSegmentator's ``split_level``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ChunkPlan:
    """How the first axis of the (cropped) input is split: [start, stop) cores + margin."""

    cores: tuple[tuple[int, int], ...]
    margin: int


def plan_chunks(n: int, n_chunks: int, margin: int) -> ChunkPlan:
    """Split ``n`` slices into ``n_chunks`` contiguous cores (context margin on both sides)."""
    n_chunks = max(1, min(n_chunks, n))
    edges = np.linspace(0, n, n_chunks + 1).round().astype(int)
    cores = tuple((int(a), int(b)) for a, b in itertools.pairwise(edges))
    return ChunkPlan(cores, margin)


def plan_for_budget(n: int, margin: int, slice_cost: int, budget: int) -> ChunkPlan:
    """Chunks whose logits (core + both margins) stay under ``budget`` voxels.

    ``slice_cost`` is the number of logit voxels one input slice costs (classes x the larger
    of its input-grid and model-grid voxel counts). The margin shrinks (to at most a quarter
    of a chunk) only when a chunk cannot hold a full patch of context on both sides.
    """
    cap = max(1, budget // max(1, slice_cost))  # slices per chunk, margins included
    if cap >= n:
        return plan_chunks(n, 1, margin)
    margin = min(margin, (cap - 1) // 4)
    core = max(1, cap - 2 * margin)
    return plan_chunks(n, math.ceil(n / core), margin)


def default_logits_budget(device: torch.device) -> int:
    """Logit voxels (float32) allowed at once: a quarter of free device/host memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        import psutil

        free = psutil.virtual_memory().available
    return max(1 << 24, int(free // 4 // 4 // 3))  # 3 copies (logits, resampled, softmax)


class TorchInference:
    """Run an initialised ``nnUNetPredictor`` on arrays with torch resampling."""

    def __init__(self, predictor: object, *, max_voxels_logits: int | None = None) -> None:
        self.p = predictor
        self.device: torch.device = predictor.device  # type: ignore[attr-defined]
        self.max_voxels_logits = max_voxels_logits

    # -- pieces -------------------------------------------------------------------------
    def _normalize(self, data: np.ndarray) -> tuple[np.ndarray, tuple[list[int], ...]]:
        from nnunetv2.preprocessing.cropping.cropping import crop_to_nonzero
        from nnunetv2.preprocessing.preprocessors.default_preprocessor import (
            DefaultPreprocessor,
        )

        cropped, seg, bbox = crop_to_nonzero(data)
        pm, cm = self.p.plans_manager, self.p.configuration_manager  # type: ignore[attr-defined]
        normed = DefaultPreprocessor(verbose=False)._normalize(
            cropped, seg, cm, pm.foreground_intensity_properties_per_channel
        )
        return normed, bbox

    def _labels_for(self, data: np.ndarray, spacing: list[float]) -> torch.Tensor:
        """uint8 labels (on the device) for one normalised chunk on its own input grid."""
        from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape
        from nnunetv2.preprocessing.resampling.resample_torch import resample_torch_fornnunet

        cm = self.p.configuration_manager  # type: ignore[attr-defined]
        target = list(cm.spacing)
        shape_in = list(data.shape[1:])
        shape_model = [int(s) for s in compute_new_shape(shape_in, spacing, target)]
        x = torch.from_numpy(np.ascontiguousarray(data)).to(self.device)
        if shape_model != shape_in:
            x = self._resample_image(x, shape_model, spacing, target)
        with torch.no_grad():
            logits = self._ensemble_logits(x)
            if shape_model != shape_in:
                logits = resample_torch_fornnunet(
                    logits.float(), shape_in, target, spacing, is_seg=False, device=self.device
                )
            return self._to_labels(logits)

    def _resample_image(
        self, x: torch.Tensor, shape: list[int], spacing: list[float], target: list[float]
    ) -> torch.Tensor:
        """The image onto the model's grid as the plans' ``resampling_fn_data`` would."""
        from nnunetv2.preprocessing.resampling.resample_torch import resample_torch_fornnunet

        from mrcohort.segmentation.resample import resample_like_nnunet

        config = self.p.configuration_manager.configuration  # type: ignore[attr-defined]
        if config.get("resampling_fn_data") == "resample_data_or_seg_to_shape":
            kw = config.get("resampling_fn_data_kwargs", {})
            return resample_like_nnunet(
                x,
                shape,
                spacing,
                target,
                order=int(kw.get("order", 3)),
                order_z=int(kw.get("order_z", 0)),
                force_separate_z=kw.get("force_separate_z"),
            )
        return resample_torch_fornnunet(x, shape, spacing, target, is_seg=False, device=self.device)

    def _ensemble_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Mean logits over every fold loaded (nnU-Net's ensembling), kept on the device."""
        params = self.p.list_of_parameters  # type: ignore[attr-defined]
        net = self.p.network  # type: ignore[attr-defined]
        net = getattr(net, "_orig_mod", net)  # torch.compile'd networks
        total: torch.Tensor | None = None
        for state in params:
            if len(params) > 1:
                net.load_state_dict(state)
            out = self.p.predict_sliding_window_return_logits(x)  # type: ignore[attr-defined]
            out = out.to(self.device)
            # not in place: nnU-Net returns inference-mode tensors, which refuse ``add_``
            total = out if total is None else total + out
        assert total is not None
        return total / len(params) if len(params) > 1 else total

    def _to_labels(self, logits: torch.Tensor) -> torch.Tensor:
        lm = self.p.label_manager  # type: ignore[attr-defined]
        if lm.has_regions:  # region-based models: sigmoid + thresholds as nnU-Net does
            probs = lm.apply_inference_nonlin(logits)
            return torch.as_tensor(lm.convert_probabilities_to_segmentation(probs)).to(torch.uint8)
        return logits.argmax(0).to(torch.uint8)

    # -- public -------------------------------------------------------------------------
    def predict(self, image_zyx: np.ndarray, spacing_zyx: tuple[float, float, float]) -> np.ndarray:
        """uint8 label array (z, y, x) for a float image in nnU-Net's array convention."""
        pm = self.p.plans_manager  # type: ignore[attr-defined]
        cm = self.p.configuration_manager  # type: ignore[attr-defined]
        fwd, bwd = list(pm.transpose_forward), list(pm.transpose_backward)
        data = image_zyx[None].astype(np.float32).transpose([0, *[i + 1 for i in fwd]])
        spacing = [float(spacing_zyx[i]) for i in fwd]
        full_shape = data.shape[1:]
        normed, bbox = self._normalize(data)
        n_classes = self.p.label_manager.num_segmentation_heads  # type: ignore[attr-defined]
        from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape

        shape_model = tuple(
            int(s) for s in compute_new_shape(normed.shape[1:], spacing, cm.spacing)
        )
        budget = self.max_voxels_logits or default_logits_budget(self.device)
        # margin: one patch along axis 0, expressed in input voxels
        margin = math.ceil(cm.patch_size[0] * cm.spacing[0] / spacing[0])
        plane_in = math.prod(normed.shape[2:])
        plane_model = math.prod(shape_model[1:]) * shape_model[0] / normed.shape[1]
        slice_cost = math.ceil(n_classes * max(plane_in, plane_model))
        plan = plan_for_budget(normed.shape[1], margin, slice_cost, budget)
        out = np.zeros(full_shape, np.uint8)
        cropped = np.zeros(normed.shape[1:], np.uint8)
        for a, b in plan.cores:
            lo, hi = max(0, a - plan.margin), min(normed.shape[1], b + plan.margin)
            labels = self._labels_for(normed[:, lo:hi], spacing)
            cropped[a:b] = labels[a - lo : b - lo].cpu().numpy()
        out[tuple(slice(s, e) for s, e in bbox)] = cropped
        return out.transpose(bwd)
