"""Paint an anatomy onto a voxel grid: label maps, water/fat images and truth volumes.

Every voxel is the mean of ``supersample**3`` sub-samples (partial volume); labels are the
sub-samples' majority; truth volumes count the sub-samples, so overlaps between solids are
resolved exactly as in the images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from mrcohort.phantoms.anatomy import BODY_COMP_IDS, N_CODES, Anatomy, is_inside_fat_layer
from mrcohort.phantoms.presets import Preset
from mrcohort.phantoms.signal import water_fat

__all__ = ["Grid", "Rendered", "body_grid", "render", "subsample_centres"]


def subsample_centres(
    start: int, stop: int, spacing_mm: float, supersample: int, origin_mm: float = 0.0
) -> np.ndarray:
    """Centres (mm) of the ``supersample`` sub-samples of voxels ``start..stop-1`` on one axis.

    Voxel ``i`` is centred at ``origin_mm + i * spacing_mm``; its sub-samples split it evenly.
    """
    offs = (np.arange(supersample) + 0.5) / supersample - 0.5
    return (origin_mm + (np.arange(start, stop)[:, None] + offs[None, :]) * spacing_mm).ravel()


@dataclass(frozen=True)
class Grid:
    """An axis-aligned LPS grid: voxel centres ``origin + index * spacing`` (x, y, z)."""

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    size: tuple[int, int, int]  # (nx, ny, nz)

    def axis(self, i: int, supersample: int = 1) -> np.ndarray:
        """Sub-sample centres along axis i (x=0, y=1, z=2)."""
        return subsample_centres(0, self.size[i], self.spacing[i], supersample, self.origin[i])

    def image(self, arr: np.ndarray, z_start: int = 0) -> sitk.Image:
        """``arr`` (z, y, x) as an image on this grid, its first slice at index ``z_start``."""
        img = sitk.GetImageFromArray(arr)
        o = self.origin
        img.SetOrigin((o[0], o[1], o[2] + z_start * self.spacing[2]))
        img.SetSpacing(self.spacing)
        return img


def body_grid(preset: Preset, z_scale: float = 1.0) -> Grid:
    """The whole-body reference grid of a preset (centred in-plane on the body)."""
    (sx, sy, sz), (nx, ny) = preset.spacing_mm, preset.size_xy
    z0, z1 = preset.z_range_mm
    z0, z1 = z0 * z_scale, z1 * z_scale
    nz = math.floor((z1 - z0) / sz) + 1
    origin = (-(nx - 1) * sx / 2.0, 8.0 - (ny - 1) * sy / 2.0, z0)
    return Grid(origin, (sx, sy, sz), (nx, ny, nz))


@dataclass
class Rendered:
    """Painted phantom on a grid: label map, W/F images (z, y, x) and truth volumes."""

    labels: np.ndarray  # uint8
    water: np.ndarray  # float32, signal units
    fat: np.ndarray  # float32
    volume_ml: dict[int, float]
    body_comp: np.ndarray  # uint8, body-composition class ids (`BODY_COMP_LABELS`)
    body_comp_volume_ml: dict[int, float]


def render(anatomy: Anatomy, grid: Grid, *, supersample: int, chunk_slices: int = 8) -> Rendered:
    """Paint the anatomy onto ``grid`` with partial volume; chunked along z to bound memory."""
    s = supersample
    nx, ny, nz = grid.size
    xs, ys = grid.axis(0, s), grid.axis(1, s)
    lut_w = np.zeros(N_CODES, np.float64)
    lut_f = np.zeros(N_CODES, np.float64)
    for code, t in anatomy.tissues.items():
        lut_w[code], lut_f[code] = water_fat(t.pd, t.ff)
    labels = np.zeros((nz, ny, nx), np.uint8)
    body_comp = np.zeros((nz, ny, nx), np.uint8)
    bc_counts = np.zeros(len(BODY_COMP_IDS) + 1, np.int64)
    water = np.zeros((nz, ny, nx), np.float32)
    fat = np.zeros((nz, ny, nx), np.float32)
    counts = np.zeros(N_CODES, np.int64)
    for k0 in range(0, nz, chunk_slices):
        k1 = min(nz, k0 + chunk_slices)
        zs = grid.axis(2, s)[k0 * s : k1 * s]
        codes = _paint_chunk(anatomy, xs, ys, zs)
        counts += np.bincount(codes.ravel(), minlength=N_CODES)
        blocks = _voxel_blocks(codes, s)
        water[k0:k1] = lut_w[blocks].mean(-1)
        fat[k0:k1] = lut_f[blocks].mean(-1)
        labels[k0:k1] = _block_mode_label(blocks, k0)
        bc = anatomy.body_comp_code(codes, zs[:, None, None])
        bc_counts += np.bincount(bc.ravel(), minlength=bc_counts.size)
        body_comp[k0:k1] = _block_mode_label(_voxel_blocks(bc, s), k0)
    fine_voxel_ml = float(np.prod(grid.spacing)) / s**3 / 1000.0
    volume_ml = {i: float(counts[i]) * fine_voxel_ml for i in range(1, 41)}
    bc_volume_ml = {i: float(bc_counts[i]) * fine_voxel_ml for i in BODY_COMP_IDS.values()}
    return Rendered(labels, water, fat, volume_ml, body_comp, bc_volume_ml)


def _paint_chunk(anatomy: Anatomy, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Tissue codes (z, y, x) on the sub-sample grid of one chunk."""
    z3, y3, x3 = zs[:, None, None], ys[None, :, None], xs[None, None, :]
    codes = anatomy.body.codes(x3, y3, z3)
    inner = is_inside_fat_layer(codes)
    for label_id, solid in anatomy.solids:
        lo, hi = solid.bbox()
        ix = np.flatnonzero((xs >= lo[0]) & (xs <= hi[0]))
        iy = np.flatnonzero((ys >= lo[1]) & (ys <= hi[1]))
        iz = np.flatnonzero((zs >= lo[2]) & (zs <= hi[2]))
        if not (ix.size and iy.size and iz.size):
            continue
        sl = (slice(iz[0], iz[-1] + 1), slice(iy[0], iy[-1] + 1), slice(ix[0], ix[-1] + 1))
        hit = solid.contains(x3[..., sl[2]], y3[:, sl[1], :], z3[sl[0]]) & inner[sl]
        codes[sl][hit] = label_id
    return codes


def _voxel_blocks(fine: np.ndarray, supersample: int) -> np.ndarray:
    """Sub-samples (z, y, x) regrouped per voxel: shape (nz, ny, nx, supersample**3)."""
    s = supersample
    nz, ny, nx = (n // s for n in fine.shape)
    blocks = fine.reshape(nz, s, ny, s, nx, s).transpose(0, 2, 4, 1, 3, 5)
    return blocks.reshape(nz, ny, nx, s**3)


def _block_mode_label(blocks: np.ndarray, z_offset: int) -> np.ndarray:
    """Majority label (1..40, else 0) of each voxel's sub-samples.

    Ties (e.g. 4 of 8 sub-samples) are broken by a checkerboard parity of the voxel index, so
    on average half of the tied voxels go each way: always resolving ties towards the label
    would inflate thin structures by ~10%, always towards background would shrink them.
    """
    lab = np.where(blocks <= 40, blocks, 0)
    nz, ny, nx = lab.shape[:-1]
    k, j, i = np.ogrid[z_offset : z_offset + nz, :ny, :nx]
    parity = ((i + j + k) % 2).astype(bool)
    best = np.zeros(lab.shape[:-1], np.uint8)
    best_n = (lab == 0).sum(-1)
    for code in np.unique(lab):
        if code == 0:
            continue
        n = (lab == code).sum(-1)
        take = (n > best_n) | ((n == best_n) & parity)
        best[take], best_n[take] = code, n[take]
    return best
