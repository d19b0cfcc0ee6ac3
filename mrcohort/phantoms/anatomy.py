"""One phantom participant's anatomy: body surface, labelled solids and their tissues.

The body is a neck, a torso and two thighs with elliptic cross-sections and a layer of
subcutaneous fat; organs, muscles and vessels are solids (:mod:`mrcohort.phantoms.shapes`)
carrying their MRSegmentator label id and a tissue (proton density, fat fraction). Sizes,
positions and tissues are drawn per participant (:func:`make_anatomy`).

World coordinates are LPS in mm: +x = patient left, +y = posterior, +z = superior. z = 0 is
knee level; the neck is at about 1000 mm (scaled per participant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mrcohort.labels import BODY_COMP_LABELS, MRSEG_IDS
from mrcohort.phantoms.shapes import Ellipsoid, EllipticCylinder, Solid, Tube, curved_centerline
from mrcohort.phantoms.signal import Tissue

__all__ = [
    "BODY_COMP_IDS",
    "N_CODES",
    "SOFT_TISSUE",
    "SUBCUT_FAT",
    "THIGH_MUSCLE",
    "Anatomy",
    "Body",
    "is_inside_fat_layer",
    "make_anatomy",
]

# Tissue codes for unlabeled tissue (labels use 1..40, air is 0).
SOFT_TISSUE = 41
SUBCUT_FAT = 42
THIGH_MUSCLE = 43
N_CODES = 44
#: Body-composition class name -> id.
BODY_COMP_IDS = {lab.name: lab.id for lab in BODY_COMP_LABELS.values()}


def is_inside_fat_layer(codes: np.ndarray) -> np.ndarray:
    """Where tissue codes are inside the subcutaneous fat layer (where solids may be painted)."""
    return (codes == SOFT_TISSUE) | (codes == THIGH_MUSCLE)


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
