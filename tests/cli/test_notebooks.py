"""The notebooks (``notebooks/*.ipynb``): committed without outputs; each runs against a real
``mrcohort demo`` run (one shared run, slow) without a cell error, shows at least one image
inline and writes nothing into the store or beside it."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.cli.demo_support import N_GOOD

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = ("01_query_tables", "02_distributions", "03_qc")


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def test_the_notebooks_are_committed_valid_and_without_outputs():
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == list(NOTEBOOKS)
    for name in NOTEBOOKS:
        nb = _read(name)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", name
        for cell in nb.cells:
            assert "execution" not in cell.metadata, (name, cell.id)
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (name, cell.id)
        assert nb.cells[0].cell_type == "markdown", f"{name}: starts by saying what it shows"


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder``: relative path -> (size, modification time in ns)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def _images(nb: nbformat.NotebookNode) -> list[dict]:
    """The PNG outputs of the executed notebook."""
    return [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]


@pytest.mark.slow
def test_the_demo_writes_phenotypes_beside_the_tables(demo_run):
    import pandas as pd

    out, proc = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    phenotypes = pd.read_csv(out / "phenotypes.csv", dtype={"participant_id": str})
    assert list(phenotypes.columns) == ["participant_id", "age_years", "sex", "bmi_kg_m2"]
    truth = pd.read_csv(out / "truth.csv", dtype={"participant_id": str})
    assert set(phenotypes["participant_id"]) == set(truth["participant_id"])
    assert len(phenotypes) == N_GOOD


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_against_the_demo_and_shows_images(demo_run, name, tmp_path, monkeypatch):
    """Any cell error fails (nbclient raises CellExecutionError); at least one image is
    shown inline; the demo folder (store, truth, phenotypes) is left exactly as it was."""
    from nbclient import NotebookClient

    out, proc = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = _listing(out)
    monkeypatch.setenv("MRCOHORT_STORE", str(out / "tables"))  # the kernel inherits it
    nb = _read(name)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    images = _images(nb)
    assert images, f"{name} showed no image"
    if name == "03_qc":  # the QC pictures themselves, not only matplotlib figures
        pictures = [o for o in images if "IPython.core.display.Image" in o["data"]["text/plain"]]
        assert pictures, "03_qc showed no QC picture"
    assert _listing(out) == before, f"{name} wrote into the demo folder"
    assert not any(tmp_path.iterdir()), f"{name} wrote into its working folder"
