"""Write a phantom cohort: participants in one layout, truth volumes, truth tables and
synthetic phenotypes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mrcohort.io.files import atomic_target
from mrcohort.io.images import write_image
from mrcohort.phantoms.participant import PhantomParticipant, make_participant
from mrcohort.phantoms.phenotypes import PHENOTYPE_COLUMNS, phenotype_rows
from mrcohort.phantoms.truth import BODY_COMP_TRUTH_COLUMNS, TRUTH_COLUMNS
from mrcohort.phantoms.writers.nako import write_nako_participant
from mrcohort.phantoms.writers.nifti import (
    MANIFEST_COLUMNS,
    manifest_rows,
    write_nifti_participant,
)
from mrcohort.phantoms.writers.ukbb import write_ukbb_zip

__all__ = ["NAKO_SUBDIR", "write_cohort", "write_participant", "write_truth_images"]

#: Sub-folder of a phantom cohort that holds the NAKO-layout participant folders.
NAKO_SUBDIR = "nako"


def write_truth_images(p: PhantomParticipant, out_dir: Path) -> None:
    """Write ``<out>/truth/<participant_id>/``: labels, body-composition classes and the
    noise-free reference channels, as NIfTI."""
    truth_dir = out_dir / "truth" / p.participant_id
    write_image(p.labels, truth_dir / "labels.nii.gz")
    if p.body_comp is not None:
        write_image(p.body_comp, truth_dir / "body_comp.nii.gz")
    for ch, img in p.reference.items():
        write_image(img, truth_dir / f"{ch}.nii.gz")


def write_participant(p: PhantomParticipant, out_dir: Path, *, layout: str) -> list[Path]:
    """Write one participant's stations and truth volumes.

    Layouts: ``ukbb`` (one field-20201 zip), ``nifti`` (one NIfTI per station), ``nako``
    (DICOM series folders below ``nako/<participant_id>/1/``, see
    :func:`~mrcohort.phantoms.writers.nako.write_nako_participant`). Returns the written
    station files (the zip, the NIfTI files in station order, or the NAKO series folders).
    """
    if layout not in ("ukbb", "nifti", "nako"):
        raise ValueError(f"unknown layout {layout!r} (expected 'ukbb', 'nifti' or 'nako')")
    write_truth_images(p, out_dir)
    if layout == "ukbb":
        zip_path = out_dir / f"{p.participant_id}_20201_2_0.zip"
        return [write_ukbb_zip(zip_path, participant_id=p.participant_id, stations=p.stations)]
    if layout == "nifti":
        return write_nifti_participant(p, out_dir)
    # the NAKO layout treats every folder as a participant: keep the data apart from
    # truth/, truth.csv and phantom.json (ingest with --source <out>/nako)
    return write_nako_participant(p, out_dir / NAKO_SUBDIR)


def write_cohort(
    out_dir: str | Path,
    *,
    layout: str = "ukbb",
    participants: int = 3,
    seed: int = 0,
    preset: str = "mini",
    snr: float = 20.0,
) -> Path:
    """Write a phantom cohort: stations per participant, ``truth/`` volumes, ``truth.csv``
    (MRSegmentator classes), ``truth_body_comp.csv`` (body-composition classes) and
    ``phenotypes.csv`` (synthetic age, sex, BMI: :mod:`mrcohort.phantoms.phenotypes`).

    For ``layout="nifti"`` a generic ``manifest.csv`` (participant_id, visit, sequence,
    channel, station, path) lists every station file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth: list[dict[str, object]] = []
    body_comp_truth: list[dict[str, object]] = []
    manifest: list[dict[str, object]] = []
    for index in range(participants):
        p = make_participant(seed, index, preset, snr=snr)
        files = write_participant(p, out, layout=layout)
        truth.extend(p.truth)
        body_comp_truth.extend(p.body_comp_truth)
        if layout == "nifti":
            manifest.extend(manifest_rows(p, files, out))
    _write_csv(out / "truth.csv", truth, TRUTH_COLUMNS)
    _write_csv(out / "truth_body_comp.csv", body_comp_truth, BODY_COMP_TRUTH_COLUMNS)
    _write_csv(out / "phenotypes.csv", phenotype_rows(seed, participants), PHENOTYPE_COLUMNS)
    if manifest:
        _write_csv(out / "manifest.csv", manifest, MANIFEST_COLUMNS)
    meta = {
        "generator": "mrcohort.phantoms",
        "layout": layout,
        "participants": participants,
        "seed": seed,
        "preset": preset,
        "snr": snr,
    }
    (out / "phantom.json").write_text(json.dumps(meta, indent=2))
    return out


def _write_csv(path: Path, rows: list[dict[str, object]], columns: tuple[str, ...]) -> None:
    """Write ``rows`` as CSV with a header of ``columns``, atomically."""
    with atomic_target(path, suffix=".csv.tmp") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
