"""Segment one image with an nnU-Net v2 model, like MRSegmentator does.

One ``Segmenter`` (one loaded ``nnUNetPredictor``) per process, cached by model folder and
settings: a Dask worker loads the weights once and reuses them for every scan. The image is
reoriented to LPS before inference and the label map is returned on the input's own grid.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mrcohort.errors import SegmentationError
from mrcohort.labels import LabelMap
from mrcohort.segmentation.inference import TorchInference
from mrcohort.segmentation.model import InferenceSettings, load_model_folder, model_key
from mrcohort.segmentation.nnunet_env import ensure_nnunet_env


def pick_device(device: str = "auto") -> str:
    """``cuda`` when asked for or available (with ``auto``), else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SegmentationError("NO_GPU", "device 'cuda' requested but no CUDA GPU is visible")
    return device


@dataclass
class Segmenter:
    """A loaded model: ``segment(image) -> uint8 label image`` on the image's own grid."""

    model_dir: Path
    settings: InferenceSettings
    device: str
    model_key: str
    label_map: LabelMap
    _predictor: object
    # one inference at a time: folds are swapped into the shared network's weights
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(
        cls,
        model: str | os.PathLike[str],
        settings: InferenceSettings | None = None,
        *,
        device: str = "auto",
    ) -> Segmenter:
        ensure_nnunet_env()
        import torch
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        settings = settings or InferenceSettings()
        folder = load_model_folder(model, settings.folds)
        dev = pick_device(device)
        threads = os.environ.get("MRCOHORT_TORCH_THREADS")
        if threads and dev == "cpu":
            torch.set_num_threads(int(threads))
        # nnU-Net prints a misleading CUDA note to stdout for every CPU predictor
        with contextlib.redirect_stdout(io.StringIO()):
            predictor = nnUNetPredictor(
                tile_step_size=settings.tile_step_size,
                use_gaussian=True,
                use_mirroring=settings.use_mirroring is not False,
                perform_everything_on_device=dev == "cuda",
                device=torch.device(dev),
                verbose=False,
                verbose_preprocessing=False,
                allow_tqdm=False,
            )
        try:
            predictor.initialize_from_trained_model_folder(str(folder.path), use_folds=folder.folds)
        except Exception as exc:  # unreadable checkpoint, unknown trainer, bad plans
            raise SegmentationError(
                "MODEL_UNREADABLE", f"cannot load model {folder.path}: {exc}"
            ) from exc
        if settings.use_mirroring is None and not predictor.allowed_mirroring_axes:
            predictor.use_mirroring = False
        key = model_key(folder, settings, device_type=torch.device(dev).type)
        return cls(folder.path, settings, dev, key, folder.label_map, predictor)

    def segment(self, image: sitk.Image) -> sitk.Image:
        """Labels (uint8) for a 3D image, returned with the input's exact geometry."""
        if image.GetDimension() != 3:
            raise SegmentationError(
                "BAD_DIMENSION", f"expected a 3D image, got {image.GetDimension()}D"
            )
        lps = sitk.DICOMOrient(image, "LPS")
        arr = sitk.GetArrayFromImage(lps).astype(np.float32, copy=False)
        if not np.isfinite(arr).all():
            raise SegmentationError("NONFINITE_VOXELS", "image has NaN or Inf voxels")
        spacing_zyx = tuple(float(s) for s in reversed(lps.GetSpacing()))
        with self._lock:
            if self.settings.engine == "nnunet":
                seg = self._predictor.predict_single_npy_array(  # type: ignore[attr-defined]
                    arr[None], {"spacing": list(spacing_zyx)}, None, None, False
                )
            else:
                seg = TorchInference(self._predictor).predict(arr, spacing_zyx)
        out = sitk.GetImageFromArray(np.asarray(seg, dtype=np.uint8))
        out.CopyInformation(lps)
        orientation = sitk.DICOMOrientImageFilter_GetOrientationFromDirectionCosines(
            image.GetDirection()
        )
        restored = sitk.DICOMOrient(out, orientation)
        restored.CopyInformation(image)
        return restored


_CACHE: dict[tuple[str, InferenceSettings, str], Segmenter] = {}
_LOCK = threading.Lock()
#: Models this process has loaded (a GPU worker loads its model once for the whole run).
LOADS: Counter[str] = Counter()


def get_segmenter(
    model: str | os.PathLike[str],
    settings: InferenceSettings | None = None,
    *,
    device: str = "auto",
) -> Segmenter:
    """The process-wide cached ``Segmenter`` for this model and settings (loaded once)."""
    settings = settings or InferenceSettings()
    key = (str(model), settings, device)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = Segmenter.load(model, settings, device=device)
            LOADS[str(model)] += 1
        return _CACHE[key]
