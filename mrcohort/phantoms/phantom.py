"""Synthetic whole-body Dixon participants with analytic ground truth.

A phantom participant is a neck-to-knee body built from simple solids (ellipsoids, elliptic
cylinders, tubes around curved centrelines), each carrying its MRSegmentator label id and a
tissue with a known proton density ``pd`` and fat fraction ``ff``. The four Dixon channels
follow the two-point signal model

    W = pd * (1 - ff),  F = pd * ff,  in-phase = |W + F|,  opposed-phase = |W - F|

with partial volume (every voxel is the mean of ``supersample**3`` sub-samples) and complex
Gaussian noise (magnitude images, so Rician statistics) at a chosen SNR, independent per
station. The body is cut into overlapping stations along z exactly on the whole-body grid,
like UK Biobank's six neck-to-knee stations (or NAKO's four), so stitching can be scored
against the noise-free reference volume.

Ground truth per label: volume in ml (the supersampled painted label map, so overlaps between
solids are resolved exactly as in the images), the tissue's true fat fraction, and for the
iliac arteries the centreline length, chord and tortuosity index of the analytic centreline.

World coordinates are LPS in mm: +x = patient left, +y = posterior, +z = superior. z = 0 is
knee level; the neck is at about 1000 mm (scaled per participant).

No library builds anatomical phantoms with analytic Dixon signals, so this is hand-written.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import SimpleITK as sitk
from pydicom.uid import generate_uid
from scipy.spatial import cKDTree

from mrcohort.cohort.channels import CHANNELS
from mrcohort.io.images import write_image
from mrcohort.labels import BODY_COMP_LABELS, MRSEG_IDS, label_name

# Tissue codes for unlabeled tissue (labels use 1..40, air is 0).
SOFT_TISSUE = 41
SUBCUT_FAT = 42
THIGH_MUSCLE = 43
N_CODES = 44
#: Body-composition class name -> id.
BODY_COMP_IDS = {lab.name: lab.id for lab in BODY_COMP_LABELS.values()}

#: Signal units: a proton density of 1 gives this many scanner units.
SIGNAL_SCALE = 1000.0


@dataclass(frozen=True)
class Preset:
    """Acquisition geometry of a phantom cohort.

    Attributes
    ----------
    spacing_mm
        Voxel spacing (x, y, z) in mm, SimpleITK order.
    size_xy
        In-plane matrix (columns, rows).
    n_stations
        Number of overlapping stations along z.
    overlap_slices
        Slices shared by consecutive stations.
    z_range_mm
        (first, last) slice centre in body z (mm) before participant scaling; 0 = knee.
    supersample
        Sub-samples per axis per voxel for partial volume and truth volumes.
    """

    name: str
    spacing_mm: tuple[float, float, float]
    size_xy: tuple[int, int]
    n_stations: int
    overlap_slices: int
    z_range_mm: tuple[float, float]
    supersample: int = 2


PRESETS: dict[str, Preset] = {
    # UK Biobank field 20201: 224x168 at 2.23 mm, 3 mm slices, 6 stations neck to knee.
    "ukbb": Preset("ukbb", (2.232143, 2.232143, 3.0), (224, 168), 6, 6, (-20.0, 1030.0), 2),
    # NAKO: 320x260 at 1.40625 mm, 3 mm slices, 4 Dixon stations shoulders to knees.
    "nako": Preset("nako", (1.40625, 1.40625, 3.0), (320, 260), 4, 8, (-20.0, 1000.0), 1),
    # Coarse grid for tests and the demo: same anatomy, fewer voxels.
    "mini": Preset("mini", (3.5, 3.5, 5.0), (128, 96), 6, 5, (-20.0, 1030.0), 2),
    # The mini grid cut into NAKO's 4 Dixon stations (for NAKO-layout tests).
    "mini_nako": Preset("mini_nako", (3.5, 3.5, 5.0), (128, 96), 4, 5, (-20.0, 1000.0), 2),
}


@dataclass(frozen=True)
class Tissue:
    """Proton density (relative) and fat fraction (0-1) of one tissue."""

    pd: float
    ff: float


class Solid(Protocol):
    """A region of space with an axis-aligned bounding box (mm)."""

    def bbox(self) -> tuple[np.ndarray, np.ndarray]: ...

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned ellipsoid."""

    center: tuple[float, float, float]
    semi_axes: tuple[float, float, float]

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        c, r = np.asarray(self.center), np.asarray(self.semi_axes)
        return c - r, c + r

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy, cz), (a, b, c) = self.center, self.semi_axes
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0


@dataclass(frozen=True)
class EllipticCylinder:
    """Elliptic cylinder along z between z0 and z1."""

    center_xy: tuple[float, float]
    semi_xy: tuple[float, float]
    z0: float
    z1: float

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        (cx, cy), (a, b) = self.center_xy, self.semi_xy
        return np.array([cx - a, cy - b, self.z0]), np.array([cx + a, cy + b, self.z1])

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy), (a, b) = self.center_xy, self.semi_xy
        inside = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0
        return inside & (z >= self.z0) & (z <= self.z1)


@dataclass(frozen=True, eq=False)
class Tube:
    """All points within ``radius`` of a polyline centreline (rounded ends).

    The centreline is resampled densely (``step_mm``) into a KD-tree, so the distance error is
    below ``step_mm**2 / (8 * radius)``.
    """

    centerline: np.ndarray  # (n, 3) mm
    radius: float
    step_mm: float = 0.25
    _tree: cKDTree = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tree", cKDTree(densify(self.centerline, self.step_mm)))

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return self.centerline.min(0) - self.radius, self.centerline.max(0) + self.radius

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        x, y, z = np.broadcast_arrays(x, y, z)
        pts = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
        dist, _ = self._tree.query(pts, distance_upper_bound=self.radius * 1.001)
        return (dist <= self.radius).reshape(x.shape)


def densify(polyline: np.ndarray, step_mm: float) -> np.ndarray:
    """Resample a polyline so consecutive points are at most ``step_mm`` apart."""
    pts = [polyline[:1]]
    for a, b in itertools.pairwise(polyline):
        n = max(1, math.ceil(float(np.linalg.norm(b - a)) / step_mm))
        t = np.linspace(0.0, 1.0, n + 1)[1:, None]
        pts.append(a + t * (b - a))
    return np.concatenate(pts, axis=0)


def curved_centerline(
    start: np.ndarray, end: np.ndarray, *, amplitude_mm: float, half_waves: int, n: int = 4001
) -> np.ndarray:
    """Centreline ``start + t (end - start) + A sin(pi k t) n`` with n in the coronal plane.

    ``n`` is the unit vector perpendicular to the chord within the plane spanned by the chord
    and the x-z (coronal) directions, so the curve stays at the chord's depth (y) profile.
    """
    d = end - start
    normal = np.array([-d[2], 0.0, d[0]])
    normal /= np.linalg.norm(normal)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return start + t * d + amplitude_mm * np.sin(np.pi * half_waves * t) * normal


def polyline_length(points: np.ndarray) -> float:
    """Length of a polyline (mm)."""
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


@dataclass(frozen=True)
class Body:
    """Outer body surface: neck, torso, two thighs; elliptic cross-sections."""

    torso_semi: tuple[float, float]
    neck_semi: tuple[float, float]
    thigh_center_x: float
    thigh_semi_groin: tuple[float, float]
    thigh_semi_knee: tuple[float, float]
    groin_z: float
    neck_z: float
    fat_mm: float

    def codes(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Tissue code per point: 0 air, SUBCUT_FAT, SOFT_TISSUE (torso) or THIGH_MUSCLE."""
        x, y, z = np.broadcast_arrays(x, y, z)
        out = np.zeros(x.shape, np.uint8)
        torso = (z >= self.groin_z) & (z <= self.neck_z)
        neck = z > self.neck_z
        thigh = z < self.groin_z
        for region, inner_code, fn in (
            (torso, SOFT_TISSUE, self._torso),
            (neck, SOFT_TISSUE, self._neck),
            (thigh, THIGH_MUSCLE, self._thighs),
        ):
            if not region.any():
                continue
            outer, inner = fn(x[region], y[region], z[region])
            codes = np.where(inner, inner_code, np.where(outer, SUBCUT_FAT, 0))
            out[region] = codes
        return out

    def _ellipse(
        self,
        x: np.ndarray,
        y: np.ndarray,
        cx: float,
        cy: float,
        a: np.ndarray,
        b: np.ndarray,
        fat: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        outer = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0
        inner = ((x - cx) / (a - fat)) ** 2 + ((y - cy) / (b - fat)) ** 2 <= 1.0
        return outer, inner

    def _torso(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.torso_semi
        return self._ellipse(x, y, 0.0, 0.0, np.float64(a), np.float64(b), self.fat_mm)

    def _neck(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.neck_semi
        return self._ellipse(x, y, 0.0, 15.0, np.float64(a), np.float64(b), self.fat_mm * 0.5)

    def _thighs(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.clip(z / self.groin_z, 0.0, 1.0)
        a = self.thigh_semi_knee[0] + t * (self.thigh_semi_groin[0] - self.thigh_semi_knee[0])
        b = self.thigh_semi_knee[1] + t * (self.thigh_semi_groin[1] - self.thigh_semi_knee[1])
        fat = self.fat_mm * 0.6
        lo, li = self._ellipse(x, y, -self.thigh_center_x, 10.0, a, b, fat)
        ro, ri = self._ellipse(x, y, self.thigh_center_x, 10.0, a, b, fat)
        return lo | ro, li | ri

    def inner_contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        codes = self.codes(x, y, z)
        return (codes == SOFT_TISSUE) | (codes == THIGH_MUSCLE)


@dataclass(frozen=True)
class Anatomy:
    """One participant's anatomy: body, labelled solids in painting order, tissues."""

    body: Body
    solids: tuple[tuple[int, Solid], ...]  # (label id, solid); later ones paint over earlier
    tissues: dict[int, Tissue]  # code -> tissue
    iliac_centerlines: dict[int, np.ndarray]
    #: z (mm) of the pelvis top (aortic bifurcation) and of the diaphragm: subcutaneous fat
    #: below the first is gluteofemoral, between them abdominal (body-composition truth)
    abdomen_z_mm: tuple[float, float] = (-math.inf, math.inf)

    def body_comp_code(self, codes: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Body-composition class (`BODY_COMP_LABELS` ids) per sub-sample, 0 elsewhere.

        The phantom has subcutaneous fat only (no visceral fat or abdominal wall muscles):
        ``gluteofemoral_fat`` below the pelvis top, ``abdominal_subcutaneous_fat`` up to the
        diaphragm, ``subcutaneous_fat`` above (chest, neck).
        """
        lo, hi = self.abdomen_z_mm
        ids = BODY_COMP_IDS
        zone = np.where(z < lo, ids["gluteofemoral_fat"], ids["subcutaneous_fat"])
        zone = np.where((z >= lo) & (z < hi), ids["abdominal_subcutaneous_fat"], zone)
        return np.where(codes == SUBCUT_FAT, zone, 0).astype(np.uint8)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def make_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one participant's anatomy (sizes, positions, tissues) from ``rng``."""
    sx, sy, sz = _u(rng, 0.92, 1.08), _u(rng, 0.88, 1.12), _u(rng, 0.96, 1.04)

    def p(x: float, y: float, z: float, jitter: float = 6.0) -> tuple[float, float, float]:
        j = rng.uniform(-jitter, jitter, 3)
        return (x * sx + j[0], y * sy + j[1], z * sz + j[2])

    def s(a: float, b: float, c: float, var: float = 0.12) -> tuple[float, float, float]:
        f = _u(rng, 1 - var, 1 + var)
        return (a * sx * f, b * sy * f, c * sz * f)

    body = Body(
        torso_semi=(165 * sx, 112 * sy),
        neck_semi=(60 * sx, 62 * sy),
        thigh_center_x=85 * sx,
        thigh_semi_groin=(78 * sx, 82 * sy),
        thigh_semi_knee=(55 * sx, 60 * sy),
        groin_z=430 * sz,
        neck_z=965 * sz,
        fat_mm=_u(rng, 12.0, 32.0),
    )
    ids = MRSEG_IDS
    solids: list[tuple[int, Solid]] = []
    # Muscles first (organs and vessels paint over them).
    for side, sign in (("left", 1.0), ("right", -1.0)):
        solids.append(
            (
                ids[f"{side}_autochthonous_muscle"],
                EllipticCylinder((sign * 36 * sx, 84 * sy), (21 * sx, 19 * sy), 545 * sz, 955 * sz),
            )
        )
        psoas = np.array(
            [p(sign * 38, 55, 650, 3), p(sign * 62, 35, 530, 3), p(sign * 80, 12, 410, 3)]
        )
        solids.append((ids[f"{side}_iliopsoas_muscle"], Tube(psoas, _u(rng, 15.0, 19.0))))
        solids.append(
            (ids[f"{side}_gluteus_maximus"], Ellipsoid(p(sign * 72, 86, 462), s(52, 34, 78)))
        )
    # Organs.
    solids += [
        (ids["left_lung"], Ellipsoid(p(82, 12, 888), s(68, 82, 100))),
        (ids["right_lung"], Ellipsoid(p(-82, 12, 883), s(68, 82, 100))),
        (ids["heart"], Ellipsoid(p(22, -28, 872), s(58, 48, 55))),
        (ids["liver"], Ellipsoid(p(-72, -8, 786), s(76, 70, 64))),
        (ids["spleen"], Ellipsoid(p(86, 34, 778), s(30, 40, 46))),
        (ids["left_kidney"], Ellipsoid(p(78, 52, 682), s(28, 25, 50))),
        (ids["right_kidney"], Ellipsoid(p(-78, 52, 672), s(28, 25, 50))),
        (ids["urinary_bladder"], Ellipsoid(p(0, -42, 472), s(44, 34, 34))),
        (ids["spine"], EllipticCylinder((0.0, 62 * sy), (17 * sx, 16 * sy), 525 * sz, 985 * sz)),
    ]
    # Vessels last, veins before arteries.
    aorta_x, aorta_y, bif_z = 15 * sx, 22 * sy, 590 * sz
    ivc = np.array([p(-26, 40, 805, 2), p(-24, 40, 580, 2)])
    solids.append((ids["inferior_vena_cava"], Tube(ivc, _u(rng, 9.5, 11.5))))
    portal = np.array([p(-62, -14, 764, 3), p(0, -12, 752, 3), p(70, 12, 770, 3)])
    solids.append((ids["portal_vein_and_splenic_vein"], Tube(portal, _u(rng, 5.5, 7.0))))
    vein_start = np.array(ivc[-1]) + np.array([0.0, 0.0, 6.0])
    for side, sign in (("left", 1.0), ("right", -1.0)):
        end = np.array(p(sign * 74, 38, 425, 3))
        start = vein_start + np.array([sign * 7.0, 0.0, 0.0])
        line = curved_centerline(start, end, amplitude_mm=_u(rng, 0, 6), half_waves=1, n=201)
        solids.append((ids[f"{side}_iliac_vena"], Tube(line, _u(rng, 6.5, 7.5))))
    aorta = np.array([[aorta_x, aorta_y, 905 * sz], [aorta_x, aorta_y, bif_z]])
    solids.append((ids["aorta"], Tube(aorta, _u(rng, 10.5, 12.5))))
    iliac: dict[int, np.ndarray] = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        start = np.array([aorta_x + sign * 6.0, aorta_y, bif_z - 4.0])
        end = np.array(p(sign * 80, -8, 432, 4))
        line = curved_centerline(
            start, end, amplitude_mm=_u(rng, 8.0, 32.0), half_waves=int(rng.integers(1, 3))
        )
        iliac[ids[f"{side}_iliac_artery"]] = line
        solids.append((ids[f"{side}_iliac_artery"], Tube(line, _u(rng, 5.5, 6.5))))

    muscle_ff = _u(rng, 0.02, 0.12)
    tissues = {
        0: Tissue(0.0, 0.0),
        SOFT_TISSUE: Tissue(0.45, 0.18),
        SUBCUT_FAT: Tissue(1.0, 0.92),
        THIGH_MUSCLE: Tissue(0.6, muscle_ff),
        ids["liver"]: Tissue(0.75, _u(rng, 0.02, 0.25)),
        ids["spleen"]: Tissue(0.85, _u(rng, 0.01, 0.04)),
        ids["left_kidney"]: Tissue(0.95, 0.02),
        ids["right_kidney"]: Tissue(0.95, 0.02),
        ids["heart"]: Tissue(0.7, 0.03),
        ids["left_lung"]: Tissue(0.08, 0.0),
        ids["right_lung"]: Tissue(0.08, 0.0),
        ids["urinary_bladder"]: Tissue(1.3, 0.0),
        ids["spine"]: Tissue(0.55, _u(rng, 0.3, 0.55)),
        ids["aorta"]: Tissue(1.1, 0.0),
        ids["inferior_vena_cava"]: Tissue(1.0, 0.0),
        ids["portal_vein_and_splenic_vein"]: Tissue(1.05, 0.0),
    }
    for name in ("left_iliac_artery", "right_iliac_artery"):
        tissues[ids[name]] = Tissue(1.1, 0.0)
    for name in ("left_iliac_vena", "right_iliac_vena"):
        tissues[ids[name]] = Tissue(1.0, 0.0)
    for side in ("left", "right"):
        tissues[ids[f"{side}_autochthonous_muscle"]] = Tissue(0.62, muscle_ff)
        tissues[ids[f"{side}_iliopsoas_muscle"]] = Tissue(0.64, muscle_ff * 0.8)
        tissues[ids[f"{side}_gluteus_maximus"]] = Tissue(0.6, min(0.95, muscle_ff + 0.03))
    return Anatomy(body, tuple(solids), tissues, iliac, (bif_z, 790 * sz))


@dataclass(frozen=True)
class Grid:
    """An axis-aligned LPS grid: voxel centres ``origin + index * spacing`` (x, y, z)."""

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    size: tuple[int, int, int]  # (nx, ny, nz)

    def axis(self, i: int, supersample: int = 1) -> np.ndarray:
        """Sub-sample centres along axis i (x=0, y=1, z=2)."""
        n, sp, o = self.size[i], self.spacing[i], self.origin[i]
        offs = (np.arange(supersample) + 0.5) / supersample - 0.5
        return (o + (np.arange(n)[:, None] + offs[None, :]) * sp).ravel()

    def empty_image(self, pixel: int = sitk.sitkFloat32) -> sitk.Image:
        img = sitk.Image(list(self.size), pixel)
        img.SetOrigin(self.origin)
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
        lut_w[code], lut_f[code] = t.pd * (1 - t.ff) * SIGNAL_SCALE, t.pd * t.ff * SIGNAL_SCALE
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
        blocks = codes.reshape(k1 - k0, s, ny, s, nx, s).transpose(0, 2, 4, 1, 3, 5)
        blocks = blocks.reshape(k1 - k0, ny, nx, s**3)
        water[k0:k1] = lut_w[blocks].mean(-1)
        fat[k0:k1] = lut_f[blocks].mean(-1)
        labels[k0:k1] = _block_mode_label(blocks, k0)
        bc = anatomy.body_comp_code(codes, zs[:, None, None])
        bc_counts += np.bincount(bc.ravel(), minlength=bc_counts.size)
        bc_blocks = bc.reshape(k1 - k0, s, ny, s, nx, s).transpose(0, 2, 4, 1, 3, 5)
        body_comp[k0:k1] = _block_mode_label(bc_blocks.reshape(k1 - k0, ny, nx, s**3), k0)
    fine_voxel_ml = float(np.prod(grid.spacing)) / s**3 / 1000.0
    volume_ml = {i: float(counts[i]) * fine_voxel_ml for i in range(1, 41)}
    bc_volume_ml = {i: float(bc_counts[i]) * fine_voxel_ml for i in BODY_COMP_IDS.values()}
    return Rendered(labels, water, fat, volume_ml, body_comp, bc_volume_ml)


def _paint_chunk(anatomy: Anatomy, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Tissue codes (z, y, x) on the sub-sample grid of one chunk."""
    z3, y3, x3 = zs[:, None, None], ys[None, :, None], xs[None, None, :]
    codes = anatomy.body.codes(x3, y3, z3)
    inner = (codes == SOFT_TISSUE) | (codes == THIGH_MUSCLE)
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


@dataclass
class PhantomParticipant:
    """One synthetic participant: whole-body truth, noisy stations, truth rows."""

    participant_id: str
    preset: Preset
    labels: sitk.Image
    reference: dict[str, sitk.Image]
    stations: dict[str, list[sitk.Image]]
    truth: list[dict[str, object]]
    #: body-composition truth: class map (`BODY_COMP_LABELS` ids) and one row per class
    body_comp: sitk.Image | None = None
    body_comp_truth: list[dict[str, object]] = field(default_factory=list)


def participant_id_for(index: int) -> str:
    """UK Biobank-like 7-digit eid for the index-th phantom participant."""
    return f"{1000001 + index:07d}"


def station_slices(nz: int, n_stations: int, overlap: int) -> list[tuple[int, int]]:
    """[start, stop) slice ranges of ``n_stations`` stations covering nz slices, each pair of
    neighbours sharing at least ``overlap`` slices."""
    length = math.ceil((nz + (n_stations - 1) * overlap) / n_stations)
    starts = np.round(np.linspace(0, nz - length, n_stations)).astype(int)
    return [(int(a), int(a) + length) for a in starts]


def dixon_channels(water: np.ndarray, fat: np.ndarray) -> dict[str, np.ndarray]:
    """Noise-free magnitude Dixon channels from water and fat signal."""
    return {"in": water + fat, "opp": np.abs(water - fat), "w": water, "f": fat}


def noisy_channels(
    water: np.ndarray, fat: np.ndarray, *, snr: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Magnitude Dixon channels with complex Gaussian noise (sigma = SIGNAL_SCALE / snr).

    Each channel gets its own noise realisation (magnitude images, Rician statistics).
    """
    sigma = SIGNAL_SCALE / snr
    complex_signal = {"in": water + fat, "opp": water - fat, "w": water, "f": fat}
    out = {}
    for ch in CHANNELS:
        re = complex_signal[ch] + rng.normal(0.0, sigma, water.shape)
        im = rng.normal(0.0, sigma, water.shape)
        out[ch] = np.hypot(re, im).astype(np.float32)
    return out


def _image(arr: np.ndarray, grid: Grid, z_start: int = 0) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    o = grid.origin
    img.SetOrigin((o[0], o[1], o[2] + z_start * grid.spacing[2]))
    img.SetSpacing(grid.spacing)
    return img


def render_participant(rng: np.random.Generator, preset: Preset) -> tuple[Anatomy, Grid, Rendered]:
    """Draw an anatomy from ``rng`` and paint it on the preset's whole-body grid."""
    anatomy = make_anatomy(rng)
    grid = body_grid(preset, anatomy.body.neck_z / 965.0)
    return anatomy, grid, render(anatomy, grid, supersample=preset.supersample)


def make_participant(
    seed: int, index: int, preset: str | Preset = "mini", *, snr: float = 20.0
) -> PhantomParticipant:
    """Build participant ``index`` of the cohort drawn with ``seed`` (deterministic).

    Parameters
    ----------
    seed, index
        The participant's random stream is ``np.random.default_rng([seed, index])``.
    preset
        A key of :data:`PRESETS` or a :class:`Preset`.
    snr
        Signal-to-noise ratio: noise sigma = signal of a proton density 1 tissue / snr.
    """
    pre = PRESETS[preset] if isinstance(preset, str) else preset
    rng = np.random.default_rng([seed, index])
    anatomy, grid, rendered = render_participant(rng, pre)
    reference = {
        ch: _image(a.astype(np.float32), grid)
        for ch, a in dixon_channels(rendered.water, rendered.fat).items()
    }
    stations: dict[str, list[sitk.Image]] = {ch: [] for ch in CHANNELS}
    for a, b in station_slices(grid.size[2], pre.n_stations, pre.overlap_slices):
        noisy = noisy_channels(rendered.water[a:b], rendered.fat[a:b], snr=snr, rng=rng)
        for ch in CHANNELS:
            stations[ch].append(_image(noisy[ch], grid, a))
    pid = participant_id_for(index)
    truth = truth_rows(pid, anatomy, rendered.volume_ml)
    return PhantomParticipant(
        pid,
        pre,
        _image(rendered.labels, grid),
        reference,
        stations,
        truth,
        body_comp=_image(rendered.body_comp, grid),
        body_comp_truth=body_comp_truth_rows(pid, anatomy, rendered.body_comp_volume_ml),
    )


def body_comp_truth_rows(
    participant_id: str, anatomy: Anatomy, volume_ml: dict[int, float]
) -> list[dict[str, object]]:
    """One row per body-composition class: volume (fine sub-sample count) and fat fraction.

    Classes the phantom does not model (visceral fat, abdominal wall muscles) have volume 0
    and no fat fraction.
    """
    ff = anatomy.tissues[SUBCUT_FAT].ff
    return [
        {
            "participant_id": participant_id,
            "label_id": lab.id,
            "label_name": lab.name,
            "volume_ml": volume_ml.get(lab.id, 0.0),
            "fat_fraction": ff if volume_ml.get(lab.id, 0.0) > 0 else math.nan,
        }
        for lab in BODY_COMP_LABELS.values()
    ]


def truth_rows(
    participant_id: str, anatomy: Anatomy, volume_ml: dict[int, float]
) -> list[dict[str, object]]:
    """One row per label present in the phantom: volume, fat fraction, iliac tortuosity."""
    rows: list[dict[str, object]] = []
    for label_id in sorted({lid for lid, _ in anatomy.solids}):
        row: dict[str, object] = {
            "participant_id": participant_id,
            "label_id": label_id,
            "label_name": label_name(label_id),
            "volume_ml": volume_ml[label_id],
            "fat_fraction": anatomy.tissues[label_id].ff,
            "centerline_length_mm": math.nan,
            "chord_length_mm": math.nan,
            "tortuosity_index": math.nan,
        }
        if label_id in anatomy.iliac_centerlines:
            line = anatomy.iliac_centerlines[label_id]
            length = polyline_length(line)
            chord = float(np.linalg.norm(line[-1] - line[0]))
            row |= {
                "centerline_length_mm": length,
                "chord_length_mm": chord,
                "tortuosity_index": length / chord,
            }
        rows.append(row)
    return rows


BODY_COMP_TRUTH_COLUMNS: tuple[str, ...] = (
    "participant_id",
    "label_id",
    "label_name",
    "volume_ml",
    "fat_fraction",
)
TRUTH_COLUMNS: tuple[str, ...] = (
    "participant_id",
    "label_id",
    "label_name",
    "volume_ml",
    "fat_fraction",
    "centerline_length_mm",
    "chord_length_mm",
    "tortuosity_index",
)


#: Series descriptions of the phantom NAKO layout (Siemens-style Dixon suffixes).
NAKO_DESCRIPTIONS: dict[str, str] = {
    "in": "3D_GRE_TRA_in",
    "opp": "3D_GRE_TRA_opp",
    "w": "3D_GRE_TRA_W",
    "f": "3D_GRE_TRA_F",
    "t2": "T2_HASTE_TRA",
}
#: T2 HASTE stand-in: 2 stations, slices this many times thicker than the Dixon ones.
HASTE_STATIONS = 2
HASTE_SLICE_FACTOR = 2


def haste_stations(p: PhantomParticipant, *, snr: float = 20.0, seed: int = 0) -> list[sitk.Image]:
    """Two T2 HASTE-like stations (a stand-in: no T2 contrast model).

    The noise-free in-phase reference, resampled (linear) to ``HASTE_SLICE_FACTOR`` times
    thicker slices, cut into ``HASTE_STATIONS`` stations overlapping by 2 slices, with
    Rician noise. Enough to exercise a second sequence with its own grid.
    """
    ref = p.reference["in"]
    sx, sy, sz = ref.GetSpacing()
    nz = (ref.GetSize()[2] - 1) // HASTE_SLICE_FACTOR + 1
    thick = sitk.Resample(
        ref,
        (*ref.GetSize()[:2], nz),
        sitk.Transform(),
        sitk.sitkLinear,
        ref.GetOrigin(),
        (sx, sy, sz * HASTE_SLICE_FACTOR),
        ref.GetDirection(),
        0.0,
        sitk.sitkFloat32,
    )
    arr = sitk.GetArrayFromImage(thick)
    rng = np.random.default_rng([seed, *p.participant_id.encode(), 2])
    out = []
    for a, b in station_slices(nz, HASTE_STATIONS, 2):
        block = arr[a:b]
        sigma = SIGNAL_SCALE / snr
        noisy = np.hypot(
            block + rng.normal(0, sigma, block.shape), rng.normal(0, sigma, block.shape)
        )
        img = sitk.GetImageFromArray(noisy.astype(np.float32))
        img.SetSpacing(thick.GetSpacing())
        img.SetDirection(thick.GetDirection())
        img.SetOrigin(thick.TransformIndexToPhysicalPoint((0, 0, a)))
        out.append(img)
    return out


def write_nako_participant(
    p: PhantomParticipant,
    out_dir: Path,
    *,
    visit: str = "1",
    fmt: str = "dicom",
    haste: bool = True,
) -> list[Path]:
    """Write one participant in the NAKO layout: ``<out>/<participant_id>/<visit>/...``.

    Parameters
    ----------
    p
        The phantom participant (its Dixon stations, any preset).
    out_dir
        Cohort folder.
    visit
        Visit folder name.
    fmt
        ``dicom``: one folder per series, ``S<series number>/<SOPInstanceUID>.dcm``, with
        the descriptions of :data:`NAKO_DESCRIPTIONS`; ``nifti``: one file per station,
        ``<description>_s<station>.nii.gz``.
    haste
        Also write the T2 HASTE stand-in (:func:`haste_stations`).

    Returns
    -------
    list of Path
        The series folders (dicom) or files (nifti) written.
    """
    from mrcohort.ids import validate_participant_id
    from mrcohort.phantoms.writers.dicom import write_series

    validate_participant_id(p.participant_id)
    validate_participant_id(visit)
    if fmt not in ("dicom", "nifti"):
        raise ValueError(f"fmt must be 'dicom' or 'nifti', got {fmt!r}")
    folder = out_dir / p.participant_id / visit
    series: list[tuple[str, int, sitk.Image]] = []  # (channel, station, image)
    for ch in CHANNELS:
        series += [(ch, k, img) for k, img in enumerate(p.stations[ch])]
    if haste:
        series += [("t2", k, img) for k, img in enumerate(haste_stations(p))]
    seed = ["mrcohort-nako", p.participant_id, visit]
    study_uid = str(generate_uid(entropy_srcs=[*seed, "study"]))
    frame_uid = str(generate_uid(entropy_srcs=[*seed, "frame"]))
    written: list[Path] = []
    for number, (ch, k, img) in enumerate(series, start=1):
        description = NAKO_DESCRIPTIONS[ch]
        if fmt == "nifti":
            written.append(write_image(img, folder / f"{description}_s{k + 1}.nii.gz"))
            continue
        target = folder / f"S{number:03d}"
        write_series(
            img,
            target,
            series_description=description,
            series_number=number,
            series_uid=str(generate_uid(entropy_srcs=[*seed, "series", ch, str(k)])),
            study_uid=study_uid,
            frame_uid=frame_uid,
            participant_id=p.participant_id,
            acquisition_time=f"{10 + k:02d}0000.000000",
        )
        written.append(target)
    return written


#: Sub-folder of a phantom cohort that holds the NAKO-layout participant folders.
NAKO_SUBDIR = "nako"


def write_participant(p: PhantomParticipant, out_dir: Path, *, layout: str) -> list[Path]:
    """Write one participant's stations and truth volumes.

    Layouts: ``ukbb`` (one field-20201 zip), ``nifti`` (one NIfTI per station), ``nako``
    (DICOM series folders below ``nako/<participant_id>/1/``, see
    :func:`write_nako_participant`). Returns the written station files (the zip, the NIfTI
    files in station order, or the NAKO series folders).
    """
    truth_dir = out_dir / "truth" / p.participant_id
    write_image(p.labels, truth_dir / "labels.nii.gz")
    if p.body_comp is not None:
        write_image(p.body_comp, truth_dir / "body_comp.nii.gz")
    for ch, img in p.reference.items():
        write_image(img, truth_dir / f"{ch}.nii.gz")
    if layout == "ukbb":
        from mrcohort.phantoms.writers.ukbb import write_ukbb_zip

        zip_path = out_dir / f"{p.participant_id}_20201_2_0.zip"
        return [write_ukbb_zip(zip_path, participant_id=p.participant_id, stations=p.stations)]
    if layout == "nifti":
        files = []
        for ch, imgs in p.stations.items():
            for k, img in enumerate(imgs):
                files.append(
                    write_image(img, out_dir / p.participant_id / f"station{k + 1}_{ch}.nii.gz")
                )
        return files
    if layout == "nako":
        # the NAKO layout treats every folder as a participant: keep the data apart from
        # truth/, truth.csv and phantom.json (ingest with --source <out>/nako)
        return write_nako_participant(p, out_dir / NAKO_SUBDIR)
    raise ValueError(f"unknown layout {layout!r} (expected 'ukbb', 'nifti' or 'nako')")


def write_cohort(
    out_dir: str | Path,
    *,
    layout: str = "ukbb",
    participants: int = 3,
    seed: int = 0,
    preset: str = "mini",
    snr: float = 20.0,
) -> Path:
    """Write a phantom cohort: stations per participant, ``truth/`` volumes, ``truth.csv``
    (MRSegmentator classes) and ``truth_body_comp.csv`` (body-composition classes).

    For ``layout="nifti"`` a generic ``manifest.csv`` (participant_id, visit, sequence,
    channel, station, path) lists every station file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth: list[dict[str, object]] = []
    body_comp_truth: list[dict[str, object]] = []
    manifest: list[dict[str, object]] = []
    for index in range(participants):
        p = make_participant(seed, index, preset, snr=snr)
        files = write_participant(p, out, layout=layout)
        truth.extend(p.truth)
        body_comp_truth.extend(p.body_comp_truth)
        if layout == "nifti":
            n = p.preset.n_stations
            for i, f in enumerate(files):
                manifest.append(
                    {
                        "participant_id": p.participant_id,
                        "visit": "2_0",
                        "sequence": "dixon",
                        "channel": CHANNELS[i // n],
                        "station": i % n + 1,
                        "path": str(f.relative_to(out)),
                    }
                )
    _write_csv(out / "truth.csv", truth, TRUTH_COLUMNS)
    _write_csv(out / "truth_body_comp.csv", body_comp_truth, BODY_COMP_TRUTH_COLUMNS)
    if manifest:
        _write_csv(
            out / "manifest.csv",
            manifest,
            ("participant_id", "visit", "sequence", "channel", "station", "path"),
        )
    meta = {
        "generator": "mrcohort.phantoms.phantom",
        "layout": layout,
        "participants": participants,
        "seed": seed,
        "preset": preset,
        "snr": snr,
    }
    (out / "phantom.json").write_text(json.dumps(meta, indent=2))
    return out


def _write_csv(path: Path, rows: list[dict[str, object]], columns: tuple[str, ...]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
