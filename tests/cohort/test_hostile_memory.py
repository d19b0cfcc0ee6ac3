"""Hostile inputs cost no more memory than a normal participant: each is ingested
(:func:`mrcohort.cohort.load.load_visit`, what a worker runs) in a fresh process, and that
process's peak resident memory is compared with the same ingest of one normal phantom
participant (UK Biobank zip, ``mini`` preset).

Before the limits, the 2 GiB zip bomb took a worker to several GB before failing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest

from mrcohort.phantoms import make_participant
from mrcohort.phantoms.writers.ukbb import write_ukbb_zip
from tests.builders import encode, members_of, rezip, write_manifest
from tests.hostile import lying_zip, nifti_with_header, with_entry_count, zip_bomb

pytestmark = pytest.mark.slow

#: Peak memory of a hostile input / peak memory of a normal participant, at most.
MAX_RATIO = 1.5

_CHILD = """
import json, resource, sys
from pathlib import Path
from mrcohort.cohort import discover
from mrcohort.cohort.load import load_visit
from mrcohort.errors import MrcohortError

layout, source = sys.argv[1], Path(sys.argv[2])
(pv,) = discover(layout, source).pvs
try:
    visit = load_visit(pv)
    code = None if not visit.errors else sorted(e.code for e in visit.errors.values())[0]
except MrcohortError as exc:
    code = exc.code
try:  # this process's own high-water mark (ru_maxrss keeps the parent's across exec)
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1])
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"code": code, "peak_mb": peak_kb / 1024}))
"""


def peak(layout: str, source: Path) -> tuple[str | None, float]:
    """``(failure code or None, peak RSS in MiB)`` of ingesting ``source`` in a new process."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, layout, str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], float(result["peak_mb"])


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    return folder


def hostile_inputs(root: Path, normal_zip: Path) -> dict[str, tuple[str, Path, str]]:
    """name -> (layout, source, expected code) for every hostile input."""
    out: dict[str, tuple[str, Path, str]] = {}
    name = normal_zip.name
    zip_bomb(_folder(root, "bomb") / name, declared=2**31)
    out["zip bomb (2 MB declaring 2 GiB)"] = ("ukbb", root / "bomb", "ZIP_TOO_LARGE")
    lying_zip(_folder(root, "lying") / name, actual=2**31, declared=70_000)
    out["lying directory (70 KB declared, 2 GiB inflated)"] = (
        "ukbb",
        root / "lying",
        "ZIP_CORRUPT",
    )
    many = _folder(root, "many") / name
    many.write_bytes(normal_zip.read_bytes())
    with_entry_count(many, 65_000)
    out["65,000 directory entries declared"] = ("ukbb", root / "many", "ZIP_TOO_LARGE")
    members = members_of(normal_zip)
    last = sorted(n for n in members if n.endswith(".dcm"))[-1]
    ds = pydicom.dcmread(BytesIO(members[last]))
    ds.PixelSpacing = [0.0, float(ds.PixelSpacing[1])]
    rezip(_folder(root, "spacing") / name, {**members, last: encode(ds)})
    out["DICOM PixelSpacing 0 (last member)"] = ("ukbb", root / "spacing", "BAD_SPACING")
    for label, header, code in [
        ("NIfTI 32767^3 voxels declared", {"dims": (32767, 32767, 32767)}, "IMAGE_TOO_LARGE"),
        ("NIfTI pixdim 0", {"pixdim": (2.0, 0.0, 3.0)}, "BAD_SPACING"),
        (
            "NIfTI sheared sform",
            {"srow": np.array([[2, 1.5, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0]], float)},
            "BAD_DIRECTION",
        ),
    ]:
        folder = _folder(root, f"nifti{len(out)}")
        image = nifti_with_header(folder / "in.nii.gz", **header)
        manifest = write_manifest(
            folder / "manifest.csv",
            [("1000001", "1", "dixon", ch, 1, image.name) for ch in ("in", "opp", "w", "f")],
        )
        out[label] = ("manifest", manifest, code)
    return out


def test_hostile_inputs_stay_within_the_memory_of_a_normal_participant(tmp_path: Path) -> None:
    p = make_participant(0, 0, "mini")
    normal = write_ukbb_zip(
        _folder(tmp_path, "normal") / f"{p.participant_id}_20201_2_0.zip",
        participant_id=p.participant_id,
        stations=p.stations,
    )
    code, normal_mb = peak("ukbb", normal.parent)
    assert code is None
    report = [f"normal participant ({normal.stat().st_size / 2**20:.0f} MB zip): {normal_mb:.0f}"]
    for label, (layout, source, expected) in hostile_inputs(tmp_path, normal).items():
        got, mb = peak(layout, source)
        report.append(f"{label}: {mb:.0f} ({got})")
        assert got == expected, label
        assert mb <= MAX_RATIO * normal_mb, "\n".join(report)
    print("peak RSS (MiB)\n" + "\n".join(report))
