"""The job's own tables: ``ledger`` (one row per participant-visit input and attempt: what was
done, with which outcome, in which flush, how long each stage took), ``runs`` (one row per
run: when, with which configuration and library versions, and the counts) and ``models``
(the registry: what each ``model_key`` hash stands for).

The ledger is what makes a re-run do only missing or stale work (`mrcohort.jobs.ledger`): a
unit of work is an input (``input_sha256``, cached under the input files' ``fingerprint``)
under a model (``model_key``) and a measurement (``measure_key``).
"""

from __future__ import annotations

import pyarrow as pa

from mrcohort.schemas.columns import TIMESTAMP, declare_table, field, provenance_fields

__all__ = ["LEDGER", "MODELS", "RUNS", "STAGE_SECONDS"]

_STR, _BOOL, _F64, _I64 = pa.string(), pa.bool_(), pa.float64(), pa.int64()

_SECONDS = {
    "write": "wall-clock seconds of the flush that wrote this input's rows, divided by the "
    "inputs in that flush (an average, not this input's own time)"
}

#: Stages whose seconds the ledger records, in order.
STAGE_SECONDS: tuple[str, ...] = ("ingest", "stitch", "segment", "measure", "write")

LEDGER: pa.Schema = declare_table(
    "ledger",
    [
        field("cohort", _STR, "", "cohort name (hive partition key)"),
        field("participant_id", _STR, "", "participant id; '' for an input without one"),
        field("visit", _STR, "", "visit of the participant, if known", nullable=True),
        field(
            "slot",
            _STR,
            "",
            "identity of the input: 'participant_id/visit', or 'source:<path>' for an input "
            "discovery could not name",
        ),
        field("layout", _STR, "", "input layout: ukbb, nako, manifest"),
        field("source", _STR, "", "input path relative to the cohort folder", nullable=True),
        field(
            "fingerprint",
            _STR,
            "",
            "hash of the input files' relative paths, sizes and modification times "
            "(the cache key of input_sha256; the content hash stays the identity)",
        ),
        field(
            "action",
            _STR,
            "",
            "what the run did: segment (segmentation and measurement), measure (measurement "
            "from the stored segmentation), reject (input refused by discovery)",
        ),
        field("outcome", _STR, "", "ok or failed"),
        field("stage", _STR, "", "stage that failed", nullable=True),
        field("code", _STR, "", "failure code (docs/failures.md)", nullable=True),
        field(
            "retryable",
            _BOOL,
            "",
            "failure caused by the environment (worker lost, out of memory, unexpected error): "
            "retried by the next run; false for failures caused by the input",
        ),
        field(
            "segmentation_sha256",
            _STR,
            "",
            "sha256 of the stored segmentation file (segmentations/<model_key>/<input>.nii.gz)",
            nullable=True,
        ),
        field("wrote_scans", _BOOL, "", "this attempt wrote the input's scans rows"),
        field("flush_id", _STR, "", "the flush whose files hold this attempt's rows"),
        *(
            field(
                f"seconds_{s}",
                _F64,
                "s",
                _SECONDS.get(s, f"wall-clock seconds in stage {s}"),
                nullable=True,
            )
            for s in STAGE_SECONDS
        ),
        field("worker", _STR, "", "Dask worker that processed the input", nullable=True),
        *provenance_fields(input_nullable=True),
    ],
    description=(
        "One row per participant-visit input and attempt: what was done (action), with which "
        "outcome, in which flush, and how long each stage took; the latest row of a slot is "
        "its state."
    ),
)

RUNS: pa.Schema = declare_table(
    "runs",
    [
        field("cohort", _STR, "", "cohort name (hive partition key)"),
        field("started_at", TIMESTAMP, "", "when the run started (UTC)"),
        field("finished_at", TIMESTAMP, "", "when the run ended (UTC)"),
        field("state", _STR, "", "finished, or failed (the run stopped on an error)"),
        field("config_hash", _STR, "", "hash of the fully resolved configuration"),
        field("config_path", _STR, "", "the resolved configuration, relative to the store"),
        field("host", _STR, "", "host name of the driver"),
        field("pid", _I64, "", "process id of the driver"),
        field("n_discovered", _I64, "{input}", "inputs discovery found (rejected ones included)"),
        field("n_to_segment", _I64, "{input}", "inputs planned for segmentation and measurement"),
        field("n_to_measure", _I64, "{input}", "inputs planned for measurement only"),
        field("n_up_to_date", _I64, "{input}", "inputs already done (skipped)"),
        field("n_ok", _I64, "{input}", "inputs processed successfully by this run"),
        field(
            "n_failed", _I64, "{input}", "inputs that failed in this run (rejected ones included)"
        ),
        field("python_version", _STR, "", "Python version of the driver"),
        field("torch_version", _STR, "", "torch version of the driver", nullable=True),
        field("nnunetv2_version", _STR, "", "nnunetv2 version of the driver", nullable=True),
        field("dask_version", _STR, "", "dask version of the driver", nullable=True),
        *provenance_fields(input_nullable=True),
    ],
    description=(
        "One row per finished run: when, with which configuration (hash and file) and library"
        " versions, and the counts of its plan and outcome."
    ),
)

MODELS: pa.Schema = declare_table(
    "models",
    [
        field("cohort", _STR, "", "cohort name (hive partition key)"),
        field(
            "model_name",
            _STR,
            "",
            "the model as the job configuration named it: demo, mrsegmentator, "
            "mrsegmentator body_comp, or the folder's name",
        ),
        field("model_path", _STR, "", "the model folder the weights were read from"),
        field("folds", pa.list_(_STR), "", "folds ensembled (nnU-Net names: 0, 1, ..., all)"),
        field(
            "checkpoint_sha256",
            pa.list_(_STR),
            "",
            "sha256 of each fold's checkpoint, in the order of folds",
        ),
        field("plans_sha256", _STR, "", "sha256 of plans.json"),
        field("dataset_sha256", _STR, "", "sha256 of dataset.json (the label map)"),
        field("n_labels", pa.int32(), "{label}", "labels of the model (background excluded)"),
        field("tile_step_size", _F64, "1", "sliding-window step as a fraction of the patch"),
        field(
            "use_mirroring",
            _BOOL,
            "",
            "test-time mirroring; null = as the model was trained",
            nullable=True,
        ),
        field("engine", _STR, "", "inference engine"),
        field("input_channel", _STR, "", "Dixon channel given to the model: in, opp, w or f"),
        field("device_type", _STR, "", "cuda (fp16 autocast) or cpu (fp32)"),
        field("torch_version", _STR, "", "torch version of the first run", nullable=True),
        field("nnunetv2_version", _STR, "", "nnunetv2 version of the first run", nullable=True),
        # model_key: what the row describes; computed_at / run_id: the first run using it
        *provenance_fields(input_nullable=True),
    ],
    description=(
        "One row per model_key (and cohort): the model name, weights folder, checkpoint "
        "hashes, folds and inference settings behind the hash; computed_at and run_id: the "
        "first run that used it; "
        "join it on model_key to filter results by a model's name."
    ),
)
