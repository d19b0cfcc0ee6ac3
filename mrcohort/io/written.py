"""Checking that an image file was written whole: ITK reports success for a write that a
full disk cut short (:func:`check_image_written`, used by `mrcohort.io.images.write_image`)."""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import zlib
from pathlib import Path

import SimpleITK as sitk

__all__ = ["check_image_written"]


def check_image_written(tmp: Path, img: sitk.Image, dest: Path) -> None:
    """Raise ``OSError`` unless ``tmp`` holds all of ``img``'s voxels, then fsync it.

    ITK's NIfTI writer ignores the return codes of its (gz)write and close calls: on a full
    disk it leaves an empty or cut file and reports success. A ``.nii``/``.nii.gz`` must hold
    (decompressed: gzip checks its CRC and length) the 348-byte header and every voxel byte;
    other formats must at least be non-empty. Hand-written: no library checks this.
    """
    need = img.GetNumberOfPixels() * img.GetNumberOfComponentsPerPixel()
    need *= img.GetSizeOfPixelComponent()
    nifti = tmp.name.endswith((".nii", ".nii.gz"))
    got = -1
    try:
        if tmp.name.endswith(".gz"):
            with gzip.open(tmp, "rb") as fh:
                got = 0
                while block := fh.read(1 << 22):
                    got += len(block)
        else:
            got = tmp.stat().st_size
    except (EOFError, OSError, zlib.error):
        got = -1
    if (nifti and got < need + _NIFTI1_HEADER_BYTES) or got <= 0:
        code = _why_cut_short(tmp, need)
        raise OSError(code, f"{os.strerror(code)} (the image was written incompletely)", str(dest))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())


#: A NIfTI-1 header (ITK writes no NIfTI-2).
_NIFTI1_HEADER_BYTES = 348


def _why_cut_short(tmp: Path, need: int) -> int:
    """The errno of a write cut short: asking the filesystem for the bytes names a full disk
    (``ENOSPC``) or quota (``EDQUOT``) where ``df`` cannot (quotas, parallel filesystems);
    ``EIO`` when the space is there."""
    try:
        fd = os.open(tmp, os.O_WRONLY)
    except OSError:
        return errno.EIO
    try:
        os.posix_fallocate(fd, 0, max(need, 1))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return exc.errno
        # no fallocate here (some network filesystems): judge by the free space
        return errno.ENOSPC if shutil.disk_usage(tmp.parent).free < (1 << 20) else errno.EIO
    finally:
        os.close(fd)
    return errno.EIO
