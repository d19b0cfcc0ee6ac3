"""The work context of a job: the model resolved (folder, inference settings, ``model_key``)
and the measurement key, from the job configuration."""

from __future__ import annotations

from pathlib import Path

from mrcohort.cohort import load_layout
from mrcohort.config import BUILTIN_MODELS, JobConfig
from mrcohort.jobs.clusters import segment_device
from mrcohort.jobs.participant import WorkContext
from mrcohort.jobs.scan_rows import layout_params_hash
from mrcohort.segmentation.model import (
    InferenceSettings,
    fast_settings,
    load_model_folder,
    model_key,
    resolve_model_folder,
)

__all__ = ["model_name", "work_context"]


def model_name(cfg: JobConfig) -> str:
    """The model as the configuration names it (a folder by its name)."""
    name = cfg.model.name if cfg.model.name in BUILTIN_MODELS else Path(cfg.model.name).name
    return f"{name} body_comp" if cfg.model.body_comp else name


def work_context(cfg: JobConfig, *, run_id: str) -> WorkContext:
    """Resolve the model (folder, settings, ``model_key``) and the measurement key."""
    m = cfg.model
    folder_path = str(resolve_model_folder(m.name, variant="body_comp")) if m.body_comp else m.name
    folds = tuple(m.folds) or None
    folder = load_model_folder(folder_path, folds)
    mirroring = {"auto": None, "on": True, "off": False}[m.mirroring]
    settings = (
        fast_settings(folder)
        if m.fast
        else InferenceSettings(folds, tile_step_size=m.tile_step_size, use_mirroring=mirroring)
    )
    layout_settings = cfg.input.layout_settings or None
    layout_config = load_layout(cfg.input.layout, layout_settings)
    device = segment_device(cfg)  # "cuda" on GPU workers (each sees only its own GPU)
    key = model_key(
        folder,
        settings,
        input_channel=m.channel,
        device_type=device,
        input_rules=layout_params_hash(layout_config),
    )
    return WorkContext(
        cohort=cfg.input.cohort,
        store=Path(cfg.store.path),
        run_id=run_id,
        layout=cfg.input.layout,
        model=folder_path,
        model_key=key,
        measure_key=cfg.measure.measure_key(),
        inference=settings,
        channel=m.channel,
        measure=cfg.measure,
        device=device,
        layout_config=layout_config,
        model_name=model_name(cfg),
        qc_pictures=cfg.store.qc_pictures,
    )
