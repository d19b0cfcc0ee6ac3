"""Tests for mrcohort.io.images: plain and header-only reads, checked station reads."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mrcohort.errors import IngestError, StitchError
from mrcohort.io.images import (
    Limits,
    check_geometry,
    check_image,
    image_format,
    image_stem,
    read_grid,
    read_image,
    read_station_file,
    spacing_zyx,
    write_image,
)
from tests.builders import assert_same_grid, nifti
from tests.hostile import nifti_with_header


def volume(shape=(4, 5, 6), value: float = 1.0) -> sitk.Image:
    """float32 image of ``shape`` (z, y, x), anisotropic spacing, off-origin."""
    img = sitk.GetImageFromArray(np.full(shape, value, np.float32))
    img.SetSpacing((1.5, 1.5, 3.0))
    img.SetOrigin((1.0, -2.0, 30.0))
    return img


def code(path: Path, **kw) -> str:
    with pytest.raises(IngestError) as info:
        read_station_file(path, **kw)
    assert info.value.stage == "ingest"
    return info.value.code


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
def test_reads_3d_as_float32(tmp_path: Path, suffix: str) -> None:
    img = sitk.Cast(volume(value=7.0), sitk.sitkInt16)
    path = tmp_path / f"a{suffix}"
    sitk.WriteImage(img, str(path))
    out = read_station_file(path)
    assert out.GetPixelID() == sitk.sitkFloat32
    assert out.GetSize() == (6, 5, 4)
    np.testing.assert_allclose(out.GetSpacing(), (1.5, 1.5, 3.0))
    assert float(sitk.GetArrayViewFromImage(out).max()) == 7.0
    assert image_format(path) == {".nii.gz": "nifti", ".nii": "nifti"}.get(suffix, suffix[1:])
    assert image_stem(path) == "a"


def test_image_format_names() -> None:
    assert image_format("x/3D_GRE_TRA_W_s1.nii.gz") == "nifti"
    assert image_stem("x/3D_GRE_TRA_W_s1.nii.gz") == "3D_GRE_TRA_W_s1"
    assert image_format("x/1.2.3.4") is None
    assert image_format("x/.nii.gz") is None


def test_two_d_image(tmp_path: Path) -> None:
    path = tmp_path / "flat.nii.gz"
    sitk.WriteImage(sitk.Image(8, 8, sitk.sitkFloat32), str(path))
    assert code(path) == "BAD_DIMENSION"


def test_four_d_image(tmp_path: Path) -> None:
    path = tmp_path / "dyn.nii.gz"
    sitk.WriteImage(sitk.JoinSeries([volume(), volume()]), str(path))
    assert code(path) == "BAD_DIMENSION"


def test_four_d_with_one_volume_is_3d(tmp_path: Path) -> None:
    path = tmp_path / "one.nii.gz"
    img = volume(value=3.0)
    sitk.WriteImage(sitk.JoinSeries([img]), str(path))
    out = read_station_file(path)
    assert out.GetDimension() == 3 and out.GetSize() == img.GetSize()
    np.testing.assert_allclose(out.GetOrigin(), img.GetOrigin())


def test_vector_image(tmp_path: Path) -> None:
    path = tmp_path / "rgb.nii.gz"
    sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkVectorFloat32, 3), str(path))
    assert code(path) == "BAD_DIMENSION"


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels(tmp_path: Path, bad: float, suffix: str) -> None:
    # ITK < 6 zeroes NaN/Inf when it reads NIfTI (ITK #6575): must still be caught
    arr = np.ones((4, 5, 6), np.float32)
    arr[2, 3, 4] = bad
    path = nifti(tmp_path / f"nan{suffix}", arr)
    with pytest.raises(IngestError) as info:
        read_station_file(path)
    assert info.value.code == "NONFINITE_VOXELS"
    assert "1 NaN or infinite" in info.value.message


def test_absurd_size_refused_before_allocating(tmp_path: Path) -> None:
    # a valid 4x4x4 NIfTI whose header then claims 30000^3 voxels (108 TB as float32)
    path = nifti(tmp_path / "huge.nii", np.ones((4, 4, 4), np.float32))
    data = bytearray(path.read_bytes())
    struct.pack_into("<8h", data, 40, 3, 30000, 30000, 30000, 1, 1, 1, 1)  # dim[0..7]
    path.write_bytes(bytes(data))
    t0 = time.perf_counter()
    assert code(path) == "IMAGE_TOO_LARGE"
    assert time.perf_counter() - t0 < 1.0


def test_limits_are_configurable(tmp_path: Path) -> None:
    path = tmp_path / "a.nii.gz"
    sitk.WriteImage(volume((4, 5, 6)), str(path))
    assert code(path, limits=Limits(max_voxels=119, max_axis=100)) == "IMAGE_TOO_LARGE"
    assert code(path, limits=Limits(max_voxels=10_000, max_axis=5)) == "IMAGE_TOO_LARGE"
    read_station_file(path, limits=Limits(max_voxels=120, max_axis=6))


def test_unreadable_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "junk.nii.gz"
    path.write_bytes(b"not an image at all" * 10)
    assert code(path) == "IMAGE_UNREADABLE"
    assert code(tmp_path / "gone.nii.gz") == "FILE_NOT_FOUND"


def test_check_image_in_memory() -> None:
    assert check_image(sitk.Cast(volume(), sitk.sitkUInt8), "x").GetPixelID() == sitk.sitkFloat32
    with pytest.raises(IngestError) as info:
        check_image(sitk.Image(3, 3, sitk.sitkFloat32), "flat")
    assert info.value.code == "BAD_DIMENSION"


def test_write_and_read_back(tmp_path: Path) -> None:
    img = volume(value=2.5)
    path = write_image(img, tmp_path / "sub" / "a.nii.gz")
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.nii.gz"]  # no temp file left
    back = read_image(path)
    assert_same_grid(back, img)
    assert spacing_zyx(back) == (3.0, 1.5, 1.5)


@pytest.mark.parametrize("name", ["a.nii.gz", "a.nii"])
def test_an_image_written_incompletely_is_an_error_not_a_file(tmp_path, monkeypatch, name) -> None:
    """ITK reports success when its write was cut short (a full disk): the check finds the
    missing voxels, raises naming the file, and leaves neither the file nor a temp file."""
    import errno

    real = sitk.WriteImage

    def cut_short(img, path, **kw):
        real(img, path, **kw)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])

    monkeypatch.setattr(sitk, "WriteImage", cut_short)
    with pytest.raises(OSError) as info:
        write_image(volume(value=2.5), tmp_path / name)
    assert info.value.errno == errno.EIO and info.value.filename == str(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_read_grid_reads_the_header_only(tmp_path: Path) -> None:
    img = volume((4, 5, 6))
    img.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    path = write_image(img, tmp_path / "like.nii.gz")
    grid = read_grid(path)
    assert grid.GetPixelID() == sitk.sitkUInt8
    assert_same_grid(grid, img)
    with pytest.raises(StitchError) as info:
        read_grid(path, max_voxels=119)
    assert info.value.code == "GRID_TOO_LARGE"
    flat = nifti(tmp_path / "flat.nii.gz", np.ones((4, 3), np.float32))
    with pytest.raises(IngestError) as bad:
        read_grid(flat)
    assert bad.value.code == "BAD_DIMENSION"
    with pytest.raises(IngestError) as gone:
        read_grid(tmp_path / "gone.nii.gz")
    assert gone.value.code == "FILE_NOT_FOUND"


# --------------------------------------------------------------------------- hostile headers

_SHEARED = [[2.0, 1.5, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]]
_NAN_SFORM = [[2.0, 0.0, 0.0, 0.0], [0.0, float("nan"), 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]]


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({}, None),
        ({"pixdim": (2.0, 0.0, 3.0)}, "BAD_SPACING"),  # ITK alone would read 1 mm
        ({"pixdim": (2.0, -2.0, 3.0)}, "BAD_SPACING"),
        ({"pixdim": (float("nan"), 2.0, 3.0)}, "BAD_SPACING"),
        ({"pixdim": (2.0, 2.0, float("inf"))}, "BAD_SPACING"),
        ({"srow": _SHEARED}, "BAD_DIRECTION"),
        ({"srow": _NAN_SFORM}, "BAD_DIRECTION"),
        ({"dims": (32767, 32767, 32767)}, "IMAGE_TOO_LARGE"),
        ({"dims": (5, 4, 3000, 1, 1000)}, "BAD_DIMENSION"),
        ({"datatype": 1234}, "IMAGE_UNREADABLE"),
    ],
    ids=[
        "plain",
        "zero-spacing",
        "negative-spacing",
        "nan-spacing",
        "inf-spacing",
        "sheared",
        "nan-direction",
        "huge",
        "4d-many",
        "unknown-datatype",
    ],
)
def test_nifti_header_checked_before_voxels(
    tmp_path: Path, suffix: str, header: dict, expected: str | None
) -> None:
    path = nifti_with_header(tmp_path / f"a{suffix}", **header)
    if expected is None:
        img = read_station_file(path)
        assert img.GetSpacing() == (2.0, 2.0, 3.0) and img.GetSize() == (4, 5, 6)
        return
    started = time.perf_counter()
    assert code(path) == expected
    assert time.perf_counter() - started < 2.0  # from the header: no voxels read


def _mha_with(tmp_path: Path, line: str, value: str) -> Path:
    """A small MHA file whose header line ``line = ...`` is replaced by ``value``."""
    path = tmp_path / "a.mha"
    sitk.WriteImage(volume(), str(path), useCompression=False)
    raw = path.read_bytes()
    head, sep, data = raw.partition(b"ElementDataFile = LOCAL\n")
    lines = [
        f"{line} = {value}".encode() if ln.startswith(line.encode()) else ln
        for ln in head.split(b"\n")
    ]
    path.write_bytes(b"\n".join(lines) + sep + data)
    return path


@pytest.mark.parametrize(
    ("line", "value", "expected"),
    [
        ("ElementSpacing", "1.5 0 3", "BAD_SPACING"),
        ("ElementSpacing", "1.5 -1.5 3", "BAD_SPACING"),
        ("TransformMatrix", "1 0 0 0.5 1 0 0 0 1", "BAD_DIRECTION"),
        ("TransformMatrix", "1 0 0 1 0 0 0 0 1", "BAD_DIRECTION"),  # degenerate
    ],
)
def test_mha_header_geometry(tmp_path: Path, line: str, value: str, expected: str) -> None:
    path = _mha_with(tmp_path, line, value)
    assert code(path) == expected


def test_check_geometry_accepts_flipped_axes() -> None:
    flipped = (-1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0)
    check_geometry((0.9, 0.9, 5.0), flipped, (0.0, 0.0, 0.0), "x")
    with pytest.raises(IngestError) as info:
        check_geometry((0.9, 0.9, 5.0), (1.0,) * 9, (0.0, 0.0, 0.0), "x")
    assert info.value.code == "BAD_DIRECTION"
    with pytest.raises(IngestError) as info:
        check_geometry((0.9, 0.9, 5.0), flipped, (0.0, float("nan"), 0.0), "x")
    assert info.value.code == "IMAGE_UNREADABLE"
