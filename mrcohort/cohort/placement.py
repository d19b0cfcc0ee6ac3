"""Place stations whose headers carry no position, from the image content.

Some exports (e.g. QMRITools' Join_1..7 demo stations) give every station the same origin.
Then the order of the stations and the number of slices consecutive stations share are
estimated here: for a candidate pair (lower, upper) and overlap ``n`` the last ``n`` slices
of ``lower`` are compared with the first ``n`` slices of ``upper`` by the normalised
cross-correlation (NCC, Pearson correlation over all voxels of the ``n`` slice pairs); the
best ``n`` per pair scores the pair, and the order is the chain through all stations with
the highest total score (exhaustive dynamic programming over subsets, Held–Karp, up to
12 stations; greedy beyond).

Assumptions (checked, else ``GRID_MISMATCH``): all stations share direction, spacing and
in-plane size, are stacked along their slice axis (SimpleITK index axis 2, the acquisition
direction), and overlap by whole slices.

Hand-written because neither SimpleITK nor scipy offers a 1D overlap search over slices of
a 3D stack; the correlation itself is numpy dot products.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from mrcohort.cohort.geometry import centre, direction
from mrcohort.errors import StitchError

__all__ = [
    "ContentPlacement",
    "apply_placement",
    "estimate_placement",
    "lacks_positions",
    "overlap_scores",
]

#: Exhaustive order search up to this many stations; greedy chaining beyond.
_MAX_EXACT = 12
#: In-plane block size for the correlation (a 2 x 2 block mean halves the cost per axis).
_MIN_PIXELS_TO_BIN = 128 * 128


@dataclass(frozen=True)
class ContentPlacement:
    """Stations stacked from their content.

    Attributes
    ----------
    order
        Indices of the input stations from the lowest to the highest along their slice
        axis (index axis 2).
    overlaps
        Slices shared by consecutive stations in ``order`` (length ``n - 1``).
    scores
        NCC of the overlapping slices at the chosen overlap (length ``n - 1``), in [-1, 1].
    """

    order: tuple[int, ...]
    overlaps: tuple[int, ...]
    scores: tuple[float, ...]


def lacks_positions(stations: Sequence[sitk.Image]) -> bool:
    """Whether two or more stations' headers all put them at the same place.

    True when every station centre lies within half the smallest slice spacing of the
    first one's: the stations cannot be ordered or overlapped from their headers.
    """
    if len(stations) < 2:
        return False
    tol = 0.5 * min(min(s.GetSpacing()) for s in stations)
    c0 = centre(stations[0])
    return all(np.linalg.norm(centre(s) - c0) <= tol for s in stations[1:])


def _check_same_grid(stations: Sequence[sitk.Image]) -> None:
    first = stations[0]
    for i, s in enumerate(stations[1:], start=1):
        same = (
            s.GetSize()[:2] == first.GetSize()[:2]
            and np.allclose(s.GetSpacing(), first.GetSpacing(), rtol=1e-5, atol=1e-6)
            and np.allclose(direction(s), direction(first), atol=1e-5)
        )
        if not same:
            raise StitchError(
                "GRID_MISMATCH",
                f"station {i}: placing by content needs one in-plane grid, direction and "
                "slice spacing for all stations",
            )


def _binned(arr: np.ndarray) -> np.ndarray:
    """Slices (z, y, x) as float64 rows, after a 2 x 2 in-plane block mean if large."""
    a = np.asarray(arr, dtype=np.float64)
    if a.shape[1] * a.shape[2] >= _MIN_PIXELS_TO_BIN:
        ny, nx = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
        a = a[:, :ny, :nx].reshape(a.shape[0], ny // 2, 2, nx // 2, 2).mean(axis=(2, 4))
    return a.reshape(a.shape[0], -1)


def overlap_scores(lower: np.ndarray, upper: np.ndarray, *, max_overlap: int) -> np.ndarray:
    """NCC of ``lower[-n:]`` against ``upper[:n]`` for n = 1 .. max_overlap.

    Parameters
    ----------
    lower, upper : ndarray, shape (z, m)
        Slices as rows (same m).
    max_overlap
        Largest overlap tried (clipped to the number of slices of either).

    Returns
    -------
    ndarray, shape (max_overlap,)
        Entry ``n - 1`` is the Pearson correlation over all voxels of the n slice pairs;
        ``-1`` where undefined (constant data).
    """
    m = min(max_overlap, len(lower), len(upper))
    out = np.full(max_overlap, -1.0)
    # sums per slice, and the dot products of every lower-top / upper-bottom slice pair
    low, up = lower[len(lower) - m :], upper[:m]
    s_low, s_up = low.sum(axis=1), up.sum(axis=1)
    q_low, q_up = (low * low).sum(axis=1), (up * up).sum(axis=1)
    cross = low @ up.T  # (m, m): cross[a, b] = <low[a], up[b]>
    width = lower.shape[1]
    for n in range(1, m + 1):
        a = np.arange(m - n, m)  # the last n slices of lower ...
        b = np.arange(n)  # ... meet the first n of upper
        count = n * width
        sx, sy = s_low[a].sum(), s_up[b].sum()
        sxx, syy = q_low[a].sum(), q_up[b].sum()
        sxy = cross[a, b].sum()
        vx, vy = sxx - sx * sx / count, syy - sy * sy / count
        if vx > 0 and vy > 0:
            out[n - 1] = (sxy - sx * sy / count) / np.sqrt(vx * vy)
    return out


def _best_chain(score: np.ndarray) -> list[int]:
    """Order maximising the sum of ``score[a, b]`` over consecutive (a, b)."""
    n = len(score)
    if n == 1:
        return [0]
    if n > _MAX_EXACT:
        return _greedy_chain(score)
    # Held-Karp over subsets: best[mask][j] = best path through mask ending at j
    full = 1 << n
    best = np.full((full, n), -np.inf)
    prev = np.full((full, n), -1, dtype=int)
    for j in range(n):
        best[1 << j, j] = 0.0
    for mask in range(full):
        for j in range(n):
            if not np.isfinite(best[mask, j]):
                continue
            for k in range(n):
                if mask & (1 << k):
                    continue
                nxt = mask | (1 << k)
                value = best[mask, j] + score[j, k]
                if value > best[nxt, k]:
                    best[nxt, k], prev[nxt, k] = value, j
    end = int(np.argmax(best[full - 1]))
    order, mask = [end], full - 1
    while prev[mask, order[-1]] >= 0:
        j = int(prev[mask, order[-1]])
        mask &= ~(1 << order[-1])
        order.append(j)
    return order[::-1]


def _greedy_chain(score: np.ndarray) -> list[int]:
    """Link the best-scoring pairs first (no station twice, no cycles)."""
    n = len(score)
    nxt: dict[int, int] = {}
    prv: dict[int, int] = {}
    pairs = sorted(itertools.permutations(range(n), 2), key=lambda p: -score[p])
    for a, b in pairs:
        if a in nxt or b in prv:
            continue
        head = a
        while head in prv:
            head = prv[head]
        if head == b:  # would close a cycle
            continue
        nxt[a], prv[b] = b, a
    start = next(i for i in range(n) if i not in prv)
    order = [start]
    while order[-1] in nxt:
        order.append(nxt[order[-1]])
    return order


def estimate_placement(
    stations: Sequence[sitk.Image],
    *,
    max_overlap_fraction: float = 0.5,
    search_order: bool = True,
) -> ContentPlacement:
    """Order and overlap of stations estimated from their content.

    Parameters
    ----------
    stations
        Station images (one channel) on one in-plane grid, stacked along index axis 2.
    max_overlap_fraction
        Largest overlap tried, as a fraction of the smaller station's slice count.
    search_order
        True: find the order too; False: keep the given order (lowest first).

    Returns
    -------
    ContentPlacement
    """
    if not stations:
        raise StitchError("NO_STATIONS", "no stations to place")
    _check_same_grid(stations)
    slabs = [_binned(sitk.GetArrayViewFromImage(s)) for s in stations]
    n = len(stations)
    depth = min(s.GetSize()[2] for s in stations)
    max_overlap = max(1, int(np.floor(max_overlap_fraction * depth)))
    table = np.full((n, n, max_overlap), -1.0)
    for i, j in itertools.permutations(range(n), 2):
        if search_order or j == i + 1:
            table[i, j] = overlap_scores(slabs[i], slabs[j], max_overlap=max_overlap)
    score = table.max(axis=2)
    order = _best_chain(score) if search_order else list(range(n))
    overlaps = tuple(int(np.argmax(table[a, b])) + 1 for a, b in itertools.pairwise(order))
    scores = tuple(float(table[a, b].max()) for a, b in itertools.pairwise(order))
    return ContentPlacement(tuple(order), overlaps, scores)


def apply_placement(
    stations: Sequence[sitk.Image], placement: ContentPlacement
) -> list[sitk.Image]:
    """Copies of the stations, in placement order, moved along their slice axis.

    The first station in ``placement.order`` keeps its origin; each next one starts
    ``size_z - overlap`` slices above the start of the one before (along index axis 2).
    Voxel values are not touched.
    """
    out: list[sitk.Image] = []
    origin = np.asarray(stations[placement.order[0]].GetOrigin(), dtype=float)
    for pos, idx in enumerate(placement.order):
        img = sitk.Image(stations[idx])  # shallow copy; SetOrigin does not touch the input
        if pos > 0:
            below = stations[placement.order[pos - 1]]
            step = direction(below)[:, 2] * below.GetSpacing()[2]
            origin = origin + step * (below.GetSize()[2] - placement.overlaps[pos - 1])
        img.SetOrigin(tuple(float(v) for v in origin))
        out.append(img)
    return out
