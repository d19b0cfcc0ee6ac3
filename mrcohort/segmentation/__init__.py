"""Segmentation with nnU-Net v2 models (MRSegmentator's weights or the shipped demo models).

`model`: model folders, their label maps and ``model_key`` (exported here); `predictor`:
the cached ``Segmenter`` / ``get_segmenter``; `inference` and `resample`: nnU-Net inference
with every resampling step in torch; `nnunet_env`: nnU-Net's folder variables. The last four
import torch, so they are imported from their modules, not here.
"""

from mrcohort.segmentation.model import (
    MRSEG_VARIANTS,
    InferenceSettings,
    ModelFolder,
    demo_model_path,
    fast_settings,
    load_model_folder,
    model_key,
    resolve_model_folder,
)

__all__ = [
    "MRSEG_VARIANTS",
    "InferenceSettings",
    "ModelFolder",
    "demo_model_path",
    "fast_settings",
    "load_model_folder",
    "model_key",
    "resolve_model_folder",
]
