"""Where every label of a label map is: its voxels and bounding box, found in one pass.

Every measure needs the voxels or the bounding box of some labels. Finding them anew in each
measure means several passes over the whole map (``labels == id``, a look-up table, a
bincount) — most of the time of `measure_participant` on a whole-body grid, where the labels
fill a few percent of the voxels. `LabelIndex` finds them once: the bounding box of all
labels (three projections), the labelled voxels inside it, grouped by label in one stable
sort, and each label's bounding box. Grouping voxels by label and taking boxes from the
grouped coordinates is hand-written (numpy has no grouped min/max beyond ``reduceat``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["LabelIndex"]

Box = tuple[slice, ...]


@dataclass(frozen=True)
class LabelIndex:
    """The labelled voxels of a label map, grouped by label.

    Attributes
    ----------
    shape
        Shape of the label map.
    box
        Bounding box of every non-zero voxel; ``None`` when there is none.
    flat
        Flat (C-order) index of every non-zero voxel, ascending.
    order
        Positions into ``flat`` sorting the voxels by label; within a label in ascending
        ``flat`` order.
    values
        Label of each voxel in ``order`` (sorted).
    coords
        ``(z, y, x)`` of each voxel in ``order``, shape (3, n).
    """

    shape: tuple[int, ...]
    box: Box | None
    flat: np.ndarray
    order: np.ndarray
    values: np.ndarray
    coords: np.ndarray

    @classmethod
    def of(cls, labels: np.ndarray) -> LabelIndex:
        """Index a label map (any integer dtype; 0 is background)."""
        box = _nonzero_box(labels)
        if box is None:
            empty = np.zeros(0, dtype=np.intp)
            coords = np.zeros((labels.ndim, 0), dtype=np.intp)
            return cls(labels.shape, None, empty, empty, labels.reshape(-1)[:0], coords)
        crop = labels[box]
        local = np.flatnonzero(crop)
        coords = np.stack(np.unravel_index(local, crop.shape))
        coords += np.array([s.start for s in box], dtype=np.intp)[:, None]
        flat = np.ravel_multi_index(tuple(coords), labels.shape)
        values = crop.reshape(-1)[local]
        order = np.argsort(values, kind="stable")
        return cls(labels.shape, box, flat, order, values[order], coords[:, order])

    def span(self, label_id: int) -> tuple[int, int]:
        """``[start, stop)`` of a label's voxels in ``order`` / ``values`` / ``coords``."""
        return self._spans.get(int(label_id), (0, 0))

    @cached_property
    def _starts(self) -> np.ndarray:
        """Where each label's run starts in ``values`` (one entry per label present)."""
        if self.values.size == 0:
            return np.zeros(0, dtype=np.intp)
        return np.flatnonzero(np.r_[True, self.values[1:] != self.values[:-1]])

    @cached_property
    def _spans(self) -> dict[int, tuple[int, int]]:
        if self._starts.size == 0:
            return {}
        stops = [*self._starts[1:].tolist(), self.values.size]
        return {
            int(self.values[a]): (int(a), int(b))
            for a, b in zip(self._starts.tolist(), stops, strict=True)
        }

    def count(self, label_id: int) -> int:
        """Number of voxels of a label."""
        lo, hi = self.span(label_id)
        return hi - lo

    def positions(self, label_id: int) -> np.ndarray:
        """Positions into ``flat`` of a label's voxels, ascending."""
        lo, hi = self.span(label_id)
        return self.order[lo:hi]

    def label_box(self, label_id: int, *, pad: int = 0) -> Box | None:
        """Bounding box of a label grown by ``pad`` voxels (clipped); None when absent."""
        corners = self._corners.get(int(label_id))
        return None if corners is None else _grown(*corners, self.shape, pad)

    @cached_property
    def _corners(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Label -> inclusive (low, high) corner of its voxels, all labels in one pass."""
        starts = self._starts
        if starts.size == 0:
            return {}
        low = np.minimum.reduceat(self.coords, starts, axis=1)
        high = np.maximum.reduceat(self.coords, starts, axis=1)
        return {int(self.values[s]): (low[:, k], high[:, k]) for k, s in enumerate(starts)}

    def labels_box(self, label_ids: tuple[int, ...], *, pad: int = 0) -> Box | None:
        """Bounding box of several labels together; None when none is present."""
        boxes = [b for lid in label_ids if (b := self.label_box(lid)) is not None]
        if not boxes:
            return None
        lo = np.min([[s.start for s in b] for b in boxes], axis=0)
        hi = np.max([[s.stop - 1 for s in b] for b in boxes], axis=0)
        return _grown(lo, hi, self.shape, pad)

    def grown_box(self, pad: int) -> Box | None:
        """Bounding box of all labels grown by ``pad`` voxels (clipped)."""
        if self.box is None:
            return None
        lo = np.array([s.start for s in self.box])
        hi = np.array([s.stop - 1 for s in self.box])
        return _grown(lo, hi, self.shape, pad)


def _grown(lo: np.ndarray, hi: np.ndarray, shape: tuple[int, ...], pad: int) -> Box:
    """Slices from inclusive corners ``lo``..``hi`` grown by ``pad`` and clipped to ``shape``."""
    return tuple(
        slice(max(0, int(a) - pad), min(n, int(b) + 1 + pad))
        for a, b, n in zip(lo, hi, shape, strict=True)
    )


def _nonzero_box(labels: np.ndarray) -> Box | None:
    """Bounding box of the non-zero voxels, from one projection per axis; None if none."""
    box = []
    for axis in range(labels.ndim):
        other = tuple(a for a in range(labels.ndim) if a != axis)
        hit = np.flatnonzero(labels.any(axis=other))
        if hit.size == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)
