"""``mrcohort qc-gallery``: one HTML page of the store's QC pictures, a card per current
participant-visit, flagged first; ``--only-flagged``; every text escaped; a missing or empty
store is an error line and a non-zero exit."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq
from typer.testing import CliRunner

from mrcohort.cli import app
from mrcohort.jobs.models import model_row
from mrcohort.jobs.qc_picture import picture_path
from mrcohort.readers import open_table
from mrcohort.schemas.conform import table_from_rows
from mrcohort.schemas.store import write_table
from tests.jobs.fakes import work_context
from tests.schemas.samples import measure_rows

runner = CliRunner()
PART = {"cohort": "t", "model_key": "k1"}
MODEL_NAME = "<script>alert(1)</script> & co"


def _qc_rows(pid: str, *, passed: bool) -> list[dict[str, object]]:
    """The 40 ``qc`` rows of a tiny measured segmentation (an aorta in two pieces: flagged),
    as participant ``pid`` of cohort t under model k1; every flag cleared when ``passed``."""
    rows = []
    for measured in measure_rows()["qc"]:
        row = {**measured, **PART, "participant_id": pid, "visit": "2_0"}
        if passed:
            row |= {"qc_pass": True, "qc_flags": ""}
        row["picture_path"] = picture_path("t", "k1", pid, "2_0")
        rows.append(row)
    return rows


def _store(tmp_path: Path) -> Path:
    """Three participant-visits: A flagged, B passing (both with pictures), C flagged and
    written before pictures existed (its file has no picture_path column)."""
    store = tmp_path / "store"
    a, b = _qc_rows("A", passed=False), _qc_rows("B", passed=True)
    a[12]["label_name"] = "<b>aorta</b>"  # text from the table is escaped too
    write_table(store, "qc", table_from_rows("qc", a + b), partition=PART, file_key="new")
    old = table_from_rows("qc", _qc_rows("C", passed=False)).drop_columns(
        ["picture_path", "cohort", "model_key"]
    )
    pq.write_table(old, store / "qc" / "cohort=t" / "model_key=k1" / "part-old.parquet")
    for pid in ("A", "B"):
        png = store / picture_path("t", "k1", pid, "2_0")
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(b"\x89PNG\r\n\x1a\n")
    model = model_row(work_context(tmp_path, model="demo", model_key="k1"), MODEL_NAME)
    write_table(store, "models", table_from_rows("models", [model]), partition=PART, file_key="k1")
    return store


def _cards(page: Path) -> list[str]:
    return re.findall(r'<div class="card (pass|fail)">', page.read_text())


def _sources(page: Path) -> list[Path]:
    found = re.findall(r'<img src="([^"]+)"', page.read_text())
    return [(page.parent / unquote(src)).resolve() for src in found]


def test_the_gallery_shows_every_participant_visit_flagged_first(tmp_path) -> None:
    store = _store(tmp_path)
    result = runner.invoke(app, ["qc-gallery", "--store", str(store)])
    assert result.exit_code == 0, result.output
    page = store / "qc_gallery.html"
    assert result.stdout.strip() == f"{page.absolute()}: 3 participant-visits, 2 flagged"
    assert _cards(page) == ["fail", "fail", "pass"]
    text = page.read_text()
    assert re.findall(r'class="badge">\w+</span> (\w+) visit', text) == ["A", "C", "B"]
    assert [p.name for p in _sources(page)] == ["A.2_0.png", "B.2_0.png"]
    assert all(p.is_file() for p in _sources(page))
    assert text.count("no QC picture") == 1  # C: written before pictures existed
    assert "fragmented" in text and "missing" in text  # the flags, per label


def test_only_flagged_and_a_page_elsewhere(tmp_path) -> None:
    store = _store(tmp_path)
    page = tmp_path / "elsewhere" / "deep" / "gallery.html"
    result = runner.invoke(
        app, ["qc-gallery", "--store", str(store), "--only-flagged", "--out", str(page)]
    )
    assert result.exit_code == 0, result.output
    assert "2 participant-visits, 2 flagged" in result.stdout
    assert _cards(page) == ["fail", "fail"]
    assert [p.name for p in _sources(page)] == ["A.2_0.png"]
    assert all(p.is_file() for p in _sources(page))  # relative to the page's folder
    assert "1 passing left out" in page.read_text()


def test_every_text_value_is_escaped(tmp_path) -> None:
    store = _store(tmp_path)
    assert runner.invoke(app, ["qc-gallery", "--store", str(store)]).exit_code == 0
    text = (store / "qc_gallery.html").read_text()
    assert "<script>" not in text and "<b>aorta" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text
    assert "&lt;b&gt;aorta&lt;/b&gt;" in text


def test_a_file_written_before_pictures_existed_reads_with_a_null_path(tmp_path) -> None:
    store = _store(tmp_path)
    qc = open_table("qc", store, columns=["participant_id", "picture_path"], to="arrow")
    paths = {(r["participant_id"], r["picture_path"]) for r in qc.to_pylist()}
    assert paths == {
        ("A", "qc_pictures/cohort=t/model_key=k1/A.2_0.png"),
        ("B", "qc_pictures/cohort=t/model_key=k1/B.2_0.png"),
        ("C", None),
    }


def test_a_missing_or_empty_store_is_an_error(tmp_path) -> None:
    missing = runner.invoke(app, ["qc-gallery", "--store", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["qc-gallery", "--store", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and "no qc rows" in empty.stderr
    assert not (tmp_path / "empty" / "qc_gallery.html").exists()
    store = _store(tmp_path)
    other = runner.invoke(app, ["qc-gallery", "--store", str(store), "--cohort", "other"])
    assert other.exit_code == 2 and "for cohort 'other'" in other.stderr


def test_model_by_name_or_key(tmp_path) -> None:
    store = _store(tmp_path)
    for model in (MODEL_NAME, "k1"):
        result = runner.invoke(app, ["qc-gallery", "--store", str(store), "--model", model])
        assert result.exit_code == 0 and "3 participant-visits" in result.stdout
