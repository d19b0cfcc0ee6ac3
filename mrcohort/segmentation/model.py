"""Model folders (MRSegmentator flat layout or nnU-Net's trainer folder) and their identity.

A model folder holds ``plans.json``, ``dataset.json`` and ``fold_N/checkpoint_final.pth``.
MRSegmentator 2.0 keeps one such folder per model under its weights root
(``~/.mrsegmentator`` or ``$MRSEG_WEIGHTS_PATH``): ``base/`` (40 classes) and ``body_comp/``
(10 body-composition classes); ``--model ROOT`` picks ``base`` like MRSegmentator does and
``variant="body_comp"`` (``--body-comp``) the other. Each model's label map is read from its
own ``dataset.json``. Weights are never downloaded: a missing or incomplete folder is a
clear error naming it. ``model_key`` is a content hash, so new weights under the same path
are a new model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mrcohort.errors import SegmentationError
from mrcohort.io.files import sha256_file
from mrcohort.labels import LabelMap, UnsupportedLabelMap

CHECKPOINT = "checkpoint_final.pth"
_FOLD_RE = re.compile(r"^fold_(\d+|all)$")


@dataclass(frozen=True)
class InferenceSettings:
    """Settings that change the segmentation (part of ``model_key``).

    Attributes
    ----------
    folds
        Folds to ensemble; ``None`` = every fold present in the folder.
    tile_step_size
        Sliding-window step as a fraction of the patch (nnU-Net default 0.5).
    use_mirroring
        Mirroring test-time augmentation; ``None`` = follow the checkpoint's
        ``inference_allowed_mirroring_axes`` (MRSegmentator's weights have none).
    engine
        ``"torch"``: resampling in torch on the device (``segmentation.inference``);
        ``"nnunet"``: nnU-Net's own ``predict_single_npy_array`` (scipy export on the CPU).
    """

    folds: tuple[int | str, ...] | None = None
    tile_step_size: float = 0.5
    use_mirroring: bool | None = None
    engine: str = "torch"


def fast_settings(folder: ModelFolder) -> InferenceSettings:
    """MRSegmentator's ``--fast``: the first fold only, sliding-window step 0.8, no mirroring."""
    return InferenceSettings(folds=folder.folds[:1], tile_step_size=0.8, use_mirroring=False)


@dataclass(frozen=True)
class ModelFolder:
    """A validated model folder."""

    path: Path
    folds: tuple[int | str, ...]
    label_map: LabelMap

    def checkpoint(self, fold: int | str) -> Path:
        return self.path / f"fold_{fold}" / CHECKPOINT


def demo_model_path(variant: str = "base") -> Path:
    """A demo model shipped inside the package (phantom-trained; not for real images):
    ``base`` (MRSegmentator's 40 classes) or ``body_comp`` (the 10 body-composition ones)."""
    names = {"base": "demo_model", "body_comp": "demo_body_comp_model"}
    if variant not in names:
        raise SegmentationError("MODEL_NOT_FOUND", f"no demo model {variant!r} (known: {names})")
    name = names[variant]
    return Path(str(resources.files("mrcohort.segmentation") / name))


#: MRSegmentator 2.0's models under its weights root.
MRSEG_VARIANTS: tuple[str, ...] = ("base", "body_comp")


def mrsegmentator_weights_root() -> Path:
    """Where MRSegmentator keeps its weights: ``$MRSEG_WEIGHTS_PATH`` or ``~/.mrsegmentator``."""
    env = os.environ.get("MRSEG_WEIGHTS_PATH")
    return Path(env).expanduser() if env else Path.home() / ".mrsegmentator"


def resolve_model_folder(model: str | os.PathLike[str], *, variant: str | None = None) -> Path:
    """The model folder that ``model`` names.

    ``"demo"`` → the shipped demo model; ``"mrsegmentator"`` → MRSegmentator's own weights
    root (never downloaded); a folder with ``plans.json`` → itself; an MRSegmentator 2.0
    weights root → its ``variant`` subfolder (default ``base``); a trainer folder's parent →
    that trainer folder.
    """
    if variant is not None and variant not in MRSEG_VARIANTS:
        raise SegmentationError(
            "MODEL_NOT_FOUND", f"unknown model variant {variant!r} (known: {MRSEG_VARIANTS})"
        )
    if str(model) == "demo":
        return demo_model_path(variant or "base")
    path = mrsegmentator_weights_root() if str(model) == "mrsegmentator" else Path(model)
    path = path.expanduser()
    if not path.is_dir():
        raise SegmentationError("MODEL_NOT_FOUND", f"model folder {path} does not exist")
    if (path / "plans.json").is_file():
        if variant not in (None, "base"):
            raise SegmentationError(
                "MODEL_NOT_FOUND",
                f"{path} is a single model (plans.json at its root), not an MRSegmentator "
                f"weights root holding {variant}/",
            )
        return path
    if variant is not None or any((path / v).is_dir() for v in MRSEG_VARIANTS):
        sub = path / (variant or "base")
        if not sub.is_dir():
            raise SegmentationError(
                "MODEL_NOT_FOUND", f"{path} has no {sub.name}/ model folder (weights root)"
            )
        if not (sub / "plans.json").is_file():
            raise SegmentationError("MODEL_INCOMPLETE", f"{sub} has no plans.json")
        return sub
    # nnU-Net's layout: <dataset>/<Trainer>__<Plans>__<config>/plans.json
    nested = sorted(p for p in path.iterdir() if p.is_dir() and (p / "plans.json").is_file())
    if len(nested) == 1:
        return nested[0]
    if len(nested) > 1:
        names = ", ".join(p.name for p in nested)
        raise SegmentationError(
            "MODEL_AMBIGUOUS", f"{path} holds several model folders ({names}); name one"
        )
    raise SegmentationError("MODEL_INCOMPLETE", f"{path} has no plans.json")


def load_model_folder(
    model: str | os.PathLike[str],
    folds: tuple[int | str, ...] | None = None,
    *,
    variant: str | None = None,
) -> ModelFolder:
    """Validate a model folder; every requested fold must have a readable checkpoint."""
    path = resolve_model_folder(model, variant=variant)
    docs = {}
    for name in ("plans.json", "dataset.json"):
        f = path / name
        if not f.is_file():
            raise SegmentationError("MODEL_INCOMPLETE", f"{path} is missing {name}")
        try:
            docs[name] = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            raise SegmentationError("MODEL_INCOMPLETE", f"{f} is not valid JSON: {exc}") from exc
    try:
        label_map = LabelMap.from_dataset_json(docs["dataset.json"])
    except UnsupportedLabelMap as exc:
        raise SegmentationError("MODEL_UNSUPPORTED", f"{path / 'dataset.json'}: {exc}") from exc
    except (ValueError, AttributeError, TypeError) as exc:
        raise SegmentationError(
            "MODEL_INCOMPLETE", f"{path / 'dataset.json'} has no usable label map: {exc}"
        ) from exc
    if max(label_map.ids()) > 255:
        raise SegmentationError(
            "MODEL_UNSUPPORTED", f"{path} has label ids above 255 (labels are written as uint8)"
        )
    present = tuple(
        sorted(
            (
                _fold_id(m.group(1))
                for p in path.iterdir()
                if (m := _FOLD_RE.match(p.name)) and (p / CHECKPOINT).is_file()
            ),
            key=str,
        )
    )
    wanted = present if folds is None else tuple(_fold_id(str(f)) for f in folds)
    if not wanted:
        raise SegmentationError("MODEL_INCOMPLETE", f"{path} has no fold_N/{CHECKPOINT}")
    missing = [f for f in wanted if f not in present]
    if missing:
        raise SegmentationError(
            "MODEL_INCOMPLETE",
            f"{path} is missing {', '.join(f'fold_{f}/{CHECKPOINT}' for f in missing)}",
        )
    return ModelFolder(path, wanted, label_map)


def _fold_id(text: str) -> int | str:
    return text if text == "all" else int(text)


def cached_file_hash(path: Path, cache_file: Path | None = None) -> str:
    """sha256 of a file, cached by (absolute path, size, mtime_ns) in a small JSON file.

    Hashing 1 GB of weights per scan would dominate small jobs, so the hash is computed once
    per file version; the content hash stays the identity, path+size+mtime only the cache key.
    """
    cache_file = cache_file or _hash_cache_path()
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache: dict[str, str] = {}
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    digest = sha256_file(path)
    cache[key] = digest
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only home only costs re-hashing
    return digest


def _hash_cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(root) / "mrcohort" / "file_hashes.json"


def model_key(
    folder: ModelFolder,
    settings: InferenceSettings,
    *,
    input_channel: str = "in",
    device_type: str = "cpu",
    input_rules: str = "",
    length: int = 16,
) -> str:
    """Identity of what determines the labels: the weights used, plans.json, dataset.json
    (and version.json), the inference settings (folds, step size, mirroring, engine), the
    Dixon channel given to the model, the numeric precision (nnU-Net runs CUDA under fp16
    autocast, the CPU in fp32) and ``input_rules`` (a hash of the layout settings that choose
    the stations the model sees; empty outside a cohort job).

    Installed library versions are not part of it (they are provenance, recorded in the
    ``runs`` table): upgrading nnunetv2 alone does not force a recompute.
    """
    h = hashlib.sha256()
    for fold in folder.folds:
        h.update(f"fold_{fold}:{cached_file_hash(folder.checkpoint(fold))}\n".encode())
    for name in ("plans.json", "dataset.json", "version.json"):  # version.json is optional
        if (folder.path / name).is_file():
            h.update(f"{name}:{sha256_file(folder.path / name)}\n".encode())
    precision = "fp16-autocast" if device_type == "cuda" else "fp32"
    h.update(
        f"step={settings.tile_step_size};mirror={settings.use_mirroring};"
        f"engine={settings.engine};channel={input_channel};precision={precision};"
        f"input_rules={input_rules}\n".encode()
    )
    return h.hexdigest()[:length]
