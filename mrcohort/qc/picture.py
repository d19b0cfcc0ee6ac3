"""The QC picture of one participant-visit: PNG bytes from arrays (no files, no logging).

A coronal and an axial slice of the stitched image (grey, windowed by percentiles) with the
segmentation on top (each label in its fixed colour, outlined), the station seams as dashed
lines on the coronal view, where each view's slice lies marked on the other, a legend of the
labels present, orientation letters, a 100 mm scale bar and a title. Drawn to physical
proportions (voxel spacing).

Arrays are in LPS index order, ``(z, y, x)`` = (inferior -> superior, anterior -> posterior,
right -> left), as ``sitk.GetArrayFromImage(sitk.DICOMOrient(img, "LPS"))`` gives them; views
are shown the radiological way (the patient's right on the left of the picture).

matplotlib's object-oriented API on an Agg canvas only (no pyplot and its global state), so
workers may draw in several threads at once.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["label_colour", "pick_slices", "qc_picture"]

#: Resolution of the PNG (dots per inch; the figure is about 9.5 x 9 inches).
DPI = 100
#: Opacity of a label's inside and of its outline.
FILL_ALPHA, EDGE_ALPHA = 0.35, 0.95
#: Percentiles of the image values shown (non-zero voxels of the two slices) mapped to
#: black and white; black is 0 instead for images without negative values (magnitude).
WINDOW_PERCENTILES = (0.5, 99.5)
_BACKGROUND, _TEXT, _MUTED, _MARK = "#101010", "#f0f0f0", "#8a8a8a", "#ffd400"
_DASHES = (0, (4, 3))
_HEIGHT_IN, _MARGIN_IN, _TITLE_IN, _GAP_IN = 9.0, 0.2, 0.55, 0.3
_MAX_CORONAL_WIDTH_IN, _RIGHT_WIDTH_IN = 5.0, 4.6


@functools.cache
def _palette() -> tuple[tuple[float, float, float], ...]:
    """tab10's saturated colours, their light tab20 partners shifted by one (so that
    MRSegmentator's spleen and left lung, liver and vena cava differ in hue), then tab20b and
    tab20c; no greys (they vanish on a grey image)."""
    from matplotlib import colormaps

    tab20 = colormaps["tab20"].colors
    greys = {tab20[14], tab20[15]}
    light = [c for c in tab20[1::2] if c not in greys]
    colours = [c for c in tab20[0::2] if c not in greys] + light[1:] + light[:1]
    colours += list(colormaps["tab20b"].colors) + list(colormaps["tab20c"].colors[:16])
    return tuple(tuple(float(v) for v in c[:3]) for c in colours)  # type: ignore[misc]


def label_colour(label_id: int) -> tuple[float, float, float]:
    """The fixed RGB colour (0-1) of a label id: the same in every picture of every run."""
    palette = _palette()
    return palette[(int(label_id) - 1) % len(palette)]


def _centre(counts: np.ndarray) -> int | None:
    """Index of the weighted mean of ``counts`` along its axis, None when all are 0."""
    total = counts.sum()
    if total == 0:
        return None
    return round(float(np.arange(len(counts)) @ counts) / float(total))


def pick_slices(labels: np.ndarray, *, centre_label: int | None = None) -> tuple[int, int]:
    """The axial slice ``z`` and the coronal slice ``y`` a QC picture shows.

    Parameters
    ----------
    labels : ndarray of int, shape (z, y, x)
        The segmentation (0 = background), LPS index order.
    centre_label
        Axial slice through this label's centre of mass when it is present (e.g. the
        liver), else through the centre of all labels.

    Returns
    -------
    (z, y)
        ``z``: the centre (along z) of ``centre_label``, else of all labelled voxels;
        ``y``: the centre (along y) of all labelled voxels, a coronal plane through the
        middle of the segmented body. The middle of the array where nothing is labelled.
    """
    nz, ny, _ = labels.shape
    labelled = labels > 0
    y = _centre(labelled.sum(axis=(0, 2)))
    y = ny // 2 if y is None else y
    z = None
    if centre_label is not None:
        z = _centre((labels == centre_label).sum(axis=(1, 2)))
    if z is None:
        z = _centre(labelled.sum(axis=(1, 2)))
    return (nz // 2 if z is None else z), y


def _window(*slices: np.ndarray) -> tuple[float, float]:
    """Grey window: percentiles of the non-zero values of the slices (all values if none)."""
    values = np.concatenate([s.ravel() for s in slices]).astype(np.float32)
    values = values[np.isfinite(values)]
    shown = values[values != 0] if np.any(values != 0) else values
    if shown.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(shown, WINDOW_PERCENTILES)
    lo = min(float(lo), 0.0) if float(values.min()) >= 0 else float(lo)
    return lo, max(float(hi), lo + 1e-6)


def _overlay(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """RGBA (float32) of a label slice: filled labels, outlines more opaque."""
    edge = np.zeros(labels.shape, dtype=bool)
    for axis in (0, 1):
        differ = np.diff(labels, axis=axis) != 0
        lower = [slice(None)] * 2
        upper = [slice(None)] * 2
        lower[axis], upper[axis] = slice(None, -1), slice(1, None)
        edge[tuple(lower)] |= differ
        edge[tuple(upper)] |= differ
    rgba = lut[labels]
    rgba[..., 3] = np.where(labels > 0, np.where(edge, EDGE_ALPHA, FILL_ALPHA), 0.0)
    return rgba


class _Layout(NamedTuple):
    """Figure size and where things go (inches from the lower left corner)."""

    size: tuple[float, float]
    coronal: tuple[float, float, float, float]  # left, bottom, width, height
    axial: tuple[float, float, float, float]
    legend: tuple[float, float]  # its upper left corner


def _layout(extent_c: tuple[float, float], extent_a: tuple[float, float]) -> _Layout:
    """Physical proportions: the coronal view as high as the page allows (narrower than
    `_MAX_CORONAL_WIDTH_IN`), the axial view right of it, the legend below the axial view.
    Extents are (width, height) in mm."""
    panel_h = _HEIGHT_IN - _TITLE_IN - _MARGIN_IN
    w_c, h_c = panel_h * extent_c[0] / extent_c[1], panel_h
    if w_c > _MAX_CORONAL_WIDTH_IN:
        w_c, h_c = _MAX_CORONAL_WIDTH_IN, _MAX_CORONAL_WIDTH_IN * extent_c[1] / extent_c[0]
    w_a, h_a = _RIGHT_WIDTH_IN, _RIGHT_WIDTH_IN * extent_a[1] / extent_a[0]
    if h_a > 0.5 * panel_h:
        h_a, w_a = 0.5 * panel_h, 0.5 * panel_h * extent_a[0] / extent_a[1]
    top, right = _HEIGHT_IN - _TITLE_IN, _MARGIN_IN + w_c + _GAP_IN
    return _Layout(
        size=(2 * _MARGIN_IN + w_c + _GAP_IN + _RIGHT_WIDTH_IN, _HEIGHT_IN),
        coronal=(_MARGIN_IN, top - h_c, w_c, h_c),
        axial=(right + 0.5 * (_RIGHT_WIDTH_IN - w_a), top - h_a, w_a, h_a),
        legend=(right, top - h_a - 0.45),
    )


def _axes(fig, rect_in: Sequence[float], name: str):
    """A view's axes at ``rect_in`` (inches), without ticks, titled ``name``."""
    width, height = fig.get_size_inches()
    left, bottom, w, h = rect_in
    ax = fig.add_axes((left / width, bottom / height, w / width, h / height))
    ax.set_facecolor("black")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#404040")
    ax.set_title(name, color=_TEXT, fontsize=9, pad=3)
    return ax


def _letters(ax, left: str, right: str, top: str, bottom: str, *, side_at: float) -> None:
    """Orientation letters inside the view: top and bottom in the middle, left and right at
    height ``side_at`` (fraction of the view)."""
    style = {"color": _TEXT, "fontsize": 8, "transform": ax.transAxes, "path_effects": _outline()}
    ax.text(0.015, side_at, left, ha="left", va="center", **style)
    ax.text(0.985, side_at, right, ha="right", va="center", **style)
    ax.text(0.5, 0.99, top, ha="center", va="top", **style)
    ax.text(0.5, 0.01, bottom, ha="center", va="bottom", **style)


def _view(ax, image, labels, lut, extent, window: tuple[float, float], origin: str) -> None:
    """Grey image, then the labels on it, over ``extent`` (mm)."""
    ax.imshow(image, extent=extent, origin=origin, cmap="gray", vmin=window[0],
              vmax=window[1], interpolation="bilinear")  # fmt: skip
    ax.imshow(_overlay(labels, lut), extent=extent, origin=origin, interpolation="nearest")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])


def _marks(ax, width_mm: float, level_mm: float) -> None:
    """Triangles at both edges of a view at the level of the other view's slice."""
    mark = {"color": _MARK, "ms": 7, "clip_on": False, "ls": "none"}
    ax.plot([0], [level_mm], marker=">", **mark)
    ax.plot([width_mm], [level_mm], marker="<", **mark)


def _scale_bar(ax, width_mm: float, height_mm: float) -> None:
    x0, y0 = 0.04 * width_mm, 0.015 * height_mm
    ax.plot([x0, x0 + 100], [y0, y0], color=_TEXT, lw=2, path_effects=_outline(3.5))
    ax.text(x0 + 50, y0 + 0.01 * height_mm, "100 mm", color=_TEXT, fontsize=7,
            ha="center", va="bottom", path_effects=_outline())  # fmt: skip


def _seam(ax, level_mm: float) -> None:
    """A dashed line across the view, outlined so it shows on bright and dark tissue."""
    ax.axhline(level_mm, color=_TEXT, ls=_DASHES, lw=1.2, path_effects=_outline(3.0))


def _outline(width: float = 2.0) -> list:
    """A dark edge around lines and text drawn on the image."""
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=width, foreground="black")]


def _legend(fig, layout: _Layout, present, in_view, names, lut, with_seams: bool) -> None:
    """The marks, the seams and every label present; labels not in the shown slices grey."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], color=_MARK, marker=">", ls="none", ms=6, label="level of the other view")
    ]
    if with_seams:
        handles.append(
            Line2D([], [], color=_TEXT, ls=_DASHES, lw=1.2, label="station seam (stitching)")
        )
    muted = [False] * len(handles)
    for label_id in present:
        colour = tuple(lut[label_id, :3])
        name = f"{label_id} {names.get(label_id, '?')}"
        handles.append(Patch(facecolor=colour, edgecolor=colour, label=name))
        muted.append(label_id not in in_view)
    (x0, y0), (width, height) = layout.legend, layout.size
    n = len(present)
    legend = fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(x0 / width, y0 / height),
        ncols=2 if len(handles) <= 46 else 3,
        fontsize=7,
        frameon=False,
        labelcolor=_TEXT,
        handlelength=1.4,
        columnspacing=1.0,
        borderaxespad=0.0,
        title=f"{n} label{'s' * (n != 1)} present (grey: not in these slices)",
        title_fontsize=7.5,
        alignment="left",
    )
    legend.get_title().set_color(_TEXT)
    for text, grey in zip(legend.get_texts(), muted, strict=True):
        if grey:
            text.set_color(_MUTED)


def qc_picture(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    spacing_mm: Sequence[float],
    label_names: Mapping[int, str],
    title: str,
    seam_slices: Sequence[float] = (),
    centre_label: int | None = None,
    image_name: str = "",
) -> bytes:
    """The QC picture as PNG bytes.

    Parameters
    ----------
    image : ndarray, shape (z, y, x)
        The stitched image (any real dtype), LPS index order.
    labels : ndarray of int, shape (z, y, x)
        The segmentation on the same grid (0 = background).
    spacing_mm : (sz, sy, sx), mm
        Voxel spacing: the views keep physical proportions.
    label_names
        Label id -> name, for the legend (ids without a name show as ``?``).
    title
        The picture's title, e.g. ``"ukbb 1000001 visit 2_0 — model demo"``.
    seam_slices
        Station seams as continuous z indices (voxel centres at integers): dashed lines on
        the coronal view.
    centre_label
        Label the axial slice goes through (see :func:`pick_slices`).
    image_name
        What the image is (e.g. ``"water"``), shown in the view titles.

    Returns
    -------
    bytes
        A PNG (256-colour palette), 900 pixels high and about 900 wide.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if image.ndim != 3 or image.shape != labels.shape:
        raise ValueError(f"image {image.shape} and labels {labels.shape} must be one 3-D grid")
    sz, sy, sx = (float(v) for v in spacing_mm)
    if not all(np.isfinite(v) and v > 0 for v in (sz, sy, sx)):
        raise ValueError(f"spacing_mm must be three positive numbers, got {spacing_mm}")
    nz, ny, nx = image.shape
    z, y = pick_slices(labels, centre_label=centre_label)
    counts = np.bincount(np.ravel(labels).astype(np.int64, copy=False))
    present = [int(i) for i in np.flatnonzero(counts) if i > 0]
    in_view = {int(i) for i in np.unique(labels[z])} | {int(i) for i in np.unique(labels[:, y])}
    lut = np.zeros((len(counts), 4), dtype=np.float32)
    for label_id in present:
        lut[label_id, :3] = label_colour(label_id)
    window = _window(image[z], image[:, y, :])
    w_mm, h_c_mm, h_a_mm = nx * sx, nz * sz, ny * sy

    layout = _layout((w_mm, h_c_mm), (w_mm, h_a_mm))
    fig = Figure(figsize=layout.size, dpi=DPI, facecolor=_BACKGROUND)
    FigureCanvasAgg(fig)
    what = f" · {image_name}" if image_name else ""
    ax_c = _axes(fig, layout.coronal, f"coronal, slice y = {y}{what}")
    ax_a = _axes(fig, layout.axial, f"axial, slice z = {z}{what}")
    _view(ax_c, image[:, y, :], labels[:, y, :], lut, (0, w_mm, 0, h_c_mm), window, "lower")
    _view(ax_a, image[z], labels[z], lut, (0, w_mm, h_a_mm, 0), window, "upper")
    for seam in seam_slices:
        _seam(ax_c, (float(seam) + 0.5) * sz)
    _marks(ax_c, w_mm, (z + 0.5) * sz)
    _marks(ax_a, w_mm, (y + 0.5) * sy)
    _scale_bar(ax_c, w_mm, h_c_mm)
    _letters(ax_c, "R", "L", "S", "I", side_at=0.985)  # clear of the seams
    _letters(ax_a, "R", "L", "A", "P", side_at=0.5)
    _legend(fig, layout, present, in_view, label_names, lut, bool(seam_slices))
    fig.suptitle(title, color=_TEXT, fontsize=12, y=1 - 0.12 / layout.size[1], va="top")
    return _png(fig)


def _png(fig) -> bytes:
    """The drawn figure as a PNG with a 256-colour palette: a third of the RGB file's size
    (noisy grey images compress badly), no visible loss, and quicker to compress."""
    from PIL import Image

    fig.canvas.draw()
    rgb = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    out = io.BytesIO()
    rgb.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, "png")
    return out.getvalue()
