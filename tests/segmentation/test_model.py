"""Model folders (MRSegmentator weights roots, nnU-Net trainer folders), their label maps and
``model_key``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mrcohort.errors import SegmentationError
from mrcohort.labels import BODY_COMP_LABEL_MAP, BODY_COMP_LABELS, MRSEG_LABEL_MAP
from mrcohort.segmentation.model import (
    InferenceSettings,
    cached_file_hash,
    load_model_folder,
    model_key,
)

BODY_COMP_DATASET = {
    "channel_names": {"0": "MR"},
    "labels": {"background": 0} | {lab.name: lab.id for lab in BODY_COMP_LABELS.values()},
    "numTraining": 1,
    "file_ending": ".nii.gz",
}


def write_random_model(out: Path, dataset_json: dict, seed: int = 0) -> Path:
    """A model folder of the demo architecture with seeded random (untrained) weights."""
    import torch

    from mrcohort.devtools.train_demo import (
        TrainSettings,
        build_network,
        demo_plans,
        save_model_folder,
    )

    torch.manual_seed(seed)
    plans = demo_plans((5.0, 3.5, 3.5), (32, 64, 64))
    net = build_network(plans, dataset_json)
    save_model_folder(out, net, plans, dataset_json, TrainSettings(n_train=0), train_seconds=0)
    return out


def test_training_script_writes_a_loadable_nnunet_folder(tiny_model):
    import torch

    assert (tiny_model / "plans.json").is_file()
    assert (tiny_model / "dataset.json").is_file()
    ckpt = torch.load(tiny_model / "fold_0" / "checkpoint_final.pth", weights_only=False)
    assert ckpt["trainer_name"] == "nnUNetTrainer"
    assert ckpt["inference_allowed_mirroring_axes"] is None
    assert ckpt["init_args"]["configuration"] == "3d_fullres"
    assert ckpt["mrcohort_training"]["iterations"] == 2
    folder = load_model_folder(tiny_model)
    assert folder.folds == (0,)


def test_missing_folder_and_incomplete_folders(tmp_path, tiny_model):
    with pytest.raises(SegmentationError) as e:
        load_model_folder(tmp_path / "nope")
    assert e.value.code == "MODEL_NOT_FOUND"
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    with pytest.raises(SegmentationError) as e:
        load_model_folder(broken, folds=(0, 1))
    assert e.value.code == "MODEL_INCOMPLETE" and "fold_1" in e.value.message
    (broken / "plans.json").unlink()
    with pytest.raises(SegmentationError) as e:
        load_model_folder(broken)
    assert e.value.code == "MODEL_INCOMPLETE"


def test_nnunet_trainer_folder_layout_is_found(tmp_path, tiny_model):
    nested = tmp_path / "Dataset999" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    shutil.copytree(tiny_model, nested)
    assert load_model_folder(tmp_path / "Dataset999").path == nested


def test_model_key_follows_content_and_settings(tmp_path, tiny_model):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    settings = InferenceSettings()
    key = model_key(load_model_folder(copy), settings)
    assert key == model_key(load_model_folder(tiny_model), settings)  # content, not path
    assert key != model_key(load_model_folder(copy), InferenceSettings(tile_step_size=0.8))
    ckpt = copy / "fold_0" / "checkpoint_final.pth"
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")
    assert model_key(load_model_folder(copy), settings) != key


def test_model_key_covers_channel_and_precision_not_library_versions(tiny_model, monkeypatch):
    """What determines the labels is in the key; upgrading nnunetv2 alone is not."""
    import importlib.metadata

    folder, settings = load_model_folder(tiny_model), InferenceSettings()
    key = model_key(folder, settings)
    assert key != model_key(folder, settings, input_channel="w")
    assert key != model_key(folder, settings, device_type="cuda")  # fp16 autocast on CUDA
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "99.0" if name == "nnunetv2" else real(name)
    )
    assert model_key(folder, settings) == key


def test_file_hash_cache_is_keyed_by_size_and_mtime(tmp_path):
    import hashlib
    import os

    f, cache = tmp_path / "w.bin", tmp_path / "cache.json"
    f.write_bytes(b"abc")
    assert cached_file_hash(f, cache) == hashlib.sha256(b"abc").hexdigest()
    assert cache.is_file()
    f.write_bytes(b"abcd")
    os.utime(f, ns=(1, 10**18))
    assert cached_file_hash(f, cache) == hashlib.sha256(b"abcd").hexdigest()


def test_fast_mode_uses_one_fold_and_a_larger_step(tiny_model):
    from mrcohort.segmentation.model import fast_settings

    fast = fast_settings(load_model_folder(tiny_model))
    assert fast.folds == (0,) and fast.tile_step_size == 0.8 and fast.use_mirroring is False
    folder = load_model_folder(tiny_model)
    assert model_key(folder, fast) != model_key(folder, InferenceSettings())


def test_a_folder_with_the_body_comp_classes_is_recognised(tmp_path):
    folder = write_random_model(tmp_path / "random_bc", BODY_COMP_DATASET)
    assert load_model_folder(folder).label_map is BODY_COMP_LABEL_MAP


def test_model_folder_label_map_errors(tmp_path):
    wide = dict(BODY_COMP_DATASET, labels={"background": 0, "a": 1, "b": 300})
    folder = write_random_model(tmp_path / "wide", wide)
    with pytest.raises(SegmentationError) as err:
        load_model_folder(folder)
    assert err.value.code == "MODEL_UNSUPPORTED" and "255" in err.value.message
    regions = tmp_path / "regions"
    shutil.copytree(folder, regions)
    (regions / "dataset.json").write_text(
        json.dumps({"labels": {"background": 0, "a": [1, 2]}, "regions_class_order": [1]})
    )
    with pytest.raises(SegmentationError) as err:
        load_model_folder(regions)
    assert err.value.code == "MODEL_UNSUPPORTED" and "region" in err.value.message


def test_weights_root_picks_base_by_default_and_body_comp_on_request(weights_root):
    base = load_model_folder(weights_root)
    body = load_model_folder(weights_root, variant="body_comp")
    assert base.path == weights_root / "base"
    assert body.path == weights_root / "body_comp"
    assert base.label_map is MRSEG_LABEL_MAP
    assert body.label_map is BODY_COMP_LABEL_MAP
    assert model_key(base, InferenceSettings()) != model_key(body, InferenceSettings())


def test_mrsegmentator_alias_reads_mrseg_weights_path(weights_root, monkeypatch):
    monkeypatch.setenv("MRSEG_WEIGHTS_PATH", str(weights_root))
    assert load_model_folder("mrsegmentator", variant="body_comp").path == (
        weights_root / "body_comp"
    )
    monkeypatch.setenv("MRSEG_WEIGHTS_PATH", str(weights_root / "nowhere"))
    with pytest.raises(SegmentationError) as err:
        load_model_folder("mrsegmentator")
    assert err.value.code == "MODEL_NOT_FOUND" and "nowhere" in err.value.message


def test_missing_or_unusable_body_comp_folders_are_clear_errors(weights_root, tmp_path):
    only_base = tmp_path / "only_base"
    shutil.copytree(weights_root / "base", only_base / "base")
    with pytest.raises(SegmentationError) as err:
        load_model_folder(only_base, variant="body_comp")
    assert err.value.code == "MODEL_NOT_FOUND" and "body_comp/" in err.value.message
    with pytest.raises(SegmentationError) as err:  # a single model has no variants
        load_model_folder(weights_root / "base", variant="body_comp")
    assert err.value.code == "MODEL_NOT_FOUND"
    assert load_model_folder("demo", variant="body_comp").label_map is BODY_COMP_LABEL_MAP
    broken = tmp_path / "broken"
    shutil.copytree(weights_root / "body_comp", broken)
    (broken / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MR"}}))
    with pytest.raises(SegmentationError) as err:
        load_model_folder(broken)
    assert err.value.code == "MODEL_INCOMPLETE" and "label map" in err.value.message
