"""``mrcohort segment``: segment image files (or every image file of folders) with one model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrcohort.cli.common import (
    BodyCompOption,
    CpuOption,
    ModelOption,
    device_for,
    fail,
    model_folder,
    out_console,
    progress_bar,
)


def segment(
    images: Annotated[
        list[Path],
        typer.Argument(
            help="Images to segment (NIfTI, MHA, NRRD), or folders: every image file in them."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder for <name>_seg.nii.gz.")],
    model: ModelOption = "demo",
    body_comp: BodyCompOption = False,
    folds: Annotated[list[int] | None, typer.Option(help="Folds to use (default: all).")] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="First fold only, step 0.8, no mirroring.")
    ] = False,
    cpu: CpuOption = False,
) -> None:
    """Segment images with a model loaded once; writes <image name>_seg.nii.gz per input."""
    from mrcohort.io.images import image_stem, read_station_file, write_image
    from mrcohort.segmentation.model import InferenceSettings, fast_settings, load_model_folder
    from mrcohort.segmentation.predictor import Segmenter

    paths = expand_folders(images)
    names = [image_stem(p) for p in paths]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise fail(f"several inputs would write the same output: {', '.join(clashes)}_seg.nii.gz")
    chosen = tuple(folds) if folds else None
    folder = model_folder(model, body_comp)
    settings = (
        fast_settings(load_model_folder(folder, chosen)) if fast else InferenceSettings(chosen)
    )
    seg = Segmenter.load(folder, settings, device=device_for(cpu))
    with progress_bar() as progress:
        bar = progress.add_task("segmenting", total=len(paths))
        for path, name in zip(paths, names, strict=True):
            # checked read: 2D/4D, absurd sizes, NaN/Inf -> one-line error, exit 2
            write_image(seg.segment(read_station_file(path)), out / f"{name}_seg.nii.gz")
            progress.advance(bar)
    out_console.print(
        f"wrote {len(paths)} segmentations to {out} (model_key {seg.model_key})", highlight=False
    )


def expand_folders(paths: list[Path]) -> list[Path]:
    """The image files to segment: files as given, and for a folder every image file directly
    in it (:func:`mrcohort.io.images.image_format` knows its ending; not recursive, sorted).

    Fails (one line, exit 2) on a path that does not exist and on a folder with no image file.
    """
    from mrcohort.io.images import image_format

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"input image(s) not found: {', '.join(missing)}")
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(p for p in path.iterdir() if p.is_file() and image_format(p) is not None)
        if not found:
            raise fail(
                f"folder {path} holds no image files (.nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr)"
            )
        files.extend(found)
    return files
