"""Synthetic fixtures with known answers, for tests and benchmarks of ``mrcohort.biomarkers``.

Everything here works in array order: arrays are ``(z, y, x)``, spacings are ``(sz, sy, sx)``
in mm and points are ``(z, y, x)`` in mm with voxel ``(k, j, i)`` centred at
``(k * sz, j * sy, i * sx)`` (origin 0). Each builder returns the analytic truth next to the
arrays:

- ellipsoids at uneven spacing (volume ``4/3 pi a b c``),
- Dixon phantoms with a known fat fraction per organ, partial volume at the organ edges and
  Rician noise at a chosen SNR,
- tubes around helical and sinusoidal centrelines with a known tortuosity index,
- vessels cut into N pieces (component counts at 6- and 26-connectivity), with dust,
- a NAKO-size 40-label participant for the speed benchmark, and two fixed "golden"
  phantoms whose biomarker values are pinned in the tests.

No library ships analytic MRI phantoms of this kind, so they are hand-written; tubes reuse
``mrcohort.phantoms.phantom.Tube`` (a KD-tree around a densified centreline).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from mrcohort.phantoms.phantom import Tube, curved_centerline, polyline_length

#: Voxel spacings (sz, sy, sx) in mm of the grids the biomarkers are validated on.
GRIDS: Mapping[str, tuple[float, float, float]] = {
    "iso1": (1.0, 1.0, 1.0),
    "ukbb": (3.0, 2.232143, 2.232143),  # UK Biobank Dixon (field 20201)
    "nako": (3.0, 1.40625, 1.40625),  # NAKO whole-body Dixon
}
#: Proton density scale of the Dixon phantoms (signal units of a pd-1 tissue).
SIGNAL = 100.0

Vec3 = tuple[float, float, float]


# ------------------------------------------------------------------ grids and solids


def voxel_centres(
    shape: Sequence[int], spacing_mm: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open (broadcastable) z, y, x voxel-centre coordinates in mm."""
    z, y, x = np.ogrid[tuple(slice(0, n) for n in shape)]
    return z * spacing_mm[0], y * spacing_mm[1], x * spacing_mm[2]


def ellipsoid_mask(
    shape: Sequence[int],
    *,
    spacing_mm: Sequence[float],
    center_mm: Vec3,
    semi_axes_mm: Vec3,
) -> np.ndarray:
    """Boolean axis-aligned ellipsoid, rasterised at voxel centres."""
    z, y, x = voxel_centres(shape, spacing_mm)
    (cz, cy, cx), (a, b, c) = center_mm, semi_axes_mm
    return ((z - cz) / a) ** 2 + ((y - cy) / b) ** 2 + ((x - cx) / c) ** 2 <= 1.0


def ellipsoid_fraction(
    shape: Sequence[int],
    *,
    spacing_mm: Sequence[float],
    center_mm: Vec3,
    semi_axes_mm: Vec3,
    supersample: int = 4,
) -> np.ndarray:
    """Fraction (0..1) of each voxel inside the ellipsoid, from ``supersample**3`` sub-samples.

    Only the bounding box of the ellipsoid is supersampled.
    """
    out = np.zeros(tuple(shape), dtype=np.float32)
    s = supersample
    box = []
    for n, sp, c, r in zip(shape, spacing_mm, center_mm, semi_axes_mm, strict=True):
        lo = max(0, math.floor((c - r) / sp) - 1)
        hi = min(n, math.ceil((c + r) / sp) + 2)
        box.append((lo, hi))
    if any(hi <= lo for lo, hi in box):
        return out
    offs = (np.arange(s) + 0.5) / s - 0.5
    axes = [
        ((np.arange(lo, hi)[:, None] + offs[None, :]) * sp).ravel()
        for (lo, hi), sp in zip(box, spacing_mm, strict=True)
    ]
    (cz, cy, cx), (a, b, c) = center_mm, semi_axes_mm
    inside = (
        ((axes[0][:, None, None] - cz) / a) ** 2
        + ((axes[1][None, :, None] - cy) / b) ** 2
        + ((axes[2][None, None, :] - cx) / c) ** 2
    ) <= 1.0
    nz, ny, nx = (hi - lo for lo, hi in box)
    frac = inside.reshape(nz, s, ny, s, nx, s).mean(axis=(1, 3, 5))
    out[tuple(slice(lo, hi) for lo, hi in box)] = frac
    return out


def ellipsoid_volume_ml(semi_axes_mm: Vec3) -> float:
    """Analytic ellipsoid volume in ml."""
    return 4.0 / 3.0 * math.pi * math.prod(semi_axes_mm) / 1000.0


def tube_mask(
    shape: Sequence[int],
    *,
    spacing_mm: Sequence[float],
    centerline_mm: np.ndarray,
    radius_mm: float,
) -> np.ndarray:
    """Boolean tube: voxel centres within ``radius_mm`` of the (z, y, x) centreline (mm).

    The ends are rounded (half-spheres around the end points).
    """
    tube = Tube(np.asarray(centerline_mm, dtype=np.float64), float(radius_mm))
    out = np.zeros(tuple(shape), dtype=bool)
    lo_mm, hi_mm = tube.bbox()
    sl = []
    for n, sp, lo, hi in zip(shape, spacing_mm, lo_mm, hi_mm, strict=True):
        a, b = max(0, math.floor(lo / sp)), min(n, math.ceil(hi / sp) + 1)
        if b <= a:
            return out
        sl.append(slice(a, b))
    z = (np.arange(sl[0].start, sl[0].stop) * spacing_mm[0])[:, None, None]
    y = (np.arange(sl[1].start, sl[1].stop) * spacing_mm[1])[None, :, None]
    x = (np.arange(sl[2].start, sl[2].stop) * spacing_mm[2])[None, None, :]
    out[tuple(sl)] = tube.contains(z, y, x)
    return out


def shape_for(extent_mm: Sequence[float], spacing_mm: Sequence[float]) -> tuple[int, int, int]:
    """Smallest grid (z, y, x) whose voxel centres cover ``[0, extent_mm]`` on every axis."""
    z, y, x = (math.ceil(e / s) + 1 for e, s in zip(extent_mm, spacing_mm, strict=True))
    return (z, y, x)


# ------------------------------------------------------------------ centrelines


@dataclass(frozen=True)
class Centerline:
    """A densely sampled analytic centreline (z, y, x) in mm and its true geometry."""

    points: np.ndarray  # (n, 3) mm, zyx
    length_mm: float
    chord_mm: float
    kind: str
    soam_rad_per_mm: float  # analytic sum-of-angles metric (see helix_soam, planar_soam)

    @property
    def tortuosity_index(self) -> float:
        return self.length_mm / self.chord_mm


def _unit(v: Sequence[float]) -> np.ndarray:
    u = np.asarray(v, dtype=np.float64)
    return u / np.linalg.norm(u)


def _frame(direction: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal frame (d, e1, e2) with d along ``direction``."""
    d = _unit(direction)
    helper = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = _unit(np.cross(d, helper))
    e2 = np.cross(d, e1)
    return d, e1, e2


def helix_centerline(
    *,
    start_mm: Vec3,
    direction: Vec3,
    radius_mm: float,
    pitch_mm: float,
    turns: float,
    n: int = 20001,
) -> Centerline:
    """Circular helix around an axis through ``start_mm`` along ``direction``.

    ``p(t) = start + (pitch t / 2 pi) d + r (cos t - 1) e1 + r sin t e2``, t in [0, 2 pi turns],
    so the curve starts exactly at ``start_mm``. For whole turns the chord is the axis length
    and TI = sqrt((2 pi r)^2 + pitch^2) / pitch.
    """
    d, e1, e2 = _frame(direction)
    t = np.linspace(0.0, 2.0 * math.pi * turns, n)[:, None]
    pts = (
        np.asarray(start_mm)
        + (pitch_mm * t / (2.0 * math.pi)) * d
        + radius_mm * (np.cos(t) - 1.0) * e1
        + radius_mm * np.sin(t) * e2
    )
    chord = float(np.linalg.norm(pts[-1] - pts[0]))
    return Centerline(pts, polyline_length(pts), chord, "helical", helix_soam(radius_mm, pitch_mm))


def helix_for_ti(
    ti: float,
    *,
    start_mm: Vec3,
    direction: Vec3,
    pitch_mm: float = 50.0,
    turns: float = 2.0,
) -> Centerline:
    """Helix of whole turns with tortuosity index ``ti`` (radius = pitch sqrt(ti^2-1) / 2 pi)."""
    if ti <= 1.0:
        raise ValueError(f"ti must be > 1, got {ti}")
    radius = pitch_mm * math.sqrt(ti * ti - 1.0) / (2.0 * math.pi)
    return helix_centerline(
        start_mm=start_mm, direction=direction, radius_mm=radius, pitch_mm=pitch_mm, turns=turns
    )


def sinusoid_centerline(
    *, start_mm: Vec3, end_mm: Vec3, amplitude_mm: float, half_waves: int, n: int = 20001
) -> Centerline:
    """``start + t (end - start) + A sin(pi k t) n`` (``mrcohort.phantoms.phantom``'s iliac shape).

    ``n`` lies in the plane of the chord and array axes 0 and 2 (z and x: coronal).
    """
    pts = curved_centerline(
        np.asarray(start_mm, dtype=np.float64),
        np.asarray(end_mm, dtype=np.float64),
        amplitude_mm=amplitude_mm,
        half_waves=half_waves,
        n=n,
    )
    chord = float(np.linalg.norm(pts[-1] - pts[0]))
    return Centerline(pts, polyline_length(pts), chord, "sinusoidal", planar_soam(pts))


def sinusoid_for_ti(ti: float, *, start_mm: Vec3, end_mm: Vec3, half_waves: int = 2) -> Centerline:
    """Sinusoidal centreline between two points whose tortuosity index is ``ti`` (root-found)."""
    if ti <= 1.0:
        raise ValueError(f"ti must be > 1, got {ti}")
    chord = float(np.linalg.norm(np.subtract(end_mm, start_mm)))

    def excess(amplitude: float) -> float:
        line = sinusoid_centerline(
            start_mm=start_mm, end_mm=end_mm, amplitude_mm=amplitude, half_waves=half_waves
        )
        return line.tortuosity_index - ti

    amplitude = brentq(excess, 1e-6, chord, xtol=1e-9)
    return sinusoid_centerline(
        start_mm=start_mm, end_mm=end_mm, amplitude_mm=amplitude, half_waves=half_waves
    )


def helix_soam(radius_mm: float, pitch_mm: float) -> float:
    """Analytic sum-of-angles metric of a circular helix in rad/mm: sqrt(kappa^2 + tau^2).

    For ``r`` and ``b = pitch / 2 pi``: kappa = r / (r^2 + b^2), tau = b / (r^2 + b^2), so the
    total angle per unit length is 1 / sqrt(r^2 + b^2).
    """
    b = pitch_mm / (2.0 * math.pi)
    return 1.0 / math.hypot(radius_mm, b)


def planar_soam(points: np.ndarray) -> float:
    """Analytic-limit SOAM of a planar curve: (integral of |curvature| ds) / length, rad/mm.

    Computed on the dense analytic samples as the total turning angle over the length.
    """
    seg = np.diff(points, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    u = seg / seg_len[:, None]
    cos = np.clip(np.einsum("ij,ij->i", u[:-1], u[1:]), -1.0, 1.0)
    return float(np.arccos(cos).sum() / seg_len.sum())


# ------------------------------------------------------------------ tortuosity cases


@dataclass(frozen=True)
class TubeCase:
    """A tube label on a grid around a known centreline."""

    labels: np.ndarray  # uint8 (z, y, x)
    spacing_mm: tuple[float, float, float]
    label_id: int
    centerline: Centerline
    radius_mm: float


#: Direction (z, y, x) of the iliac-like test tubes: mostly inferior, lateral and anterior.
ILIAC_DIRECTION: Vec3 = (-0.88, -0.18, 0.44)


def tortuous_tube(
    ti: float,
    kind: str,
    *,
    spacing_mm: Sequence[float],
    label_id: int = 16,
    radius_mm: float = 4.5,
    chord_mm: float = 100.0,
    direction: Vec3 = ILIAC_DIRECTION,
    margin_mm: float = 12.0,
) -> TubeCase:
    """An iliac-like tube (``kind`` ``"helical"`` or ``"sinusoidal"``) with true TI ``ti``.

    The chord is ``chord_mm`` long along ``direction``; helices make 2 whole turns.
    """
    d = _unit(direction)
    if kind == "helical":
        line = helix_for_ti(ti, start_mm=(0.0, 0.0, 0.0), direction=tuple(d), pitch_mm=chord_mm / 2)
    elif kind == "sinusoidal":
        line = sinusoid_for_ti(ti, start_mm=(0.0, 0.0, 0.0), end_mm=tuple(chord_mm * d))
    else:
        raise ValueError(f"kind must be 'helical' or 'sinusoidal', got {kind!r}")
    pts = line.points
    shift = margin_mm + radius_mm - pts.min(axis=0)
    pts = pts + shift
    extent = pts.max(axis=0) + radius_mm + margin_mm
    spacing = (float(spacing_mm[0]), float(spacing_mm[1]), float(spacing_mm[2]))
    shape = shape_for(extent, spacing)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[tube_mask(shape, spacing_mm=spacing, centerline_mm=pts, radius_mm=radius_mm)] = label_id
    moved = Centerline(pts, line.length_mm, line.chord_mm, line.kind, line.soam_rad_per_mm)
    return TubeCase(labels, spacing, label_id, moved, radius_mm)


# ------------------------------------------------------------------ connectivity cases


@dataclass(frozen=True)
class PiecesCase:
    """A vessel label cut into pieces, with specks of dust; truth per connectivity."""

    labels: np.ndarray
    spacing_mm: tuple[float, float, float]
    label_id: int
    n_pieces: int
    n_dust: int
    dust_mm3: float  # every speck is smaller than this, every piece larger


def vessel_in_pieces(
    n_pieces: int,
    *,
    spacing_mm: Sequence[float],
    label_id: int = 13,
    radius_mm: float = 8.0,
    length_mm: float = 160.0,
    gap_mm: float = 8.0,
    n_dust: int = 0,
    seed: int = 0,
) -> PiecesCase:
    """An oblique straight tube cut into ``n_pieces`` by slabs ``gap_mm`` thick, plus dust.

    The gaps are thicker than the largest voxel diagonal, so the pieces are separate at 6-
    and 26-connectivity alike; each dust speck is one voxel, well away from the tube and
    from each other, so it is its own component at both connectivities.
    """
    if n_pieces < 1:
        raise ValueError("n_pieces must be >= 1")
    spacing = (float(spacing_mm[0]), float(spacing_mm[1]), float(spacing_mm[2]))
    d = _unit((-0.9, 0.2, 0.38))
    margin = radius_mm + 20.0
    start = np.array([margin, margin, margin]) + np.maximum(0.0, -d * length_mm)
    end = start + d * length_mm
    extent = np.maximum(start, end) + margin
    shape = shape_for(extent, spacing)
    line = np.linspace(start, end, 401)
    mask = tube_mask(shape, spacing_mm=spacing, centerline_mm=line, radius_mm=radius_mm)
    z, y, x = voxel_centres(shape, spacing)
    along = (z - start[0]) * d[0] + (y - start[1]) * d[1] + (x - start[2]) * d[2]
    for k in range(1, n_pieces):
        centre = length_mm * k / n_pieces
        mask &= np.abs(along - centre) > gap_mm / 2.0
    labels = np.zeros(shape, dtype=np.uint8)
    labels[mask] = label_id
    rng = np.random.default_rng(seed)
    placed = 0
    far = tube_mask(shape, spacing_mm=spacing, centerline_mm=line, radius_mm=radius_mm + 10.0)
    while placed < n_dust:
        idx = tuple(int(rng.integers(1, n - 1)) for n in shape)
        window = tuple(slice(i - 1, i + 2) for i in idx)
        if far[idx] or labels[window].any():
            continue
        labels[idx] = label_id
        placed += 1
    voxel_mm3 = math.prod(spacing)
    return PiecesCase(labels, spacing, label_id, n_pieces, n_dust, dust_mm3=2.0 * voxel_mm3)


def diagonal_chain(n_blocks: int, *, touch: str = "corner", label_id: int = 14) -> np.ndarray:
    """``n_blocks`` 4x4x4-voxel blocks in a chain, each touching the next only diagonally.

    ``touch="corner"``: consecutive blocks share one corner (26-connected only);
    ``touch="edge"``: they share an edge (18- and 26-connected, not 6-connected). Truth: one
    component at 26-connectivity, ``n_blocks`` at 6-connectivity. Spacing does not matter.
    """
    if touch not in ("corner", "edge"):
        raise ValueError("touch must be 'corner' or 'edge'")
    step = np.array([4, 4, 4]) if touch == "corner" else np.array([4, 4, 0])
    shift = np.array([0, 0, 2]) if touch == "edge" else np.zeros(3, dtype=int)
    size = 2 + 4 * n_blocks + 2
    labels = np.zeros((size, size, size + 2 * n_blocks), dtype=np.uint8)
    for k in range(n_blocks):
        lo = 2 + k * step + k * shift
        labels[lo[0] : lo[0] + 4, lo[1] : lo[1] + 4, lo[2] : lo[2] + 4] = label_id
    return labels


# ------------------------------------------------------------------ Dixon phantoms


@dataclass(frozen=True)
class Organ:
    """An ellipsoidal organ of a Dixon phantom: label, geometry (zyx mm), tissue."""

    label_id: int
    center_mm: Vec3
    semi_axes_mm: Vec3
    ff: float
    pd: float = 0.8


@dataclass(frozen=True)
class DixonPhantom:
    """Label map and magnitude Dixon images with analytic truth."""

    labels: np.ndarray  # uint8
    fat: np.ndarray  # float32
    water: np.ndarray  # float32
    in_phase: np.ndarray  # float32
    opposed_phase: np.ndarray  # float32
    spacing_mm: tuple[float, float, float]
    truth_ff: dict[int, float]
    truth_volume_ml: dict[int, float]
    extra: dict[str, object] = field(default_factory=dict)


def _rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    re = signal + rng.normal(0.0, sigma, signal.shape)
    im = rng.normal(0.0, sigma, signal.shape)
    return np.hypot(re, im).astype(np.float32)


def dixon_phantom(
    organs: Sequence[Organ],
    *,
    spacing_mm: Sequence[float],
    shape: Sequence[int],
    snr: float = 20.0,
    seed: int = 0,
    background: tuple[float, float] = (0.9, 0.9),
    supersample: int = 4,
) -> DixonPhantom:
    """Ellipsoidal organs in a fatty background with partial volume and Rician noise.

    Each voxel mixes the tissues by the fraction of its volume they occupy (``supersample**3``
    sub-samples; later organs displace earlier ones): ``W = sum f_i pd_i (1 - ff_i)``,
    ``F = sum f_i pd_i ff_i``, times `SIGNAL`. A voxel is labelled with the (last) organ
    containing its centre: centre sampling counts voxels without bias (thresholding the
    partial-volume fraction at 0.5 would shrink convex organs by up to ~1% on a 3 mm grid).
    Every channel (W, F, in-phase ``W + F``, opposed-phase ``W - F``) gets its own complex
    Gaussian noise with sigma ``SIGNAL / snr`` and is then taken as a magnitude, as on a
    scanner (so ``snr`` is the SNR of a pd-1 tissue's in-phase signal). ``background`` is
    the (pd, ff) of the surrounding tissue; the default is fat-like, so edge voxels are
    strongly biased and erosion matters.

    Truth: ``truth_ff`` is each organ's fat fraction; ``truth_volume_ml`` the analytic
    volume of the visible (not displaced) part, from the supersampled fractions.
    """
    spacing = (float(spacing_mm[0]), float(spacing_mm[1]), float(spacing_mm[2]))
    shape3 = tuple(int(n) for n in shape)
    bg_pd, bg_ff = background
    remaining = np.ones(shape3, dtype=np.float32)
    fracs: list[np.ndarray] = []
    for organ in reversed(organs):  # later organs win: paint them first
        frac = ellipsoid_fraction(
            shape3,
            spacing_mm=spacing,
            center_mm=organ.center_mm,
            semi_axes_mm=organ.semi_axes_mm,
            supersample=supersample,
        )
        frac = np.minimum(frac, remaining)
        remaining -= frac
        fracs.append(frac)
    fracs.reverse()
    water = remaining * bg_pd * (1.0 - bg_ff)
    fat = remaining * bg_pd * bg_ff
    labels = np.zeros(shape3, dtype=np.uint8)
    voxel_ml = math.prod(spacing) / 1000.0
    truth_volume: dict[int, float] = {}
    for organ, frac in zip(organs, fracs, strict=True):
        water = water + frac * organ.pd * (1.0 - organ.ff)
        fat = fat + frac * organ.pd * organ.ff
        labels[
            ellipsoid_mask(
                shape3,
                spacing_mm=spacing,
                center_mm=organ.center_mm,
                semi_axes_mm=organ.semi_axes_mm,
            )
        ] = organ.label_id
        truth_volume[organ.label_id] = float(frac.sum(dtype=np.float64)) * voxel_ml
    water = water * SIGNAL
    fat = fat * SIGNAL
    rng = np.random.default_rng(seed)
    sigma = SIGNAL / snr
    return DixonPhantom(
        labels=labels,
        fat=_rician(fat, sigma, rng),
        water=_rician(water, sigma, rng),
        in_phase=_rician(water + fat, sigma, rng),
        opposed_phase=_rician(water - fat, sigma, rng),
        spacing_mm=spacing,
        truth_ff={o.label_id: o.ff for o in organs},
        truth_volume_ml=truth_volume,
    )


#: Organs (>= 50 ml, not overlapping) of the FF/volume validation phantom, (z, y, x) mm in a
#: 200 mm cube. pd = 1, so the phantom's ``snr`` is each organ's in-phase SNR.
VALIDATION_ORGANS: tuple[Organ, ...] = (
    Organ(5, (100.0, 70.0, 62.0), (55.0, 48.0, 44.0), ff=0.05, pd=1.0),  # liver ~486 ml
    Organ(1, (60.0, 130.0, 150.0), (30.0, 24.0, 22.0), ff=0.02, pd=1.0),  # spleen ~66 ml
    Organ(3, (140.0, 140.0, 150.0), (38.0, 22.0, 20.0), ff=0.15, pd=1.0),  # kidney ~70 ml
    Organ(33, (110.0, 150.0, 60.0), (50.0, 25.0, 26.0), ff=0.30, pd=1.0),  # iliopsoas ~136 ml
    Organ(35, (150.0, 60.0, 150.0), (28.0, 34.0, 30.0), ff=0.55, pd=1.0),  # gluteus ~120 ml
)


def validation_dixon_phantom(
    grid: str | Sequence[float], *, snr: float = 20.0, seed: int = 0
) -> DixonPhantom:
    """The five-organ Dixon phantom (`VALIDATION_ORGANS`) on a named grid or spacing."""
    spacing = GRIDS[grid] if isinstance(grid, str) else tuple(grid)
    shape = shape_for((200.0, 200.0, 200.0), spacing)
    return dixon_phantom(VALIDATION_ORGANS, spacing_mm=spacing, shape=shape, snr=snr, seed=seed)


# ------------------------------------------------------------------ golden and benchmark


def golden_phantom(which: int) -> DixonPhantom:
    """One of two fixed phantoms whose biomarker values are pinned in the tests.

    ``1``: UK Biobank grid, SNR 20: liver, spleen, a muscle, a sinusoidal left iliac
    artery (TI 1.25), a helical right iliac artery (TI 1.4), an aorta cut in two pieces.
    ``2``: NAKO grid, SNR 30: the same organs in other sizes, the iliac kinds swapped.
    """
    if which not in (1, 2):
        raise ValueError("which must be 1 or 2")
    spacing = GRIDS["ukbb"] if which == 1 else GRIDS["nako"]
    scale = 1.0 if which == 1 else 0.9
    organs = [
        Organ(5, (110.0, 90.0, 80.0), (60 * scale, 50 * scale, 45 * scale), ff=0.08, pd=0.75),
        Organ(1, (100.0, 150.0, 190.0), (35 * scale, 25.0, 22.0), ff=0.03, pd=0.85),
        Organ(36, (60.0, 170.0, 90.0), (30.0, 22 * scale, 35.0), ff=0.12, pd=0.65),
    ]
    shape = shape_for((240.0, 220.0, 240.0), spacing)
    ph = dixon_phantom(
        organs, spacing_mm=spacing, shape=shape, snr=20.0 if which == 1 else 30.0, seed=which
    )
    labels = ph.labels.copy()
    kinds = ("sinusoidal", "helical") if which == 1 else ("helical", "sinusoidal")
    tis = (1.25, 1.4) if which == 1 else (1.15, 1.3)
    lines: dict[int, Centerline] = {}
    starts = {16: (150.0, 40.0, 150.0), 17: (150.0, 40.0, 30.0)}
    for (lid, start), kind, ti in zip(starts.items(), kinds, tis, strict=True):
        d = _unit((-0.9, 0.1, 0.42 if lid == 16 else -0.1))
        if kind == "helical":
            line = helix_for_ti(ti, start_mm=start, direction=tuple(d), pitch_mm=40.0)
        else:
            line = sinusoid_for_ti(ti, start_mm=start, end_mm=tuple(np.add(start, 80.0 * d)))
        labels[tube_mask(shape, spacing_mm=spacing, centerline_mm=line.points, radius_mm=4.5)] = lid
        lines[lid] = line
    aorta = np.linspace([230.0, 30.0, 120.0], [160.0, 30.0, 120.0], 101)
    tube = tube_mask(shape, spacing_mm=spacing, centerline_mm=aorta, radius_mm=9.0)
    z = voxel_centres(shape, spacing)[0]
    tube &= np.abs(z - 195.0) > 5.0
    labels[tube] = 13
    return DixonPhantom(
        labels,
        ph.fat,
        ph.water,
        ph.in_phase,
        ph.opposed_phase,
        spacing,
        ph.truth_ff,
        ph.truth_volume_ml,
        extra={"centerlines": lines, "aorta_pieces": 2},
    )


def benchmark_participant(
    shape: Sequence[int] = (316, 260, 320),
    *,
    spacing_mm: Sequence[float] = GRIDS["nako"],
    seed: int = 0,
) -> DixonPhantom:
    """A NAKO-size label map holding all 40 MRSegmentator labels, with Dixon images.

    Organs, bones and muscles are ellipsoids on a jittered lattice inside an elliptic body
    cylinder; the vessels (ids 13-19) are long tubes. Made for timing, not anatomy:
    sizes and positions are plausible in volume, not in layout. Images are built without
    partial volume (fast) but with Rician noise at SNR 20.
    """
    spacing = (float(spacing_mm[0]), float(spacing_mm[1]), float(spacing_mm[2]))
    shape3 = tuple(int(n) for n in shape)
    ext = [n * s for n, s in zip(shape3, spacing, strict=True)]
    rng = np.random.default_rng(seed)
    _, y, x = voxel_centres(shape3, spacing)
    body = ((y - ext[1] / 2) / (0.42 * ext[1])) ** 2 + ((x - ext[2] / 2) / (0.45 * ext[2])) ** 2
    body_mask = np.broadcast_to(body <= 1.0, shape3)
    labels = np.zeros(shape3, dtype=np.uint8)
    vessel_ids = (13, 14, 15, 16, 17, 18, 19)
    others = [i for i in range(1, 41) if i not in vessel_ids]
    nzl, nyl, nxl = 6, 3, 2  # lattice cells for the 33 ellipsoids
    cells = [(a, b, c) for a in range(nzl) for b in range(nyl) for c in range(nxl)]
    for lid, (a, b, c) in zip(others, cells, strict=False):
        cz = (a + 0.5) / nzl * ext[0] + rng.uniform(-10, 10)
        cy = ext[1] * (0.2 + 0.6 * (b + 0.5) / nyl)
        cx = ext[2] * (0.15 + 0.7 * (c + 0.5) / nxl)
        semi = (rng.uniform(45, 75), rng.uniform(25, 45), rng.uniform(35, 60))
        blob = ellipsoid_mask(shape3, spacing_mm=spacing, center_mm=(cz, cy, cx), semi_axes_mm=semi)
        labels[blob] = lid
    for k, lid in enumerate(vessel_ids):
        x0 = ext[2] * (0.3 + 0.06 * k)
        start = (ext[0] * 0.95, ext[1] * 0.55, x0)
        end = (ext[0] * 0.2, ext[1] * 0.45, x0 + 30.0)
        line = sinusoid_centerline(start_mm=start, end_mm=end, amplitude_mm=12.0, half_waves=2)
        labels[tube_mask(shape3, spacing_mm=spacing, centerline_mm=line.points, radius_mm=6.0)] = (
            lid
        )
    labels[~body_mask] = 0
    ff_of = rng.uniform(0.02, 0.3, 41)
    ff_of[0] = 0.9
    pd_of = rng.uniform(0.5, 1.0, 41)
    pd_of[0] = 0.9
    pd = np.where(body_mask, pd_of[labels], 0.0)
    water = (pd * (1.0 - ff_of[labels]) * SIGNAL).astype(np.float32)
    fat = (pd * ff_of[labels] * SIGNAL).astype(np.float32)
    sigma = SIGNAL / 20.0
    return DixonPhantom(
        labels=labels,
        fat=_rician(fat, sigma, rng),
        water=_rician(water, sigma, rng),
        in_phase=_rician(water + fat, sigma, rng),
        opposed_phase=_rician(water - fat, sigma, rng),
        spacing_mm=spacing,
        truth_ff={i: float(ff_of[i]) for i in range(1, 41)},
        truth_volume_ml={},
    )
