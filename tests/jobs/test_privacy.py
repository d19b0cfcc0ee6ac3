"""Privacy through the whole job: DICOMs carrying names, a birth date, an address, the
institution, other ids, a physician and free-text comments go through ingest, stitching,
segmentation, measurement, QC pictures and the failures of a broken zip; nothing identifying
reaches any output — table values, Parquet metadata, NIfTI headers, PNG text, logs, status
files, file names."""

from __future__ import annotations

import gzip
from io import BytesIO
from pathlib import Path

import pyarrow.parquet as pq
import pydicom
from PIL import Image

from mrcohort.jobs.run import run_job
from mrcohort.schemas.store import read_table
from mrcohort.schemas.tables import SCHEMAS
from tests.builders import IDENTITY, members_of, rezip, ukbb_zip, with_identity
from tests.jobs.fakes import job_config, use_fake_segmenter

#: Every identifying value, and the names in it (a name may be written as "Jane Doe").
SECRETS = sorted(
    {*IDENTITY.values()}
    | {w for v in IDENTITY.values() for w in v.replace("^", " ").split() if w.istitle()}
)


def _identified(source: Path, pid: str) -> dict[str, bytes]:
    return {
        n: with_identity(d) if n.endswith(".dcm") else d
        for n, d in members_of(ukbb_zip(source / "plain", pid)).items()
    }


def test_nothing_identifying_leaves_the_job(tmp_path: Path, monkeypatch, client) -> None:
    use_fake_segmenter(monkeypatch)
    src, store = tmp_path / "in", tmp_path / "store"
    good = _identified(tmp_path, "1000001")
    dcm = pydicom.dcmread(BytesIO(next(d for n, d in good.items() if n.endswith(".dcm"))))
    assert (dcm.PatientName, dcm.AccessionNumber) == ("Doe^Jane", "ACC7788123")  # really there
    rezip(src / "1000001_20201_2_0.zip", good)
    broken = _identified(tmp_path, "1000002")
    first = next(n for n in broken if n.endswith(".dcm"))
    broken[first] = broken[first][:200]  # a failure message about an identified file
    rezip(src / "1000002_20201_2_0.zip", broken)
    summary = run_job(job_config(src, store), client=client)
    assert summary.n_ok == 1 and summary.n_failed == 1
    assert list((store / "qc_pictures").rglob("*.png")), "the QC picture was drawn"

    values = " ".join(str(read_table(store, name).to_pylist()) for name in SCHEMAS)
    outputs = [p for p in store.rglob("*") if p.is_file()]
    for secret in SECRETS:
        assert secret not in values, f"{secret!r} in a table"
        for path in outputs:
            assert secret not in str(path.relative_to(store)), f"{secret!r} in a file name"
            data = path.read_bytes()
            if path.name.endswith(".gz"):
                data += gzip.decompress(data)  # NIfTI header: descrip, aux_file, intent
            assert secret.encode() not in data, f"{secret!r} in {path.relative_to(store)}"
            if path.suffix == ".parquet":
                meta = pq.read_metadata(path).metadata or {}
                assert all(secret.encode() not in v for v in meta.values()), path
            if path.suffix == ".png":
                with Image.open(path) as img:
                    assert secret not in str(img.info), f"{secret!r} in {path.name}'s text"
    assert any(p.name == "log.txt" for p in outputs) and any(p.suffix == ".gz" for p in outputs)
