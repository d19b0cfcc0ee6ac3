"""``mrcohort phantom`` and ``mrcohort train-demo-model``: test data and the demo models."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mrcohort.cli.common import Layout, console, out_console

#: Layout name of the phantom writer (:func:`mrcohort.phantoms.write_cohort`) per layout.
_WRITER_LAYOUT = {Layout.ukbb: "ukbb", Layout.nako: "nako", Layout.manifest: "nifti"}


class PresetName(str, Enum):
    """Acquisition geometry of a phantom cohort (:data:`mrcohort.phantoms.PRESETS`)."""

    mini = "mini"
    mini_nako = "mini_nako"
    ukbb = "ukbb"
    nako = "nako"


def parse_layout(value: str | Layout) -> Layout:
    """``phantom --layout``: a :class:`Layout`; ``nifti`` (its old name) means ``manifest``."""
    if value == "nifti":
        return Layout.manifest
    try:
        return Layout(value)
    except ValueError:
        choices = ", ".join(layout.value for layout in Layout)
        raise typer.BadParameter(f"{value!r} is not one of {choices}") from None


def phantom(
    out: Annotated[Path, typer.Option(help="Folder to write the phantom cohort into.")],
    layout: Annotated[
        Layout,
        typer.Option(
            parser=parse_layout,
            metavar="<ukbb|nako|manifest>",
            help="ukbb: DICOM zips; nako: folders; manifest: NIfTI files + manifest.csv.",
        ),
    ] = Layout.ukbb,
    participants: Annotated[int, typer.Option(min=1, help="Number of participants.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed (deterministic output).")] = 0,
    preset: Annotated[PresetName, typer.Option(help="Acquisition geometry.")] = PresetName.mini,
    snr: Annotated[float, typer.Option(min=0.1, help="Signal-to-noise ratio.")] = 20.0,
) -> None:
    """Write a synthetic cohort with analytic ground truth (truth.csv, truth/<id>/*.nii.gz)."""
    from mrcohort.phantoms import write_cohort

    write_cohort(
        out,
        layout=_WRITER_LAYOUT[layout],
        participants=participants,
        seed=seed,
        preset=preset.value,
        snr=snr,
    )
    out_console.print(
        f"wrote {participants} phantom participants ({layout.value}, {preset.value}) to {out}",
        highlight=False,
    )
    if layout is Layout.nako:
        out_console.print(
            f"ingest with: mrcohort ingest --layout nako --source {out}/nako ...", highlight=False
        )


def train_demo_model(
    out: Annotated[Path, typer.Option(help="Model folder to write.")],
    body_comp: Annotated[
        bool, typer.Option("--body-comp", help="Train the body-composition demo model.")
    ] = False,
    iterations: Annotated[
        int | None, typer.Option(min=1, help="Default: 4000 (base), 2500 (--body-comp).")
    ] = None,
    n_train: Annotated[
        int | None, typer.Option(min=1, help="Training phantoms. Default: 16 (base), 12.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20201,
) -> None:
    """Re-train a shipped demo model on phantoms (seeded; base ~50, body-comp ~12 minutes)."""
    from mrcohort.devtools.train_demo import DEMO_DEFAULTS, TrainSettings, train

    label_set = "body_comp" if body_comp else "base"
    default_its, default_n = DEMO_DEFAULTS[label_set]
    settings = TrainSettings(
        seed=seed,
        n_train=n_train or default_n,
        iterations=iterations or default_its,
        label_set=label_set,
    )
    train(out, settings, log=lambda m: console.print(m, highlight=False, markup=False))
    out_console.print(f"wrote model folder {out}", highlight=False)
