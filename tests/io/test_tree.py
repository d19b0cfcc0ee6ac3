"""Walking an input folder (mrcohort.io.tree): nothing skipped in silence — loops, links out
of the source and broken links are coded problems; hidden entries and links to folders
inside the source are not visited."""

from __future__ import annotations

import os
from pathlib import Path

from mrcohort.errors import as_error
from mrcohort.io.tree import walk_files


def _codes(walk) -> dict[str, str]:
    return {p.name: err.code for p, err in walk.problems}


def test_files_sorted_hidden_skipped_inner_folder_links_not_followed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    for rel in ("z.dcm", "a/y.dcm", "a/b/x.dcm", ".hidden", "a/.tmp/w.dcm"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(b"1")
    os.symlink(src / "a", src / "again")  # a folder inside: reached through "a" itself
    os.symlink("z.dcm", src / "link.dcm")  # a file inside: taken
    walk = walk_files(src, src)
    assert walk.problems == []
    assert [p.relative_to(src).as_posix() for p in walk.files] == [
        "a/b/x.dcm", "a/y.dcm", "link.dcm", "z.dcm",
    ]  # fmt: skip


def test_loops_links_out_and_broken_links_are_problems(tmp_path: Path) -> None:
    src, outside = tmp_path / "src", tmp_path / "outside.dcm"
    src.mkdir()
    outside.write_bytes(b"1")
    os.symlink("self.dcm", src / "self.dcm")
    os.symlink(outside, src / "out.dcm")
    os.symlink(tmp_path, src / "up")
    os.symlink("nothing.dcm", src / "broken.dcm")
    walk = walk_files(src, src)
    assert walk.files == []
    assert _codes(walk) == {
        "broken.dcm": "FILE_NOT_FOUND",
        "out.dcm": "SYMLINK_OUTSIDE_SOURCE",
        "self.dcm": "SYMLINK_LOOP",
        "up": "SYMLINK_OUTSIDE_SOURCE",
    }
    assert "self.dcm: symbolic link loop" in dict(walk.problems)[src / "self.dcm"].message
    assert _codes(walk_files(src, src, contain=False)) == {
        "broken.dcm": "FILE_NOT_FOUND",
        "self.dcm": "SYMLINK_LOOP",
    }


def test_a_permission_error_anywhere_is_coded() -> None:
    err = as_error(PermissionError(13, "Permission denied", "/data/x.zip"), "ingest")
    assert err.code == "PERMISSION_DENIED" and "/data/x.zip" in err.message
