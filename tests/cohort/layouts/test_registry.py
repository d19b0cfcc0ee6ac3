"""Tests for mrcohort.cohort.layouts (the registry): get_layout and discover."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrcohort.cohort import LAYOUTS as PACKAGE_LAYOUTS
from mrcohort.cohort.layouts import LAYOUTS, Layout, discover, get_layout, load_layout
from mrcohort.errors import IngestError


def test_registry() -> None:
    assert list(LAYOUTS) == ["ukbb", "nako", "manifest"] and PACKAGE_LAYOUTS is LAYOUTS
    for name, layout in LAYOUTS.items():
        assert isinstance(layout, Layout) and layout.name == name
        assert get_layout(name) is layout
    with pytest.raises(ValueError, match="unknown layout 'oasis'; known: ukbb, nako, manifest"):
        get_layout("oasis")
    with pytest.raises(ValueError, match="unknown layout"):
        discover("oasis", ".")


def test_discover_errors(tmp_path: Path) -> None:
    for layout in LAYOUTS:
        with pytest.raises(IngestError) as info:
            discover(layout, tmp_path / "absent")
        assert info.value.code == "FILE_NOT_FOUND"
    (tmp_path / "manifest.csv").write_text("participant_id,path\np1,x.nii\n")
    with pytest.raises(IngestError) as info:
        discover("manifest", tmp_path)
    assert info.value.code == "BAD_MANIFEST" and "visit" in info.value.message
    with pytest.raises(ValueError, match="config is for layout 'nako'"):
        discover("ukbb", tmp_path, config=load_layout("nako"))
