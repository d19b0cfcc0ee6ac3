"""The QC picture (`mrcohort.qc.picture`) drawn from a small synthetic volume and read back as
pixels: physical proportions, the label's colour where the label is, the seams where asked."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mrcohort.qc.picture import DPI, FILL_ALPHA, label_colour, pick_slices, qc_picture

#: (z, y, x) voxels and spacing (mm): the coronal view is 80 mm wide and 300 mm high.
SHAPE, SPACING = (60, 20, 40), (5.0, 4.0, 2.0)
DARK = 0.25  # the patient's right half (x < 20) is dark grey, the left half white
CUBE = (slice(40, 50), slice(8, 12), slice(4, 14))  # label 5 on the dark half
SEAM = 20.0


def _volume() -> tuple[np.ndarray, np.ndarray]:
    image = np.ones(SHAPE, dtype=np.float32)
    image[:, :, :20] = DARK
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[CUBE] = 5
    return image, labels


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _coronal_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel bounds of the coronal view: the first run of columns
    mostly holding the image's grey pixels (lighter than the page), and the rows mostly
    holding them there (text is too thin to count)."""
    flat = (rgb.max(axis=2) - rgb.min(axis=2)) <= 2
    shown = flat & (rgb[..., 0] >= 50)  # the page is #101010
    cols = np.flatnonzero(shown.sum(axis=0) >= 200)
    breaks = np.flatnonzero(np.diff(cols) > 1)
    left, right = cols[0], cols[breaks[0]] if len(breaks) else cols[-1]
    rows = np.flatnonzero(shown[:, left : right + 1].sum(axis=1) >= 0.5 * (right - left))
    return rows[0], rows[-1], left, right


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    image, labels = _volume()
    png = qc_picture(
        image,
        labels,
        spacing_mm=SPACING,
        label_names={5: "liver"},
        title="t 1000001 visit 2_0 — model demo",
        seam_slices=[SEAM],
        centre_label=5,
        image_name="water",
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return _pixels(png)


def test_the_png_decodes_at_the_documented_resolution(picture) -> None:
    height, width, _ = picture.shape
    assert height == 9 * DPI  # 9 inches high
    assert 500 < width < 1100


def test_the_coronal_view_keeps_physical_proportions(picture) -> None:
    top, bottom, left, right = _coronal_box(picture)
    aspect = (right - left + 1) / (bottom - top + 1)
    assert aspect == pytest.approx((40 * 2.0) / (60 * 5.0), rel=0.03)


def test_the_label_colour_is_where_the_label_is(picture) -> None:
    top, bottom, left, right = _coronal_box(picture)
    h, w = bottom - top + 1, right - left + 1
    background = np.full(3, round(DARK * 255))
    fill = FILL_ALPHA * np.asarray(label_colour(5)) * 255 + (1 - FILL_ALPHA) * background
    near = np.abs(picture - fill).max(axis=2) <= 8
    # the cube: z 40-50 of 60 (from the bottom), x 4-14 of 40 (patient's right on the left)
    z0, z1 = top + round(h * (1 - 50 / 60)), top + round(h * (1 - 40 / 60))
    x0, x1 = left + round(w * 4 / 40), left + round(w * 14 / 40)
    vz, vx = round(h / 60) + 2, round(w / 40) + 2  # inside the one-voxel outline
    inside = near[z0 + vz : z1 - vz, x0 + vx : x1 - vx]
    assert inside.mean() > 0.95
    outside = near[top:bottom, left:right].sum() - near[z0 - 1 : z1 + 1, x0 - 1 : x1 + 1].sum()
    assert outside == 0


def test_the_seam_is_a_dashed_line_at_its_slice(picture) -> None:
    top, bottom, left, right = _coronal_box(picture)
    h = bottom - top + 1
    row = top + round(h * (1 - (SEAM + 0.5) / 60))
    dark_half = slice(left + 2, left + (right - left) // 2 - 2)
    bright = picture[row - 1 : row + 2, dark_half].min(axis=2) >= 200
    assert 0.3 < bright.any(axis=0).mean() < 0.9  # dashed: bright, with gaps
    assert not (picture[row + 8, dark_half].min(axis=1) >= 200).any()  # nothing elsewhere


def test_pick_slices_centre_of_a_label_else_of_all_labels_else_the_middle() -> None:
    _, labels = _volume()
    labels[5:10, 2:4, 30:35] = 13
    assert pick_slices(labels, centre_label=5) == (44, 9)  # y: centre of all labels
    assert pick_slices(labels, centre_label=1)[0] == pick_slices(labels)[0]
    assert pick_slices(np.zeros(SHAPE, dtype=np.uint8), centre_label=5) == (30, 10)


def test_label_colours_are_fixed_distinct_and_not_grey() -> None:
    colours = [label_colour(i) for i in range(1, 41)]
    assert len(set(colours)) == 40
    assert all(max(c) - min(c) > 0.05 for c in colours)
    assert label_colour(5) == colours[4]


def test_bad_input_is_refused() -> None:
    image, labels = _volume()
    kwargs = {"label_names": {}, "title": "t"}
    with pytest.raises(ValueError, match="one 3-D grid"):
        qc_picture(image, labels[:-1], spacing_mm=SPACING, **kwargs)
    with pytest.raises(ValueError, match="spacing_mm"):
        qc_picture(image, labels, spacing_mm=(5.0, 0.0, 2.0), **kwargs)
