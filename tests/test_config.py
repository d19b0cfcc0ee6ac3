"""The job configuration: shipped defaults, precedence, validation, paths, dump and hash."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pydantic
import pytest

from mrcohort.biomarkers.participant import BiomarkerParams
from mrcohort.config import (
    DEFAULTS_PATH,
    ConfigError,
    JobConfig,
    config_hash,
    dump_config,
    load_config,
    require_paths,
    tomllib,
)
from mrcohort.errors import MrcohortError

#: An unset pool of worker jobs (every key from jobqueue.yaml or the fallbacks).
POOL = {
    "config_name": "",
    "queue": "",
    "account": "",
    "walltime": "",
    "cores": 0,
    "memory": "",
    "processes": 0,
    "gpus_per_job": 0,
    "resource_spec": "",
    "job_extra_directives": (),
    "worker_extra_args": (),
    "job_script_prologue": (),
    "local_directory": "",
    "log_directory": "",
    "python": "",
    "minimum_jobs": 0,
    "maximum_jobs": 1,
}
DOCUMENTED = {
    "input": {"source": "", "layout": "ukbb", "layout_settings": "", "cohort": "ukbb"},
    "store": {
        "path": "",
        "flush_every_participants": 200,
        "flush_every_seconds": 300.0,
        "qc_pictures": True,
    },
    "model": {
        "name": "demo",
        "body_comp": False,
        "folds": (),
        "tile_step_size": 0.5,
        "mirroring": "auto",
        "fast": False,
        "device": "auto",
        "channel": "in",
    },
    "cluster": {
        "backend": "local",
        "workers": 0,
        "torch_threads": 0,
        "memory_limit": "auto",
        "dashboard": False,
        "host": "127.0.0.1",
        "interface": "",
        "max_in_flight": 0,
        "prepared_ahead": 3,
        "allowed_failures": 3,
        "lifetime_margin_minutes": 10.0,
        "local": {"gpus": ()},
        "slurm": {"gpu": {**POOL, "gpus_per_job": 1}, "cpu": POOL},
        "pbs": {"gpu": {**POOL, "gpus_per_job": 1}, "cpu": POOL},
        "scheduler": {"address": "", "wait_for_workers_seconds": 600.0},
        "tls": {"ca_file": "", "cert": "", "key": "", "require_encryption": False},
    },
    "progress": {"interval_seconds": 30.0},
    "run": {"retry_failed": False, "force": False},
}


def _write(folder: Path, text: str, name: str = "job.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _error(path: Path | None = None, overrides: dict[str, object] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    assert "\n" not in str(info.value)
    return info.value


def test_defaults_load_and_equal_the_documented_values() -> None:
    cfg = load_config()
    for section, values in DOCUMENTED.items():
        assert getattr(cfg, section).model_dump() == values, section
    assert cfg.measure == BiomarkerParams()
    assert cfg == JobConfig()


def test_every_default_key_has_a_comment_line_directly_above_it() -> None:
    lines = DEFAULTS_PATH.read_text().splitlines()
    keys = 0
    for i, line in enumerate(lines):
        if line and not line.startswith(("#", "[")):
            keys += 1
            assert lines[i - 1].startswith("# "), f"no comment above {line!r}"
    assert keys == _leaves(DOCUMENTED) + 11  # 11 scalar measure fields


def _leaves(table: dict) -> int:
    """Keys of a nested table, sub-tables counted by their keys."""
    return sum(_leaves(v) if isinstance(v, dict) else 1 for v in table.values())


def test_default_measure_values_never_drift_from_biomarker_params() -> None:
    shipped = tomllib.loads(DEFAULTS_PATH.read_text())["measure"]
    defaults = dataclasses.asdict(BiomarkerParams())
    scalars = {k: v for k, v in defaults.items() if not isinstance(v, tuple)}
    assert shipped == scalars
    for commented in ("expected_ids", "volume_ranges_ml"):
        assert f"# {commented} = [" in DEFAULTS_PATH.read_text()


def test_file_overrides_defaults_and_overrides_beat_the_file(tmp_path: Path) -> None:
    text = '[model]\ntile_step_size = 0.7\nfolds = [0, "all"]\n[run]\nforce = true'
    path = _write(tmp_path, text)
    cfg = load_config(path)
    assert cfg.model.tile_step_size == 0.7
    assert cfg.model.folds == (0, "all")
    assert cfg.run.force is True
    assert cfg.model.device == "auto"  # untouched default
    cfg = load_config(path, {"model.tile_step_size": 0.25, "model.folds": [1]})
    assert (cfg.model.tile_step_size, cfg.model.folds, cfg.run.force) == (0.25, (1,), True)


def test_dotted_override_of_a_measure_field_and_none_is_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, "[measure]\nerosion_mm = 2.0\n[cluster]\nworkers = 3")
    cfg = load_config(path, {"measure.dust_mm3": 50, "cluster.workers": None, "run.force": None})
    assert cfg.measure == BiomarkerParams(erosion_mm=2.0, dust_mm3=50.0)
    assert cfg.cluster.workers == 3
    assert cfg.run.force is False


def test_measure_lists_override(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "[measure]\nexpected_ids = [1, 2]\nvolume_ranges_ml = [[1, 30, 1500.5]]"
    )
    cfg = load_config(path)
    assert cfg.measure.expected_ids == (1, 2)
    assert cfg.measure.volume_ranges_ml == ((1, 30.0, 1500.5),)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[model]\ntile_stepsize = 0.5", "model.tile_stepsize"),
        ("[modell]\nname = 'demo'", "modell"),
        ("[measure]\nerosion = 1.0", "measure.erosion"),
        ("[cluster]\nworkers = 'four'", "cluster.workers"),
        ("[run]\nforce = 1", "run.force"),
        ("[store]\nflush_every_participants = 1.5", "store.flush_every_participants"),
        ("[model]\ntile_step_size = 1.5", "model.tile_step_size"),
        ("[store]\nflush_every_seconds = 0", "store.flush_every_seconds"),
        ("[input]\ncohort = 'uk/bb'", "input.cohort"),
        ("[input]\ncohort = '..'", "input.cohort"),
        ("[input]\nlayout = 'biobank'", "input.layout"),
        ("[model]\nfolds = [0, 'x']", "model.folds"),
        ("[model]\ndevice = 'gpu'", "model.device"),
        ("[model]\nmirroring = true", "model.mirroring"),
        ("[cluster]\nbackend = 'kubernetes'", "cluster.backend"),
        ("[cluster]\nbackend = 'scheduler'", "cluster.scheduler"),
        ("[cluster.slurm.gpu]\nwalltime = '30:00'", "cluster.slurm.gpu.walltime"),
        ("[cluster.slurm.cpu]\nminimum_jobs = 3", "cluster.slurm.cpu.minimum_jobs"),
        ("[cluster.pbs.gpu]\nmemory = 'lots'", "cluster.pbs.gpu.memory"),
        ("[cluster.tls]\nca_file = 'ca.pem'", "cluster.tls.ca_file"),
        ("[cluster.slurm.gpu]\nqeue = 'gpu'", "cluster.slurm.gpu.qeue"),
        ("[cluster]\nmemory_limit = 'lots'", "cluster.memory_limit"),
        ("[measure]\nerosion_mm = -1.0", "measure.erosion_mm"),
        ("[measure]\nmin_voxels = 0", "measure.min_voxels"),
        ("[measure]\nvolume_ranges_ml = [[1, 50.0, 2.0]]", "measure.volume_ranges_ml"),
        ("[progress]\ninterval_seconds = inf", "progress.interval_seconds"),
        ("model = 3", "model"),
    ],
)
def test_bad_settings_name_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    err = _error(_write(tmp_path, text))
    assert isinstance(err, MrcohortError)
    assert (err.code, err.stage) == ("BAD_CONFIG", "config")
    assert err.message.startswith(f"{tmp_path / 'job.toml'}: {key}: "), err.message


def test_error_message_reads_as_documented(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "[model]\ntile_step_size = 2")
    err = _error(Path("job.toml"))
    assert err.message.startswith(
        "job.toml: model.tile_step_size: Input should be less than or equal to 1"
    )
    assert "unknown key" in _error(_write(tmp_path, "[run]\nforse = true")).message


def test_bad_override_names_the_command_line() -> None:
    err = _error(overrides={"model.tile_step_size": 0})
    assert err.message.startswith("command line: model.tile_step_size: ")
    assert _error(overrides={"store.bogus": 1}).message.startswith("command line: store.bogus: ")


def test_toml_syntax_error_and_missing_file(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, "[model]\nname = demo\n"))
    assert err.code == "BAD_CONFIG"
    assert "job.toml: TOML syntax error" in err.message and "line 2" in err.message
    assert _error(tmp_path / "absent.toml").code == "FILE_NOT_FOUND"


def test_relative_paths_resolve_against_the_file_folder(tmp_path: Path, monkeypatch) -> None:
    conf = tmp_path / "conf"
    (conf / "weights").mkdir(parents=True)
    path = _write(
        conf,
        '[input]\nsource = "../cohort"\nlayout_settings = "rules.yaml"\n'
        '[store]\npath = "out"\n[model]\nname = "weights"',
    )
    monkeypatch.chdir(tmp_path)
    cfg = load_config(path)
    assert cfg.input.source == str(tmp_path / "cohort")
    assert cfg.input.layout_settings == str(conf / "rules.yaml")
    assert cfg.store.path == str(conf / "out")
    assert cfg.model.name == str(conf / "weights")


def test_override_paths_resolve_against_the_current_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(overrides={"input.source": Path("data"), "model.name": "mrsegmentator"})
    assert cfg.input.source == str(tmp_path / "data")
    assert cfg.model.name == "mrsegmentator"
    assert load_config(overrides={"model.name": "nowhere"}).model.name == "nowhere"


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    cfg = load_config(
        overrides={
            "input.source": str(tmp_path / "in"),
            "store.path": str(tmp_path / "out"),
            "model.folds": [0, "all"],
            "measure.expected_ids": [1, 5],
            "measure.volume_ranges_ml": [[1, 30.0, 1500.0], [5, 500, 4500]],
            "cluster.memory_limit": "16GB",
        }
    )
    text = dump_config(cfg)
    assert text.startswith("#")
    assert "volume_ranges_ml = [[1, 30.0, 1500.0], [5, 500.0, 4500.0]]" in text
    again = load_config(_write(tmp_path, text, "dumped.toml"))
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)
    assert load_config(_write(tmp_path, dump_config(JobConfig()), "d.toml")) == JobConfig()


def test_config_hash_is_stable_and_changes_with_a_value() -> None:
    first = config_hash(load_config())
    assert len(first) == 16 and int(first, 16) >= 0
    assert config_hash(load_config()) == first
    assert config_hash(load_config(overrides={"measure.erosion_mm": 2.5})) != first
    assert config_hash(load_config(overrides={"run.force": True})) != first


def test_config_is_frozen_hashable_and_picklable() -> None:
    cfg = load_config(overrides={"model.folds": [0]})
    with pytest.raises(pydantic.ValidationError):
        cfg.model = cfg.model  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        cfg.model.fast = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.measure.erosion_mm = 1.0  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert hash(cfg) == hash(load_config(overrides={"model.folds": [0]}))


def test_require_paths() -> None:
    with pytest.raises(ConfigError, match=r"input\.source is required: give --source"):
        require_paths(load_config(overrides={"store.path": "/out"}))
    with pytest.raises(ConfigError, match=r"store\.path is required"):
        require_paths(load_config(overrides={"input.source": "/in"}))
    require_paths(load_config(overrides={"input.source": "/in", "store.path": "/out"}))
