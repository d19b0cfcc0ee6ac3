"""The one table of failure codes (mrcohort.failure_codes): every code the package raises is
in it, docs/failures.md shows it as it is, and the retried codes are read from it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mrcohort.errors import ENVIRONMENT_CODES
from mrcohort.failure_codes import FAILURE_CODES, environment_codes
from mrcohort.failure_docs import update_doc

PACKAGE = Path(__file__).resolve().parents[1] / "mrcohort"
DOC = PACKAGE.parent / "docs" / "failures.md"
REGENERATE = ".venv/bin/python -m mrcohort.failure_docs docs/failures.md"
CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
#: Calls whose first two positional arguments (or ``code=``) may be a code.
_RAISERS = re.compile(r"(Error|Failure|Rejected|Busy|__init__)$")


def _string(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value):
        return node.value
    return None


def _codes_in(tree: ast.AST) -> set[str]:
    """Codes handed to an error class or ``Rejected``, ``super().__init__``, a ``code``
    parameter's default, or assigned to a name ``code``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", "")
            if _RAISERS.search(name):
                args = [*node.args[:2], *(k.value for k in node.keywords if k.arg == "code")]
                found.update(c for a in args if (c := _string(a)))
        elif isinstance(node, ast.arguments):
            named = [*node.posonlyargs, *node.args]
            with_default = named[len(named) - len(node.defaults) :]
            for arg, default in zip(with_default, node.defaults, strict=True):
                if arg.arg == "code" and (c := _string(default)):
                    found.add(c)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                for sub in ast.walk(node.value) if node.value else ():
                    if c := _string(sub):
                        found.add(c)
    return found


def raised_codes() -> dict[str, str]:
    """Code -> the first module raising it, over every module of the package."""
    out: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for code in _codes_in(ast.parse(path.read_text(), filename=str(path))):
            out.setdefault(code, str(path.relative_to(PACKAGE.parent)))
    return out


def test_the_scan_finds_codes_of_every_kind_of_raise() -> None:
    codes = raised_codes()
    for code in ("NOT_A_ZIP", "UNRECOGNISED_FILE", "STORE_BUSY", "BAD_CONFIG", "ACCOUNTING"):
        assert code in codes  # IngestError, Rejected, super().__init__, default, subclass


def test_every_raised_code_is_in_the_table() -> None:
    missing = {c: where for c, where in raised_codes().items() if c not in FAILURE_CODES}
    assert not missing, f"codes raised but not in mrcohort/failure_codes.py: {missing}"


def test_every_entry_says_what_it_means() -> None:
    for code, entry in FAILURE_CODES.items():
        assert CODE.match(code)
        assert (entry.stages and entry.cause) or entry.job, code
        assert not (entry.retryable and not entry.stages), code


def test_the_retried_codes_come_from_the_table() -> None:
    assert environment_codes() == ENVIRONMENT_CODES
    assert {"OUT_OF_MEMORY", "WORKER_LOST", "INPUT_CHANGED", "PERMISSION_DENIED"} <= (
        ENVIRONMENT_CODES
    )
    assert "NOT_A_ZIP" not in ENVIRONMENT_CODES


def test_docs_failures_md_shows_the_table() -> None:
    text = DOC.read_text()
    assert update_doc(text) == text, f"docs/failures.md is out of date: run `{REGENERATE}`"


def test_update_doc_needs_its_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        update_doc("# no table here\n")
