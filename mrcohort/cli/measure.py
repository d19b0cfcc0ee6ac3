"""``mrcohort measure``: every biomarker of one participant, from a label map file.

Reads the label map (MRSegmentator ids, or TotalSegmentator ``total_mr`` / ``total`` ids
mapped by name) and optionally the Dixon fat, water and in-phase images on the same grid,
runs `measure_participant` and prints JSON or writes Parquet files whose columns are those
of the published ``organ_metrics``, ``vessel_metrics`` and ``qc`` tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import SimpleITK as sitk
import typer

from mrcohort import ids
from mrcohort.biomarkers.participant import TABLES, BiomarkerParams, measure_participant
from mrcohort.cli.common import fail, warn
from mrcohort.errors import MrcohortError
from mrcohort.io.files import atomic_target
from mrcohort.io.images import image_stem, read_image, same_grid, spacing_zyx
from mrcohort.labels import BODY_COMP_LABEL_MAP, MRSEG_LABEL_MAP
from mrcohort.labels.catalogues import keep_known, to_mrseg
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.rows import provenance

#: Relative tolerance on spacing/origin/direction when checking that images share a grid.


class LabelMapName(str, Enum):
    """Label map of the ``--seg`` file."""

    mrsegmentator = "mrsegmentator"
    body_comp = "body_comp"
    totalseg_mr = "totalseg_mr"
    totalseg = "totalseg"


@dataclass(frozen=True)
class MeasuredFiles:
    """Result of `measure_files`: one Arrow table per output table, and unmapped classes."""

    tables: dict[str, pa.Table]
    unmapped: dict[str, int]


def measure_files(
    seg: Path,
    *,
    fat: Path | None = None,
    water: Path | None = None,
    in_phase: Path | None = None,
    label_map: str = "mrsegmentator",
    participant_id: str | None = None,
    cohort: str = "cli",
    visit: str = "0",
    sequence: str | None = None,
    params: BiomarkerParams | None = None,
) -> MeasuredFiles:
    """Measure one participant from image files (the I/O shell around `measure_participant`).

    Parameters
    ----------
    seg : Path
        Label map file (NIfTI, MHA, ...).
    fat, water, in_phase : Path, optional
        Dixon magnitude images on the grid of ``seg`` (fat and water together).
    label_map : str
        ``mrsegmentator``, ``body_comp`` (MRSegmentator 2.0's body-composition classes,
        measured under their own names), ``totalseg_mr`` or ``totalseg``.
    participant_id : str, optional
        Default: the ``seg`` file name without extensions.
    cohort, visit : str
        Key columns of the rows.
    sequence : str, optional
        Default ``dixon`` with Dixon images, else ``other``.
    params : BiomarkerParams, optional

    Returns
    -------
    MeasuredFiles
        ``organ_metrics``, ``vessel_metrics`` and ``qc`` tables with the declared schemas.

    Raises
    ------
    MrcohortError
        ``FILE_NOT_FOUND``, ``BAD_PARTICIPANT_ID``, ``BAD_LABELS`` or ``GRID_MISMATCH``
        (stage ``measure``).
    """
    p = params or BiomarkerParams()
    if (fat is None) != (water is None):
        raise MrcohortError("MISSING_CHANNEL", "give both --fat and --water", stage="measure")
    if in_phase is not None and fat is None:
        raise MrcohortError(
            "MISSING_CHANNEL", "--in-phase needs --fat and --water", stage="measure"
        )
    paths = {"seg": seg, "fat": fat, "water": water, "in_phase": in_phase}
    given = {k: Path(v) for k, v in paths.items() if v is not None}
    for name, path in given.items():
        if not path.is_file():
            raise MrcohortError("FILE_NOT_FOUND", f"--{name} {path} not found", stage="measure")
    pid = participant_id or image_stem(given["seg"])
    if not ids.is_id(pid):
        origin = "" if participant_id else " (from the --seg file name)"
        raise MrcohortError(
            "BAD_PARTICIPANT_ID",
            f"participant id {pid!r}{origin} must match {ids.ID_PATTERN} (use --participant-id)",
            stage="measure",
        )
    seg_img = read_image(given["seg"])
    if label_map == "body_comp":
        classes = BODY_COMP_LABEL_MAP
        mapped = keep_known(_label_array(seg_img), classes)
    else:
        classes = MRSEG_LABEL_MAP
        mapped = to_mrseg(_label_array(seg_img), label_map)
    images = {}
    for name in ("fat", "water", "in_phase"):
        if name in given:
            img = read_image(given[name])
            _check_same_grid(seg_img, img, name)
            images[name] = sitk.GetArrayFromImage(img).astype(np.float32, copy=False)
    measures = measure_participant(
        mapped.labels, spacing_mm=spacing_zyx(seg_img), params=p, label_map=classes, **images
    )
    keys = {
        "cohort": cohort,
        "participant_id": pid,
        "visit": visit,
        "sequence": sequence or ("dixon" if images else "other"),
    }
    prov = provenance(
        input_sha256=_sha256_files(list(given.values())),
        params_hash=p.params_hash(),
        model_key=f"external-{label_map}",
    )
    rows = measures.rows()
    tables = {
        name: table_from_rows(name, [{**keys, **row, **prov} for row in rows[name]])
        for name in TABLES
    }
    return MeasuredFiles(tables=tables, unmapped=mapped.unmapped)


def rows_json(result: MeasuredFiles) -> str:
    """``{"organ_metrics": [...], "vessel_metrics": [...], "qc": [...]}`` (null for NaN)."""
    payload = {name: table.to_pylist() for name, table in result.tables.items()}
    return json.dumps(payload, default=_json_default, indent=1, allow_nan=False)


def output_paths(out: Path) -> dict[str, Path]:
    """Files ``--out FILE.parquet`` writes: FILE.parquet (organ_metrics), FILE.<table>.parquet."""
    stem = out.name.removesuffix(".parquet")
    return {
        name: out if name == "organ_metrics" else out.with_name(f"{stem}.{name}.parquet")
        for name in TABLES
    }


def write_parquet(result: MeasuredFiles, out: Path) -> list[Path]:
    """Write each table atomically (temp file + ``os.replace``); returns the paths."""
    written = []
    for name, path in output_paths(out).items():
        with atomic_target(path, suffix=".parquet") as tmp:
            pq.write_table(result.tables[name], tmp)
        written.append(path)
    return written


def measure(
    seg: Annotated[Path, typer.Option("--seg", help="Label map (NIfTI, MHA, ...).")],
    fat: Annotated[Path | None, typer.Option("--fat", help="Dixon fat image.")] = None,
    water: Annotated[Path | None, typer.Option("--water", help="Dixon water image.")] = None,
    in_phase: Annotated[
        Path | None, typer.Option("--in-phase", help="Dixon in-phase image (recommended).")
    ] = None,
    labels: Annotated[
        LabelMapName,
        typer.Option("--labels", help="Label map of --seg; TotalSegmentator maps by name."),
    ] = LabelMapName.mrsegmentator,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the rows of the three tables as JSON.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write FILE.parquet (organ_metrics), FILE.vessel_metrics.parquet, "
            "FILE.qc.parquet.",
        ),
    ] = None,
    participant_id: Annotated[
        str | None, typer.Option(help="Participant id (default: --seg file name).")
    ] = None,
    cohort: Annotated[str, typer.Option(help="Cohort column value.")] = "cli",
    visit: Annotated[str, typer.Option(help="Visit column value.")] = "0",
) -> None:
    """Measure volumes, Dixon fat fractions, iliac tortuosity, vessel connectivity and QC."""
    if json_out and out is not None:
        raise fail("give --json or --out, not both")
    if out is not None and out.suffix != ".parquet":
        raise fail("--out must end in .parquet")
    try:
        result = measure_files(
            seg,
            fat=fat,
            water=water,
            in_phase=in_phase,
            label_map=labels.value,
            participant_id=participant_id,
            cohort=cohort,
            visit=visit,
        )
    except MrcohortError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None
    if result.unmapped:
        listed = ", ".join(f"{k} ({v} vox)" for k, v in sorted(result.unmapped.items()))
        warn(f"classes without a measured counterpart, not measured: {listed}")
    if fat is not None and in_phase is None:
        warn("no --in-phase image: FF = F/(F+W), biased upwards at low fat fraction")
    if json_out:
        sys.stdout.write(rows_json(result) + "\n")
    elif out is not None:
        for path in write_parquet(result, out):
            typer.echo(f"wrote {path}")
    else:
        typer.echo(_summary(result))


def _summary(result: MeasuredFiles) -> str:
    """A short plain-text table of the present labels."""
    organ = result.tables["organ_metrics"].to_pylist()
    qc = {r["label_id"]: r["qc_flags"] for r in result.tables["qc"].to_pylist()}
    lines = [f"{'label':32s} {'volume_ml':>10s} {'ff_median':>9s}  qc_flags"]
    for r in organ:
        if r["is_empty"]:
            continue
        ff = "-" if r["ff_median"] is None else f"{r['ff_median']:.3f}"
        lines.append(f"{r['label_name']:32s} {r['volume_ml']:10.2f} {ff:>9s}  {qc[r['label_id']]}")
    for r in result.tables["vessel_metrics"].to_pylist():
        if r["tortuosity_index"] is not None:
            lines.append(f"{r['label_name']}: TI {r['tortuosity_index']:.3f}")
    return "\n".join(lines)


def _label_array(img: sitk.Image) -> np.ndarray:
    """The label map as a non-negative integer array (integral floats accepted)."""
    arr = sitk.GetArrayFromImage(img)
    if arr.ndim != 3:
        raise MrcohortError(
            "BAD_LABELS", f"label map must be 3-D, got {arr.ndim}-D", stage="measure"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.rint(arr)):
            raise MrcohortError("BAD_LABELS", "label map holds non-integer values", stage="measure")
        arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise MrcohortError("BAD_LABELS", "label map holds negative values", stage="measure")
    return arr


def _check_same_grid(ref: sitk.Image, img: sitk.Image, name: str) -> None:
    if not same_grid(ref, img):
        raise MrcohortError(
            "GRID_MISMATCH",
            f"--{name.replace('_', '-')} is not on the grid of --seg "
            f"(size {img.GetSize()} vs {ref.GetSize()}, spacing {img.GetSpacing()} vs "
            f"{ref.GetSpacing()}); resample it first",
            stage="measure",
        )


def _sha256_files(paths: list[Path]) -> str:
    """sha256 of the bytes of the files, concatenated in the given order."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def _json_default(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
