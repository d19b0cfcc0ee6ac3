"""The ``models`` registry: what a ``model_key`` hash stands for (model name, weights folder,
checkpoint hashes, folds, inference settings), written once per cohort and model_key, by the
first run that uses it, under the store lock."""

from __future__ import annotations

from pathlib import Path

from mrcohort.io.files import sha256_file
from mrcohort.jobs.participant import WorkContext
from mrcohort.jobs.records import library_versions
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.rows import provenance
from mrcohort.schemas.store import write_table
from mrcohort.segmentation.model import cached_file_hash, load_model_folder

__all__ = ["model_row", "register_model"]


def _registered(store: Path, cohort: str, model_key: str) -> bool:
    folder = Path(store, "models", f"cohort={cohort}", f"model_key={model_key}")
    return any(folder.glob("part-*.parquet"))


def model_row(ctx: WorkContext, model_name: str) -> dict[str, object]:
    """The registry row of the context's model (hashes from the model folder's files)."""
    folder = load_model_folder(ctx.model, ctx.inference.folds)
    versions = library_versions()
    return {
        "cohort": ctx.cohort,
        "model_name": model_name,
        "model_path": str(folder.path),
        "folds": [str(f) for f in folder.folds],
        "checkpoint_sha256": [cached_file_hash(folder.checkpoint(f)) for f in folder.folds],
        "plans_sha256": sha256_file(folder.path / "plans.json"),
        "dataset_sha256": sha256_file(folder.path / "dataset.json"),
        "n_labels": len(folder.label_map.ids()),
        "tile_step_size": float(ctx.inference.tile_step_size),
        "use_mirroring": ctx.inference.use_mirroring,
        "engine": str(ctx.inference.engine),
        "input_channel": ctx.channel,
        "device_type": ctx.device,
        "torch_version": versions["torch_version"],
        "nnunetv2_version": versions["nnunetv2_version"],
        # params_hash: the model's own settings are what model_key hashes
        **provenance(
            input_sha256=None,
            params_hash=ctx.model_key,
            model_key=ctx.model_key,
            run_id=ctx.run_id,
        ),
    }


def register_model(ctx: WorkContext, model_name: str) -> bool:
    """Write the context's ``models`` row unless the store has it (True when written)."""
    if _registered(ctx.store, ctx.cohort, ctx.model_key):
        return False
    write_table(
        ctx.store,
        "models",
        table_from_rows("models", [model_row(ctx, model_name)]),
        partition={"cohort": ctx.cohort, "model_key": ctx.model_key},
        file_key=ctx.model_key,
    )
    return True
