"""One job configuration file (TOML) loaded into one frozen, typed `JobConfig`.

Precedence: overrides (command-line flags) > the user's file > the shipped defaults
(``config_defaults.toml``, every key documented there). Unknown sections or keys, wrong types
and bad values raise `ConfigError` with one line naming the file, the dotted key and the
problem, e.g. ``job.toml: model.tile_step_size: Input should be less than or equal to 1``.

    cfg = load_config("job.toml", {"input.source": "/data/ukbb", "model.folds": None})
    require_paths(cfg)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import Field, ValidationError, field_validator

from mrcohort.biomarkers.participant import BiomarkerParams
from mrcohort.config_base import Section, bad
from mrcohort.config_cluster import ClusterConfig
from mrcohort.errors import MrcohortError
from mrcohort.ids import PARTITION_PATTERN, is_partition_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULTS_PATH",
    "ClusterConfig",
    "ConfigError",
    "InputConfig",
    "JobConfig",
    "ModelConfig",
    "ProgressConfig",
    "RunOptions",
    "StoreConfig",
    "config_hash",
    "dump_config",
    "load_config",
    "require_paths",
]

#: The shipped defaults, one comment per key.
DEFAULTS_PATH = Path(str(resources.files("mrcohort").joinpath("config_defaults.toml")))
#: Dotted keys holding paths: relative ones are resolved against the file's folder.
PATH_KEYS = (
    "input.source",
    "input.layout_settings",
    "store.path",
    *(f"cluster.tls.{k}" for k in ("ca_file", "cert", "key")),
    *(
        f"cluster.{b}.{pool}.{k}"
        for b in ("slurm", "pbs")
        for pool in ("gpu", "cpu")
        for k in ("log_directory", "local_directory")
    ),
)
#: Model names that are never paths.
BUILTIN_MODELS = ("demo", "mrsegmentator")
OVERRIDES = "command line"

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


class ConfigError(MrcohortError):
    """A configuration that cannot be used (code ``BAD_CONFIG`` or ``FILE_NOT_FOUND``)."""

    def __init__(self, message: str, code: str = "BAD_CONFIG") -> None:
        super().__init__(code, message, stage="config")


class InputConfig(Section):
    """``[input]``: where the cohort is and how it is organised."""

    source: str = ""
    layout: Literal["ukbb", "nako", "manifest"] = "ukbb"
    layout_settings: str = ""
    cohort: str = "ukbb"

    @field_validator("cohort")
    @classmethod
    def _cohort(cls, value: str) -> str:
        if not is_partition_value(value):
            raise bad(f"{value!r} is not a valid cohort name ({PARTITION_PATTERN}, no '..')")
        return value


class StoreConfig(Section):
    """``[store]``: the output store, how often results are flushed to it, QC pictures."""

    path: str = ""
    flush_every_participants: int = Field(200, ge=1)
    flush_every_seconds: float = Field(300.0, gt=0)
    qc_pictures: bool = True


class ModelConfig(Section):
    """``[model]``: the segmentation model and its inference settings."""

    name: str = Field("demo", min_length=1)
    body_comp: bool = False
    folds: tuple[int | Literal["all"], ...] = ()
    tile_step_size: float = Field(0.5, gt=0, le=1)
    mirroring: Literal["auto", "on", "off"] = "auto"
    fast: bool = False
    device: str = "auto"
    channel: Literal["in", "opp", "w", "f"] = "in"

    @field_validator("folds", mode="before")
    @classmethod
    def _folds(cls, value: object) -> object:
        if not isinstance(value, list | tuple):
            raise bad("folds is a list such as [0, 1] or [\"all\"] ([] = every fold)")
        for fold in value:
            is_int = isinstance(fold, int) and not isinstance(fold, bool)
            if not (fold == "all" or (is_int and fold >= 0)):
                raise bad(f"folds are integers >= 0 or \"all\", not {fold!r}")
        return tuple(value)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.fullmatch(value):
            raise bad(f"{value!r} is not \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"")
        return value


class ProgressConfig(Section):
    """``[progress]``: progress reporting."""

    interval_seconds: float = Field(30.0, gt=0)


class RunOptions(Section):
    """``[run]``: what a re-run recomputes."""

    retry_failed: bool = False
    force: bool = False


_POSITIVE_MEASURES = ("iso_spacing_mm", "smoothing_mm", "soam_smoothing_mm", "soam_step_mm")


def _check_measure(p: BiomarkerParams) -> BiomarkerParams:
    """Range checks `BiomarkerParams` does not do itself (its fields are only typed)."""
    for name, value in vars(p).items():
        if isinstance(value, float | int) and not isinstance(value, bool):
            if not math.isfinite(value) or value < 0:
                raise bad("must be a finite number >= 0", name)
            if name in _POSITIVE_MEASURES and value == 0:
                raise bad("must be > 0", name)
    if p.min_voxels < 1:
        raise bad("must be >= 1", "min_voxels")
    if any(i < 1 for i in p.expected_ids):
        raise bad("label ids are >= 1", "expected_ids")
    for lid, lo, hi in p.volume_ranges_ml:
        if lid < 1 or not (math.isfinite(hi) and 0 <= lo <= hi):
            problem = f"[{lid}, {lo}, {hi}] is not [label_id >= 1, 0 <= min_ml <= max_ml]"
            raise bad(problem, "volume_ranges_ml")
    return p


class JobConfig(Section):
    """The whole job: one field per section of the configuration file."""

    input: InputConfig = InputConfig()
    store: StoreConfig = StoreConfig()
    model: ModelConfig = ModelConfig()
    measure: BiomarkerParams = BiomarkerParams()
    cluster: ClusterConfig = ClusterConfig()
    progress: ProgressConfig = ProgressConfig()
    run: RunOptions = RunOptions()

    @field_validator("measure")
    @classmethod
    def _measure(cls, value: BiomarkerParams) -> BiomarkerParams:
        return _check_measure(value)


# ---------------------------------------------------------------------------- loading


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    """The table of one TOML file; `ConfigError` when missing or not valid TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: configuration file not found", "FILE_NOT_FOUND") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot read the configuration file: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: TOML syntax error: {exc}") from None


def _absolute(value: object, base: Path) -> object:
    """``value`` as an absolute path against ``base`` ("" and non-strings kept)."""
    if not isinstance(value, str) or not value:
        return value
    return os.path.abspath(os.path.join(base, os.path.expanduser(value)))


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make the path keys of one source absolute, in place (the model name if it exists)."""
    for dotted in (*PATH_KEYS, "model.name"):
        *sections, key = dotted.split(".")
        table: object = data
        for section in sections:
            table = table.get(section) if isinstance(table, dict) else None
        if not isinstance(table, dict) or key not in table:
            continue
        value = table[key]
        if dotted == "model.name":
            if not isinstance(value, str) or value in BUILTIN_MODELS:
                continue
            if not (base / os.path.expanduser(value)).exists():
                continue
        table[key] = _absolute(value, base)


def _nest(overrides: Mapping[str, object]) -> dict[str, Any]:
    """Dotted keys -> nested tables; ``None`` values (a flag not given) are left out."""
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        table = nested
        for part in parents:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{OVERRIDES}: {dotted}: {part} is not a section")
        table[leaf] = os.fspath(value) if isinstance(value, os.PathLike) else value
    return nested


def _merge(
    base: dict[str, Any],
    top: Mapping[str, Any],
    origin: dict[str, str],
    label: str,
    prefix: str = "",
) -> None:
    """Deep-merge ``top`` into ``base`` in place, recording each key's source in ``origin``."""
    for key, value in top.items():
        dotted = f"{prefix}{key}"
        origin[dotted] = label
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origin, label, f"{dotted}.")
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value


def _where(dotted: str, origin: Mapping[str, str]) -> str:
    """The source that set ``dotted`` (or its closest parent)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in origin:
            return origin[".".join(parts[:n])]
    return str(DEFAULTS_PATH)


def _problem(error: Mapping[str, Any]) -> tuple[str, str]:
    """Dotted key and one-line problem of one pydantic error."""
    parts = [str(p) for p in error["loc"]]
    if error.get("ctx", {}).get("key"):
        parts.append(error["ctx"]["key"])
    if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return ".".join(parts), "unknown key (check the spelling; see config_defaults.toml)"
    got = error.get("input")
    shown = "" if isinstance(got, Mapping) else f" (got {json.dumps(got)})"
    return ".".join(parts), f"{error['msg']}{shown}".replace("\n", " ")


def _validate(data: dict[str, Any], origin: Mapping[str, str]) -> JobConfig:
    """The `JobConfig` of merged tables; TOML and JSON types only (strict: no coercion)."""
    try:
        return JobConfig.model_validate_json(json.dumps(data), strict=True)
    except TypeError as exc:  # a TOML date or time, or an odd override value
        raise ConfigError(f"unsupported value in the configuration: {exc}") from None
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        key, problem = _problem(errors[0])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{_where(key, origin)}: {key}: {problem}{more}") from None


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: Mapping[str, object] | None = None
) -> JobConfig:
    """Load a job configuration: shipped defaults <- ``path`` <- ``overrides``.

    Parameters
    ----------
    path : str or PathLike, optional
        The user's TOML file (it may hold only the keys it changes). Relative paths in it
        (``input.source``, ``input.layout_settings``, ``store.path``, ``model.name`` when it
        names an existing path) are resolved against its folder.
    overrides : mapping of str to object, optional
        Dotted keys (``{"input.source": "/data", "model.folds": [0]}``), e.g. from
        command-line flags; ``None`` values (a flag not given) are ignored. Relative paths
        are resolved against the current directory.

    Returns
    -------
    JobConfig
        Frozen; its paths are absolute strings ("" where not set).

    Raises
    ------
    ConfigError
        ``FILE_NOT_FOUND`` for a missing file; ``BAD_CONFIG`` for TOML syntax errors, unknown
        sections or keys, wrong types and bad values (one line: file, dotted key, problem).
    """
    origin: dict[str, str] = {}
    data = _read_toml(DEFAULTS_PATH, str(DEFAULTS_PATH))
    if path is not None:
        user = _read_toml(Path(path), os.fspath(path))
        _resolve_paths(user, Path(path).absolute().parent)
        _merge(data, user, origin, os.fspath(path))
    if overrides:
        top = _nest(overrides)
        _resolve_paths(top, Path.cwd())
        _merge(data, top, origin, OVERRIDES)
    return _validate(data, origin)


def require_paths(cfg: JobConfig) -> None:
    """Raise `ConfigError` unless ``input.source`` and ``store.path`` are set."""
    for key, value, flag in (
        ("input.source", cfg.input.source, "--source"),
        ("store.path", cfg.store.path, "--store"),
    ):
        if not value:
            raise ConfigError(f"{key} is required: give {flag} or set it in the config file")


def config_hash(cfg: JobConfig) -> str:
    """First 16 hex digits of the sha256 of the resolved configuration as canonical JSON."""
    table = cfg.model_dump(mode="json")
    blob = json.dumps(table, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _toml_line(key: str, value: object) -> str:
    """``key = value``; lists inline (JSON arrays of numbers and strings are valid TOML)."""
    if isinstance(value, list):
        return f"{key} = {json.dumps(value, allow_nan=False)}\n"
    return tomli_w.dumps({key: value})


def dump_config(cfg: JobConfig) -> str:
    """TOML text of the fully resolved configuration (every key); `load_config` reads it back.

    Keys are documented in the shipped defaults (``mrcohort/config_defaults.toml``).
    """
    parts = [
        "# mrcohort job configuration, fully resolved (every key; documented in\n"
        f"# mrcohort/config_defaults.toml). config_hash = {config_hash(cfg)}\n"
    ]
    for section, table in cfg.model_dump(mode="json").items():
        parts.extend(_toml_table(section, table))
    return "".join(parts)


def _toml_table(name: str, table: Mapping[str, Any]) -> list[str]:
    """``[name]`` with its keys, then its sub-tables as ``[name.sub]``."""
    body = "".join(_toml_line(k, v) for k, v in table.items() if not isinstance(v, Mapping))
    out = [f"\n[{name}]\n{body}"]
    for key, value in table.items():
        if isinstance(value, Mapping):
            out.extend(_toml_table(f"{name}.{key}", value))
    return out
