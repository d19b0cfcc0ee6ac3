"""Column declarations shared by the tables: the field helper and the groups of fields that
several tables repeat (scan keys, label keys, image geometry, provenance).

Every field carries its nullability and metadata ``{"unit": ..., "description": ...}``.
Units: UCUM-style (``ml``, ``mm``, ``1`` for dimensionless fractions, ``{voxel}`` for
voxel counts); ``""`` for identifiers, text, flags and timestamps.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "SCHEMA_VERSION",
    "TIMESTAMP",
    "declare_table",
    "field",
    "geometry_fields",
    "label_key_fields",
    "provenance_fields",
    "scan_key_fields",
]

#: Version of every declared schema; bump on any incompatible change (2: measure_key and
#: run_id on every row; the ledger and runs tables).
SCHEMA_VERSION = "2"
#: Type of ``computed_at``: microseconds, UTC.
TIMESTAMP = pa.timestamp("us", tz="UTC")


def declare_table(name: str, fields: list[pa.Field], description: str = "") -> pa.Schema:
    """A table's schema: its fields plus the table name, schema version and description (what
    one row is) as metadata."""
    metadata = {"mrcohort.table": name, "mrcohort.schema_version": SCHEMA_VERSION}
    if description:
        metadata["mrcohort.description"] = description
    return pa.schema(fields, metadata=metadata)


def field(
    name: str, type_: pa.DataType, unit: str, description: str, *, nullable: bool = False
) -> pa.Field:
    """One declared column: type, unit (UCUM-style, ``""`` for none) and description."""
    return pa.field(
        name, type_, nullable=nullable, metadata={"unit": unit, "description": description}
    )


def scan_key_fields(*, visit_nullable: bool = False) -> list[pa.Field]:
    """``cohort``, ``participant_id``, ``visit``: the key every table starts with."""
    return [
        field("cohort", pa.string(), "", "cohort name (hive partition key), e.g. ukbb, nako"),
        field(
            "participant_id",
            pa.string(),
            "",
            "pseudonymous participant id within the cohort ([A-Za-z0-9_-]+)",
        ),
        field(
            "visit",
            pa.string(),
            "",
            "visit as the layout names it ([A-Za-z0-9_-]+): UK Biobank '<instance>_<array>' "
            "from the zip name, e.g. '2_0'; NAKO the visit folder name, e.g. '1' "
            "(default_visit when the folders have no visit level); manifest its visit column",
            nullable=visit_nullable,
        ),
    ]


def label_key_fields() -> list[pa.Field]:
    """Scan keys, the sequence segmented and the label: the key of the per-label tables."""
    return [
        *scan_key_fields(),
        field("sequence", pa.string(), "", "image sequence segmented: dixon, t2haste, ct, other"),
        field(
            "label_id",
            pa.int16(),
            "",
            "label id in the model's label map (MRSegmentator 1..40; body comp. 1..10)",
        ),
        field(
            "label_name", pa.string(), "", "label name in the model's label map (its dataset.json)"
        ),
    ]


def geometry_fields() -> list[pa.Field]:
    """Voxel grid of one image (SimpleITK order x, y, z; world LPS, mm)."""
    return [
        *(
            field(
                f"size_{a}_vox",
                pa.int32(),
                "{voxel}",
                f"number of voxels along image axis {a} (SimpleITK order)",
            )
            for a in "xyz"
        ),
        *(
            field(f"spacing_{a}_mm", pa.float64(), "mm", f"voxel spacing along image axis {a}")
            for a in "xyz"
        ),
        *(
            field(
                f"origin_{a}_mm",
                pa.float64(),
                "mm",
                f"world (LPS) {a} coordinate of the centre of voxel (0, 0, 0)",
            )
            for a in "xyz"
        ),
        field(
            "direction",
            pa.list_(pa.float64(), 9),
            "1",
            "direction cosines, row-major 3x3 (SimpleITK GetDirection); "
            "column k is the world direction of image axis k",
        ),
    ]


def provenance_fields(*, input_nullable: bool = False) -> list[pa.Field]:
    """The provenance columns every table ends with (filled by `mrcohort.schemas.rows`)."""
    return [
        field(
            "input_sha256",
            pa.string(),
            "",
            "sha256 (hex) of the input bytes (all stations, in a defined order)",
            nullable=input_nullable,
        ),
        field(
            "model_key",
            pa.string(),
            "",
            "identity of the segmentation model (hash of weights, plans, settings)",
        ),
        field(
            "measure_key",
            pa.string(),
            "",
            "identity of the measurement (hash of the biomarker code version and parameters); "
            "'none' for rows no measurement made (scans, ingest failures)",
        ),
        field("code_version", pa.string(), "", "mrcohort version that computed the row"),
        field("params_hash", pa.string(), "", "hash of the parameters used to compute the row"),
        field(
            "schema_version",
            pa.string(),
            "",
            "version of this table's schema (mrcohort.schemas.tables.SCHEMA_VERSION)",
        ),
        field("computed_at", TIMESTAMP, "", "when the row was computed (UTC)"),
        field(
            "run_id",
            pa.string(),
            "",
            "the run that wrote the row (runs table); null outside a cohort run",
            nullable=True,
        ),
    ]
