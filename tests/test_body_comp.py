"""Second model: MRSegmentator 2.0's body-composition model (its own 10-label map).

Real body-composition weights cannot be downloaded here. The shipped body-composition demo
model (trained by ``mrcohort train-demo-model --body-comp`` on the phantom's
body-composition truth) runs the whole path and is scored against that truth; a folder with
seeded random weights checks that any 10-class folder is found and identified. What is
measured on a body-composition map is checked against the phantom's analytic truth.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from mrcohort.biomarkers.participant import measure_participant
from mrcohort.cli import app
from mrcohort.cohort.stitch import stitch
from mrcohort.errors import SegmentationError
from mrcohort.labels import (
    BODY_COMP_LABEL_MAP,
    BODY_COMP_LABELS,
    MRSEG_LABEL_MAP,
    MRSEG_LABELS,
    LabelGroup,
    LabelMap,
)
from mrcohort.phantoms import make_participant
from mrcohort.segmentation.model import (
    InferenceSettings,
    demo_model_path,
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


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory) -> Path:
    """An MRSegmentator 2.0 weights root: base/ and body_comp/ (the demo models)."""
    root = tmp_path_factory.mktemp("mrseg_weights")
    shutil.copytree(demo_model_path(), root / "base")
    shutil.copytree(demo_model_path("body_comp"), root / "body_comp")
    return root


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


# --- label maps -----------------------------------------------------------------------


def test_dataset_json_label_maps_are_recognised():
    mrseg = {"labels": {"background": 0} | {lab.name: lab.id for lab in MRSEG_LABELS.values()}}
    assert LabelMap.from_dataset_json(mrseg) is MRSEG_LABEL_MAP
    assert LabelMap.from_dataset_json(BODY_COMP_DATASET) is BODY_COMP_LABEL_MAP
    custom = LabelMap.from_dataset_json({"labels": {"background": 0, "liver": 1, "tumour": 7}})
    assert custom.name == "custom"
    assert custom.ids() == (1, 7)
    assert (custom[1].group, custom[7].group) == (LabelGroup.ORGAN, LabelGroup.OTHER)
    assert custom.id_of("tumour") == 7 and custom.id_of("spleen") is None


def test_body_comp_groups():
    assert BODY_COMP_LABEL_MAP.ids(LabelGroup.ADIPOSE) == (1, 2, 9, 10)
    assert BODY_COMP_LABEL_MAP.ids(LabelGroup.MUSCLE) == (3, 4, 5, 6, 7, 8)


def test_region_based_and_ignore_labels():
    from mrcohort.labels import UnsupportedLabelMap

    with pytest.raises(UnsupportedLabelMap):
        LabelMap.from_dataset_json(
            {
                "labels": {"background": 0, "whole": [1, 2], "core": [2]},
                "regions_class_order": [1, 2],
            }
        )
    lm = LabelMap.from_dataset_json({"labels": {"background": 0, "liver": 1, "ignore": 2}})
    assert lm.ids() == (1,)  # nnU-Net's ignore label is not a class


@pytest.mark.parametrize(
    "labels",
    [
        {"background": 0, "a": 1, "b": 1},
        {"background": 0, "a": "one"},
        {"background": 0},
        {},
    ],
)
def test_bad_dataset_json_label_maps_are_errors(labels):
    with pytest.raises(ValueError):
        LabelMap.from_dataset_json({"labels": labels})


# --- model folders ----------------------------------------------------------------------


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


def test_segmenter_carries_the_models_label_map(weights_root):
    from mrcohort.segmentation.predictor import Segmenter

    seg = Segmenter.load(weights_root / "body_comp", device="cpu")
    assert seg.label_map is BODY_COMP_LABEL_MAP
    rng = np.random.default_rng(0)
    img = sitk.GetImageFromArray(rng.uniform(0, 500, (20, 40, 44)).astype(np.float32))
    img.SetSpacing((3.5, 3.5, 5.0))
    out = seg.segment(img)
    arr = sitk.GetArrayFromImage(out)
    assert arr.dtype == np.uint8 and arr.shape == (20, 40, 44)
    assert out.GetSpacing() == img.GetSpacing()


def test_cli_segment_body_comp(weights_root, tmp_path):
    img = sitk.GetImageFromArray(np.ones((16, 32, 32), np.float32))
    img.SetSpacing((3.5, 3.5, 5.0))
    sitk.WriteImage(img, str(tmp_path / "scan.nii.gz"))
    runner = CliRunner()
    args = ["segment", "--out", str(tmp_path / "out"), str(tmp_path / "scan.nii.gz")]
    ok = runner.invoke(app, [*args, "--model", str(weights_root), "--body-comp", "--cpu"])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "out" / "scan_seg.nii.gz").is_file()
    single = str(weights_root / "base")  # one model, not a weights root: no body_comp/
    bad = subprocess.run(
        [sys.executable, "-m", "mrcohort.cli", *args, "--model", single, "--body-comp"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "MODEL_NOT_FOUND" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr


# --- measures on a body-composition map --------------------------------------------------


@pytest.fixture(scope="module")
def phantom():
    return make_participant(11, 0, "mini")


@pytest.fixture(scope="module")
def stitched(phantom) -> dict[str, np.ndarray]:
    return {ch: sitk.GetArrayFromImage(stitch(phantom.stations[ch])) for ch in ("in", "w", "f")}


def _measure_body_comp(phantom, fat: np.ndarray, water: np.ndarray, in_phase=None):
    """All measures on the phantom's body-composition truth map."""
    return measure_participant(
        sitk.GetArrayFromImage(phantom.body_comp),
        spacing_mm=tuple(float(s) for s in reversed(phantom.body_comp.GetSpacing())),
        fat=fat,
        water=water,
        in_phase=in_phase,
        label_map=BODY_COMP_LABEL_MAP,
    )


def test_body_comp_measures_match_phantom_truth(phantom, stitched):
    m = _measure_body_comp(phantom, stitched["f"], stitched["w"], stitched["in"])
    rows = {r["label_name"]: r for r in m.organ_rows()}
    assert set(rows) == {lab.name for lab in BODY_COMP_LABELS.values()}
    truth = {r["label_name"]: r for r in phantom.body_comp_truth}
    for name in ("subcutaneous_fat", "abdominal_subcutaneous_fat", "gluteofemoral_fat"):
        t = truth[name]
        assert t["volume_ml"] > 500  # the phantom has these compartments
        # voxel majority vs the 8x finer analytic count
        assert rows[name]["volume_ml"] == pytest.approx(t["volume_ml"], rel=0.02)
        assert rows[name]["ff_median"] == pytest.approx(t["fat_fraction"], abs=0.02)
        assert rows[name]["label_group"] == "adipose"
        assert rows[name]["swap_suspected"] is False
    assert m.vessel_rows() == []  # no vessels in this map: no connectivity, no tortuosity
    qc = {r["label_name"]: r for r in m.qc_rows()}
    assert qc["visceral_fat"]["missing"]  # the phantom has no visceral fat: flagged
    assert not qc["gluteofemoral_fat"]["missing"]
    assert math.isnan(truth["visceral_fat"]["fat_fraction"])


def test_swapped_fat_and_water_flag_adipose_tissue(phantom, stitched):
    m = _measure_body_comp(phantom, fat=stitched["w"], water=stitched["f"])
    flagged = {r["label_name"] for r in m.qc_rows() if r["swap_suspected"]}
    assert flagged == {"subcutaneous_fat", "abdominal_subcutaneous_fat", "gluteofemoral_fat"}


@pytest.mark.slow
def test_job_with_the_body_comp_model_measures_the_phantoms_fat(tmp_path):
    """The whole job with ``--model demo --body-comp``: rows named by the model's classes,
    volumes and fat fractions of the phantom's fat compartments close to its truth."""
    from mrcohort.jobs.participant import JobConfig, process_participant
    from mrcohort.jobs.run import discover_tasks, resolve_model_key
    from mrcohort.phantoms import write_cohort
    from mrcohort.segmentation.model import resolve_model_folder

    src = write_cohort(tmp_path / "cohort", participants=1, seed=3)
    tasks, rejected = discover_tasks("ukbb", src)
    assert len(tasks) == 1 and not rejected
    model = str(resolve_model_folder("demo", variant="body_comp"))
    cfg = resolve_model_key(JobConfig(cohort="bc", store=tmp_path / "store", model=model))
    result = process_participant(tasks[0], cfg)
    assert result.failure is None, result.failure
    names = [r["label_name"] for r in result.organ_rows]
    assert names == [BODY_COMP_LABELS[i].name for i in sorted(BODY_COMP_LABELS)]
    assert {r["model_key"] for r in result.organ_rows} == {cfg.model_key}
    assert result.vessel_rows == []
    assert len(result.qc_rows) == 10
    rows = {r["label_name"]: r for r in result.organ_rows}
    with open(src / "truth_body_comp.csv") as fh:
        truth = {r["label_name"]: r for r in csv.DictReader(fh)}
    for name in ("subcutaneous_fat", "abdominal_subcutaneous_fat", "gluteofemoral_fat"):
        t_ml, t_ff = float(truth[name]["volume_ml"]), float(truth[name]["fat_fraction"])
        assert rows[name]["volume_ml"] == pytest.approx(t_ml, rel=0.1)
        assert rows[name]["ff_median"] == pytest.approx(t_ff, abs=0.03)


def test_measure_cli_body_comp_labels(phantom, tmp_path):
    from mrcohort.cli.measure import app as measure_app

    seg = sitk.Image(phantom.body_comp)
    arr = sitk.GetArrayFromImage(seg)
    arr[0, 0, 0] = 77  # an id the body-composition map does not have: reported, not measured
    bad = sitk.GetImageFromArray(arr)
    bad.CopyInformation(seg)
    sitk.WriteImage(bad, str(tmp_path / "bc.nii.gz"))
    for ch, name in (("f", "fat"), ("w", "water")):
        sitk.WriteImage(phantom.reference[ch], str(tmp_path / f"{name}.nii.gz"))
    result = CliRunner().invoke(
        measure_app,
        [
            "--seg",
            str(tmp_path / "bc.nii.gz"),
            "--fat",
            str(tmp_path / "fat.nii.gz"),
            "--water",
            str(tmp_path / "water.nii.gz"),
            "--labels",
            "body_comp",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "id_77" in result.output
    payload = json.loads(result.stdout)
    rows = {r["label_name"]: r for r in payload["organ_metrics"]}
    truth = {r["label_name"]: r for r in phantom.body_comp_truth}
    assert rows["gluteofemoral_fat"]["volume_ml"] == pytest.approx(
        truth["gluteofemoral_fat"]["volume_ml"], rel=0.02
    )
    # noise-free reference images: the fat fraction of pure subcutaneous fat is exact
    t_ff = truth["gluteofemoral_fat"]["fat_fraction"]
    assert rows["gluteofemoral_fat"]["ff_median"] == pytest.approx(t_ff, abs=1e-3)
    assert payload["vessel_metrics"] == []


def test_label_maps_pickle():
    import pickle

    assert pickle.loads(pickle.dumps(BODY_COMP_LABEL_MAP)) is BODY_COMP_LABEL_MAP
    custom = LabelMap.from_dataset_json({"labels": {"background": 0, "x": 3}})
    back = pickle.loads(pickle.dumps(custom))
    assert back.name == "custom" and back[3].name == "x"


@pytest.mark.slow
def test_body_comp_demo_model_segments_held_out_phantom(phantom):
    """The shipped body-composition demo model on a phantom it never saw."""
    from mrcohort.segmentation.predictor import get_segmenter

    seg = get_segmenter(str(demo_model_path("body_comp")), device="cpu")
    pred = sitk.GetArrayFromImage(seg.segment(stitch(phantom.stations["in"])))
    truth = sitk.GetArrayFromImage(phantom.body_comp)
    for row in phantom.body_comp_truth:
        if row["volume_ml"] > 0:
            a, b = pred == row["label_id"], truth == row["label_id"]
            dice = 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())
            # regression floor under the Dice recorded in benchmarks/RESULTS.md
            assert dice >= 0.90, (row["label_name"], round(float(dice), 3))


def test_qc_expectations_carry_over_by_name_with_shifted_ids():
    """A custom model whose ids differ from MRSegmentator's gets MRSegmentator's QC by name."""
    from mrcohort.biomarkers.participant import BiomarkerParams
    from mrcohort.biomarkers.qc import participant_qc
    from mrcohort.biomarkers.volume import label_volumes

    lm = LabelMap.from_dataset_json(
        {"labels": {"background": 0, "gallbladder": 1, "liver": 7, "tumour": 9}}
    )
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[2:4, 2:4, 2:4] = 7  # a 'liver' of 8 voxels of 1 mm3: far below 500 ml
    vols = label_volumes(labels, spacing_mm=(1.0, 1.0, 1.0), label_map=lm)
    qc = {r.label_name: r for r in participant_qc(vols, label_map=lm)}
    assert qc["liver"].implausible_volume and (
        qc["liver"].volume_min_ml,
        qc["liver"].volume_max_ml,
    ) == (500.0, 4500.0)
    assert not qc["gallbladder"].expected  # MRSegmentator's default: gallbladder optional
    assert qc["tumour"].expected and qc["tumour"].missing  # unknown to MRSegmentator
    m = measure_participant(labels, spacing_mm=(1.0, 1.0, 1.0), label_map=lm)
    assert [r.label_name for r in m.qc] == ["gallbladder", "liver", "tumour"]
    quiet = BiomarkerParams(expect_other_classes=False)
    m = measure_participant(labels, spacing_mm=(1.0, 1.0, 1.0), label_map=lm, params=quiet)
    assert not {r.label_name: r for r in m.qc}["tumour"].expected
    with pytest.raises(ValueError, match="unknown MRSegmentator ids"):
        measure_participant(
            labels,
            spacing_mm=(1.0, 1.0, 1.0),
            label_map=lm,
            params=BiomarkerParams(expected_ids=(99,)),
        )


def test_vessel_measures_default_to_the_maps_vessels():
    from mrcohort.biomarkers.connectivity import vessel_connectivity
    from mrcohort.biomarkers.tortuosity import vessel_tortuosity

    labels = np.zeros((8, 8, 8), np.uint8)
    spacing = (1.0, 1.0, 1.0)
    assert vessel_connectivity(labels, spacing_mm=spacing, label_map=BODY_COMP_LABEL_MAP) == []
    assert vessel_tortuosity(labels, spacing_mm=spacing, label_map=BODY_COMP_LABEL_MAP) == []
    assert len(vessel_connectivity(labels, spacing_mm=spacing)) == 7


def test_cli_run_body_comp_needs_a_body_comp_model(weights_root, tmp_path):
    """``run --body-comp`` resolves the weights root's body_comp/ before any work."""
    only_base = tmp_path / "only_base"
    shutil.copytree(weights_root / "base", only_base / "base")
    src = tmp_path / "empty_cohort"
    src.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrcohort.cli",
            "run",
            "--source",
            str(src),
            "--store",
            str(tmp_path / "store"),
            "--model",
            str(only_base),
            "--body-comp",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert (
        "MODEL_NOT_FOUND" in proc.stdout + proc.stderr and "body_comp/" in proc.stdout + proc.stderr
    )
    assert not (tmp_path / "store").exists()  # failed before touching the store
