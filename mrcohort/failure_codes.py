"""Every failure code, in one table: the stages that raise it, whether the next run retries
it, what causes it and what fixes it. ``docs/failures.md`` shows this table (rendered by
:mod:`mrcohort.failure_docs`, kept in step by ``python -m mrcohort.failure_docs
docs/failures.md`` and a test), and :data:`mrcohort.errors.ENVIRONMENT_CODES` is read from it.

A code is stable across versions; new ones may be added. A code raised anywhere in the
package and missing here fails a test.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAILURE_CODES", "FailureCode", "environment_codes"]


@dataclass(frozen=True)
class FailureCode:
    """One code.

    Attributes
    ----------
    stages
        Stages whose ``failures`` rows carry it (``ingest``, ``stitch``, ``segment``,
        ``measure``, ``worker``, ``any``); empty for a code that only stops a job.
    cause
        What brings it about (one Markdown paragraph).
    fix
        What to do about it.
    retryable
        Caused by the environment, not the input: the next run retries it
        (``ledger.retryable``); other failures are retried only when the input, the model or
        the parameters change, or with ``mrcohort run --retry-failed``.
    job
        The meaning as a job error (one line, exit status 2), if the job itself stops with
        it.
    """

    stages: tuple[str, ...]
    cause: str
    fix: str = ""
    retryable: bool = False
    job: str = ""


_F = FailureCode
_LIMITS = "`limits` in `layouts.yaml` (your `--layouts` file overrides them)"

#: Code -> its entry, in the order of the documentation.
FAILURE_CODES: dict[str, FailureCode] = {
    # ----------------------------------------------------------------- discovery, files
    "UNRECOGNISED_FILE": _F(
        ("ingest",),
        "a `.zip` in the source folder whose name is not `<eid>_20201_<instance>_<array>.zip`, "
        "or a file where the NAKO layout expects a folder",
        "rename or move it out of the source folder",
    ),
    "FILE_NOT_FOUND": _F(
        ("ingest", "measure"),
        "the file or folder vanished, a manifest row names none, or a symbolic link leads nowhere",
        "restore the file or fix the path",
    ),
    "PERMISSION_DENIED": _F(
        ("ingest", "any"),
        "a file or folder of the input cannot be read by the user running mrcohort (a "
        "folder below the source is reported, never skipped)",
        "make it readable (`chmod a+r` files, `a+rx` folders); the next run retries it",
        retryable=True,
    ),
    "SYMLINK_LOOP": _F(
        ("ingest",),
        "a symbolic link in the input leads back to itself",
        "remove or replace the link",
    ),
    "SYMLINK_OUTSIDE_SOURCE": _F(
        ("ingest",),
        "a symbolic link below a `ukbb` or `nako` source leads out of the source folder "
        "(manifest rows may name any path)",
        "copy the file into the source, or point the source at the folder holding it",
    ),
    "BAD_PARTICIPANT_ID": _F(
        ("ingest", "measure"),
        "participant id not `[A-Za-z0-9_-]+` (separators, `..`, spaces; never used as a path)",
        "rename the folder or fix the manifest row",
    ),
    "BAD_VISIT": _F(
        ("ingest",), "a NAKO visit folder name that is not `[A-Za-z0-9_-]+`", "rename it"
    ),
    "DUPLICATE_VISIT": _F(
        ("ingest",),
        "two zips with different content claim the same participant and visit (e.g. "
        "`1_20201_2_0.zip` in two folders); neither is read. Byte-identical copies are not an "
        "error. Any other layout that yields one participant-visit from two inputs: the first "
        "one (discovery order) is processed, the other gets this failure row under its own "
        "source",
        "keep the right one",
    ),
    # ----------------------------------------------------------------- zips
    "NOT_A_ZIP": _F(
        ("ingest",),
        "the file is not a zip archive (also a truncated download: the central directory "
        "is at its end)",
        "download it again",
    ),
    "ZIP_CORRUPT": _F(
        ("ingest",),
        "a zip member cannot be read (CRC error, truncated archive, a member that inflates "
        "past the size its central directory declares: inflation stops there, so a lying "
        "directory costs no more memory than it declares)",
        "download it again",
    ),
    "ZIP_TOO_LARGE": _F(
        ("ingest",),
        "the zip's central directory declares more than the `limits` of `layouts.yaml` "
        "allow: more than `max_members` entries (20,000), a member above `max_member_mb` "
        "(64 MiB) or all members above `max_archive_mb` (1,024 MiB) inflated, or a "
        "compression ratio above `max_compression_ratio` (100; a member or the whole zip, "
        "from 1 MiB declared) — a zip bomb. Refused before a byte is inflated. A real "
        "field-20201 zip declares 100–200 MB at a ratio of 2–4",
        "if a genuine zip is refused, raise the limit named in the message in your "
        "`--layouts` file",
    ),
    "ZIP_UNSAFE_NAME": _F(
        ("ingest",),
        "a zip member named by an absolute path or with a `..` part (unpacked, it would land "
        "outside its folder); nothing of the zip is read",
        "not a UK Biobank export as written: download it again",
    ),
    "EMPTY_ZIP": _F(("ingest",), "no DICOM images in the zip", "download it again"),
    "MISSING_MANIFEST": _F(
        ("ingest",),
        "a UK Biobank zip without `manifest.csv` (or `manifest.cvs`)",
        "`require_manifest: false` in the layout settings accepts it",
    ),
    "MANIFEST_MISMATCH": _F(
        ("ingest",),
        "the zip's manifest names files that are not in the zip (the message lists some)",
        "download it again",
    ),
    # ----------------------------------------------------------------- DICOM
    "DICOM_UNREADABLE": _F(
        ("ingest",),
        "a DICOM file is truncated or undecodable (also a broken `DICM` preamble, or an image "
        "object without pixel data)",
        "export the series again",
    ),
    "DICOM_UNSUPPORTED": _F(
        ("ingest",),
        "a DICOM image kind that is not supported (multi-frame; a pixel type no decoder "
        "knows: BitsAllocated not 1/8/16/32/64, BitsStored 0 or above BitsAllocated, "
        "PixelRepresentation above 1), found from the header before pixel data is decoded",
        "convert the series (e.g. to NIfTI) and use the manifest layout",
    ),
    "WRONG_MODALITY": _F(
        ("ingest",),
        "a DICOM series selected by the `ukbb` or `nako` rules whose Modality is not `MR`",
        "check the export; other modalities go through the manifest layout",
    ),
    "BAD_SPACING": _F(
        ("ingest",),
        "a voxel spacing that is zero, negative, infinite or not a number: DICOM "
        "PixelSpacing, a single-slice series with neither a positive SpacingBetweenSlices nor "
        "a positive SliceThickness, or an image header (for NIfTI the stored `pixdim`: ITK "
        "silently reads a zero or NaN `pixdim` as 1 mm). Never replaced by 1 mm",
        "fix the header at its source",
    ),
    "BAD_DIRECTION": _F(
        ("ingest",),
        "an orientation that is not two (DICOM ImageOrientationPatient) or three (image "
        "direction matrix, NIfTI sform/qform) finite orthonormal directions: sheared, "
        "degenerate or NaN. Checked from the header, before pixel data is read",
        "fix the header at its source",
    ),
    "INCONSISTENT_SERIES": _F(
        ("ingest",), "slices of one series differ in size, spacing or orientation"
    ),
    "DUPLICATE_SLICES": _F(("ingest",), "two slices of one series at the same position"),
    "NONUNIFORM_SLICES": _F(("ingest",), "missing slice or uneven slice gaps within a series"),
    # ----------------------------------------------------------------- sequences
    "MISSING_CHANNEL": _F(
        ("ingest", "measure"),
        "one of the Dixon channels (in, opp, w, f) is absent; the message names it",
    ),
    "DUPLICATE_SERIES": _F(("ingest",), "two series of the same channel at the same station"),
    "STATION_MISMATCH": _F(("ingest", "stitch"), "channels have different numbers of stations"),
    # ----------------------------------------------------------------- manifest
    "BAD_MANIFEST": _F(
        ("ingest",),
        "a generic manifest that lacks a required column or is not UTF-8 text (ingest "
        "stops: nothing to read)",
    ),
    "BAD_MANIFEST_ROW": _F(
        ("ingest",),
        "a manifest row with a bad visit, sequence, channel or station value, or no path",
    ),
    "NOT_AN_IMAGE": _F(
        ("ingest",),
        "a manifest row whose DICOM file or folder holds no image (structured report, "
        "encapsulated PDF, ...)",
    ),
    "MULTIPLE_SERIES": _F(
        ("ingest",), "a manifest row whose DICOM folder holds several image series"
    ),
    # ----------------------------------------------------------------- images
    "IMAGE_UNREADABLE": _F(
        ("ingest",),
        "an image file (NIfTI, MHA, NRRD, ...) that SimpleITK cannot read (also an unknown "
        "NIfTI datatype, or a non-finite origin)",
    ),
    "IMAGE_TOO_LARGE": _F(
        ("ingest",),
        f"an image (or DICOM series: Rows, Columns, number of slices) above the size limits "
        f"({_LIMITS}: 2^28 voxels, 4096 per axis); refused from the header, before pixel data "
        "is decoded or allocated; also a DICOM file on disk (nako, manifest layouts) above "
        "`max_member_mb` (64 MiB), refused before it is read",
    ),
    "BAD_DIMENSION": _F(
        ("ingest", "segment"),
        "an input image that is not 3D scalar (2D, 4D with several volumes, vector pixels)",
    ),
    "NONFINITE_VOXELS": _F(
        ("ingest", "segment"),
        "NaN or infinite voxels in an input image (for NIfTI checked on the stored values: "
        "ITK's reader silently zeroes them)",
    ),
    "NO_IMAGES": _F(
        ("ingest",),
        "a participant-visit (NAKO folder, manifest rows) with no series the layout's rules "
        "recognise",
    ),
    "MISSING_SEQUENCE": _F(
        ("ingest",),
        "the job asked for a sequence (e.g. `dixon`) the participant-visit does not have",
    ),
    # ----------------------------------------------------------------- stitch
    "NO_STATIONS": _F(("stitch",), "nothing to stitch"),
    "GRID_MISMATCH": _F(
        ("stitch", "measure"),
        "a station's in-plane grid differs between channels (`mrcohort measure`: the images "
        "are not on the label map's grid)",
    ),
    "STATION_GAP": _F(
        ("stitch",),
        "the stations leave a gap along the body (a missing middle station); the message "
        "gives its size. Ingest reports it too (the scans rows stay, `usable = false`)",
        "`allow_gaps=True` / `mrcohort stitch --allow-gaps` stitches anyway with zeros in the gap",
    ),
    "GRID_TOO_LARGE": _F(
        ("stitch",),
        "the grid covering all stations would exceed 2^28 voxels (a wrong position in a "
        "header?); refused before allocating",
    ),
    "NO_POSITIONS": _F(
        ("stitch",),
        'all stations sit at one position in their headers and `positions="header"` was asked',
        'use `positions="content"` or `"auto"`',
    ),
    # ----------------------------------------------------------------- segment
    "MODEL_NOT_FOUND": _F(
        ("segment",),
        "the model folder (named in the message) is missing, or an MRSegmentator weights "
        "root lacks the `base/`/`body_comp/` asked for",
    ),
    "MODEL_INCOMPLETE": _F(
        ("segment",),
        "the model folder lacks plans/dataset/fold checkpoints or a usable label map in "
        "dataset.json",
    ),
    "MODEL_AMBIGUOUS": _F(("segment",), "the model folder holds several models"),
    "MODEL_UNREADABLE": _F(("segment",), "the model cannot be loaded"),
    "MODEL_UNSUPPORTED": _F(("segment",), "the model has label ids above 255"),
    "NO_GPU": _F(
        ("segment",),
        "`cuda` requested but none visible (on a GPU worker: its GPU is gone)",
        retryable=True,
        job="`model.device` or `cluster.local.gpus` asks for a GPU this machine does not have",
    ),
    "SCRATCH_MISSING": _F(
        ("segment",),
        "the stitched image handed from the reading worker to the GPU worker is gone from "
        "`<store>/scratch` (removed while the run was going)",
        retryable=True,
    ),
    # ----------------------------------------------------------------- measure
    "SEGMENTATION_CHANGED": _F(
        ("measure",),
        "the segmentation written moments before by a GPU worker is missing or changed (a "
        "store modified during the run)",
        retryable=True,
    ),
    "SEGMENTATION_GRID": _F(
        ("measure",),
        "the segmentation written moments before by a GPU worker is not on the stitched grid "
        "(a store modified during the run)",
        retryable=True,
    ),
    "INPUT_CHANGED": _F(
        ("measure",),
        "the input changed between reading and measuring (the measuring worker had to read "
        "it again)",
        retryable=True,
    ),
    "BAD_LABELS": _F(
        ("measure",), "`mrcohort measure`: the label map is not 3-D, not integer, or negative"
    ),
    # ----------------------------------------------------------------- anywhere
    "WORKER_LOST": _F(
        ("worker",),
        "the Dask workers running this participant-visit died `cluster.allowed_failures` "
        "times (killed for memory, walltime, node lost, `scancel`); its tasks moved to other "
        "workers each time before that",
        retryable=True,
    ),
    "OUT_OF_MEMORY": _F(("any",), "a `MemoryError` in that stage", retryable=True),
    "SEGMENTATION_LOST": _F(
        ("verify",),
        "`mrcohort verify --repair` found the stored segmentation of this input missing or "
        "changed (its sha256 differs from the ledger's) and removed it; a ledger row only (no "
        "failures row: the input's metric rows stay current until the next run replaces them)",
        "nothing: the next run segments and measures that input again",
        retryable=True,
    ),
    "DISK_FULL": _F(
        ("any",),
        "a worker could not write into the store or its scratch area (a segmentation, a "
        "stitched image): no space left on the device, or the quota is exceeded; the message "
        "names the file (a QC picture that cannot be written is a warning, not a failure)",
        "free space (or raise the quota) and run again",
        retryable=True,
    ),
    "UNEXPECTED_ERROR": _F(
        ("any",),
        "any other exception (type and message kept)",
        "please report it",
        retryable=True,
    ),
    # ----------------------------------------------------------------- the job itself
    "BAD_CONFIG": _F(
        (),
        "",
        job="a configuration key is unknown, mistyped or out of range (the message names the "
        "file and the dotted key)",
    ),
    "STORE_BUSY": _F(
        (),
        "",
        job="another run holds the store (the message names its run id, pid, host and start "
        "time); `--wait` waits for it",
    ),
    "STORE_NOT_WRITABLE": _F((), "", job="the store folder cannot be created or written"),
    "STORE_WRITE_FAILED": _F(
        (),
        "",
        job="a flush could not write one of its files (disk full, quota, permissions; the "
        "message names the file and the reason). The flush is rolled back — no table holds "
        "any of its rows — and the run stops; the next run redoes the inputs of that flush and "
        "of every later one. Nothing written before is touched. (A flush that had committed "
        "and failed only while removing the rows it replaces says so; the next run finishes "
        "it.)",
    ),
    "BAD_STATUS": _F(
        (),
        "",
        job="a run's `status.json` is not a JSON object (a file edited or cut short); the "
        "message names it",
    ),
    "CLUSTER_START": _F(
        (),
        "",
        job="the cluster could not be started or reached (`slurm`/`pbs`: the job submission "
        "failed; `scheduler`: no answer at `cluster.scheduler.address`, or no worker within "
        "`wait_for_workers_seconds`)",
    ),
    "NO_INPUTS": _F(
        (), "", job="discovery found no participant-visit and no rejected input in the source"
    ),
    "ACCOUNTING": _F(
        (),
        "",
        job="at the end of a run an input discovery saw is not in the store exactly once — as "
        "its metric rows or as one failures row (missing: e.g. no ledger row of this run, or "
        "rows removed by hand; duplicated: e.g. two failures rows). The message names the "
        "first few and counts the rest, the run's `status.json` (`accounting`) lists up to 20 "
        "with the reason, its `runs` row says `failed`, and `mrcohort run` exits non-zero. A "
        "bug, or a store edited by hand: please report it; `--force` rewrites every input",
    ),
}


def environment_codes() -> frozenset[str]:
    """Codes whose failures the next run retries (``retryable``)."""
    return frozenset(c for c, f in FAILURE_CODES.items() if f.retryable)
