"""Quiet nnU-Net's import-time warnings about unset data folders.

nnU-Net v2 reads ``nnUNet_raw``, ``nnUNet_preprocessed`` and ``nnUNet_results`` when it is
imported and warns when they are unset. Inference from a model folder needs none of them, so
point unset ones at a scratch folder inside this process; users never have to set them.
"""

from __future__ import annotations

import os
import tempfile


def ensure_nnunet_env() -> None:
    """Set the three nnU-Net folder variables (only those unset) to a per-user scratch dir."""
    scratch = os.path.join(tempfile.gettempdir(), f"mrcohort-nnunet-{os.getuid()}")
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        if not os.environ.get(var):
            path = os.path.join(scratch, var)
            os.makedirs(path, exist_ok=True)
            os.environ[var] = path
