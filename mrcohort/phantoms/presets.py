"""Acquisition geometries of phantom cohorts (UK Biobank, NAKO and two coarse test grids)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRESETS", "Preset"]


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
