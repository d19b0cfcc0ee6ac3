"""Hand-off of stitched images between the stages of a participant-visit.

The read + stitch task keeps the stitched channels in its worker process (`PreparedCache`,
bounded in bytes) and writes the channel the model reads to the store's scratch area
(``<store>/scratch/<run_id>/<key>/``: a ``.npy`` array and its exact geometry as JSON), so a
GPU worker on another node reads it from the shared store, never through the scheduler. The
measure task finds the channels in memory when it runs on the same worker (the job asks for
that), and otherwise stitches them again from the input. Scratch folders are removed when a
participant-visit ends, when its run ends, and at the start of the next run on the store.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import SimpleITK as sitk

__all__ = [
    "CACHE",
    "PreparedCache",
    "clear_scratch",
    "read_channel",
    "scratch_dir",
    "write_channel",
]

#: Stitched images a worker process keeps for its next stages (bytes).
CACHE_BYTES = 3 * 1024**3


def scratch_root(store: Path, run_id: str | None = None) -> Path:
    root = Path(store) / "scratch"
    return root / run_id if run_id else root


def scratch_dir(store: Path, run_id: str, slot: str) -> Path:
    """The scratch folder of one participant-visit of one run."""
    key = hashlib.sha256(slot.encode()).hexdigest()[:24]
    return scratch_root(store, run_id) / key


def write_channel(folder: Path, name: str, image: sitk.Image) -> Path:
    """``<folder>/<name>.npy`` and ``<name>.json`` (origin, spacing, direction: exact)."""
    folder.mkdir(parents=True, exist_ok=True)
    geometry = {
        "origin": list(image.GetOrigin()),
        "spacing": list(image.GetSpacing()),
        "direction": list(image.GetDirection()),
    }
    array = folder / f"{name}.npy"
    np.save(array, sitk.GetArrayViewFromImage(image))
    (folder / f"{name}.json").write_text(json.dumps(geometry))
    return array


def read_channel(folder: Path, name: str) -> sitk.Image:
    """The image `write_channel` wrote (``FileNotFoundError`` when it is gone)."""
    geometry = json.loads((folder / f"{name}.json").read_text())
    # memory-mapped: SimpleITK copies it once into its own buffer (no second copy)
    image = sitk.GetImageFromArray(np.load(folder / f"{name}.npy", mmap_mode="r"))
    image.SetOrigin(geometry["origin"])
    image.SetSpacing(geometry["spacing"])
    image.SetDirection(geometry["direction"])
    return image


def clear_scratch(store: Path, run_id: str | None = None) -> None:
    """Remove the scratch of one run (or all of it: no run holds the store)."""
    shutil.rmtree(scratch_root(store, run_id), ignore_errors=True)


def _nbytes(images: dict[str, sitk.Image]) -> int:
    return sum(
        img.GetNumberOfPixels()
        * img.GetNumberOfComponentsPerPixel()
        * img.GetSizeOfPixelComponent()
        for img in images.values()
    )


class PreparedCache:
    """Stitched channels by participant-visit, in this worker process, least recently used
    dropped beyond ``max_bytes`` (thread-safe: a worker runs several CPU tasks at once)."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, dict[str, sitk.Image]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, images: dict[str, sitk.Image]) -> None:
        with self._lock:
            self._items[key] = images
            self._items.move_to_end(key)
            while len(self._items) > 1 and self._size() > self.max_bytes:
                self._items.popitem(last=False)

    def get(self, key: str) -> dict[str, sitk.Image] | None:
        with self._lock:
            images = self._items.get(key)
            if images is not None:
                self._items.move_to_end(key)
            return images

    def pop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)

    def _size(self) -> int:
        return sum(_nbytes(images) for images in self._items.values())


#: This process's cache (one per worker process).
CACHE = PreparedCache()
