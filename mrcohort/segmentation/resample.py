"""nnU-Net's image resampling (scipy cubic spline) done with torch on the predictor's device.

nnU-Net's default plans resample the image with ``resample_data_or_seg_to_shape`` (order 3,
``order_z`` 0): skimage ``resize`` (scipy ``zoom``: cubic B-spline with its prefilter, edge
mode, clipped to the input's range) on the CPU; for anisotropic spacing each slice in-plane
and nearest neighbour along the low-resolution axis. Each of these steps is linear and
separable (tensor-product splines; the spline prefilter runs axis by axis), so it equals one
small matrix per axis. The matrices are built once per (size in, size out, order) by running
skimage/scipy themselves on unit vectors, then applied to the volume with ``tensordot`` on
the device. Written here because no library resamples like scipy on a torch device; torch's
own ``interpolate`` has no cubic spline for 3D volumes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch


@functools.lru_cache(maxsize=128)
def axis_matrix(n_in: int, n_out: int, order: int, *, nearest_coords: bool = False) -> np.ndarray:
    """(n_out, n_in) matrix of 1D resampling as nnU-Net does it along one axis.

    ``nearest_coords``: nnU-Net's out-of-plane step (``map_coordinates`` with mode
    ``nearest`` at ``scale * (i + 0.5) - 0.5``); otherwise skimage ``resize`` (edge mode, no
    anti-aliasing, unclipped: the caller clips like skimage does).
    """
    eye = np.eye(n_in)
    if nearest_coords:
        from scipy.ndimage import map_coordinates

        coords = n_in / n_out * (np.arange(n_out) + 0.5) - 0.5
        grid = np.stack(np.meshgrid(coords, np.arange(n_in), indexing="ij"))
        return map_coordinates(eye, grid, order=order, mode="nearest")
    from skimage.transform import resize

    return resize(eye, (n_out, n_in), order=order, mode="edge", anti_aliasing=False, clip=False)


def _along(x: torch.Tensor, axis: int, matrix: np.ndarray) -> torch.Tensor:
    """Apply a (n_out, n_in) matrix along spatial ``axis`` of a (c, z, y, x) tensor."""
    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    out = torch.tensordot(x, m, dims=([axis + 1], [1]))  # new axis last
    return out.movedim(-1, axis + 1)


def resample_like_nnunet(
    x: torch.Tensor,
    new_shape: Sequence[int],
    current_spacing: Sequence[float],
    new_spacing: Sequence[float],
    *,
    order: int = 3,
    order_z: int = 0,
    force_separate_z: bool | None = None,
) -> torch.Tensor:
    """``resample_data_or_seg_to_shape(is_seg=False)`` for a (c, z, y, x) float tensor."""
    from nnunetv2.preprocessing.resampling.default_resampling import determine_do_sep_z_and_axis

    shape = tuple(int(s) for s in x.shape[1:])
    new_shape = tuple(int(s) for s in new_shape)
    if shape == new_shape:
        return x
    separate, low_axis = determine_do_sep_z_and_axis(force_separate_z, current_spacing, new_spacing)
    x = x.float()
    if not separate:
        out = x
        for ax in range(3):
            if shape[ax] != new_shape[ax]:
                out = _along(out, ax, axis_matrix(shape[ax], new_shape[ax], order))
        lo = x.amin(dim=(1, 2, 3)).view(-1, 1, 1, 1)
        hi = x.amax(dim=(1, 2, 3)).view(-1, 1, 1, 1)
        return torch.clamp(out, lo, hi)
    plane = [a for a in range(3) if a != low_axis]
    out = x
    for ax in plane:
        if shape[ax] != new_shape[ax]:
            out = _along(out, ax, axis_matrix(shape[ax], new_shape[ax], order))
    dims = tuple(a + 1 for a in plane)  # skimage clips each slice to its own range
    out = torch.clamp(out, x.amin(dim=dims, keepdim=True), x.amax(dim=dims, keepdim=True))
    if shape[low_axis] != new_shape[low_axis]:
        m = axis_matrix(shape[low_axis], new_shape[low_axis], order_z, nearest_coords=True)
        out = _along(out, low_axis, m)
    return out
