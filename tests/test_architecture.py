"""The shape of the package: which subpackage may import which, and module size.

Production code (everything but the command line, the phantom generators and the developer
tools) never imports the command line, the phantoms or the developer tools; the phantoms
may use production readers, never the reverse.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mrcohort"
#: Subpackages that production code must not import.
NOT_FOR_PRODUCTION = ("mrcohort.cli", "mrcohort.phantoms", "mrcohort.devtools")
#: Subpackages allowed to import them (the command line imports everything).
CONSUMERS = ("cli", "phantoms", "devtools")
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imported(path: Path) -> set[str]:
    """Every module name imported anywhere in a file (top level or inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _production(path: Path) -> bool:
    rel = path.relative_to(PACKAGE).parts
    return not (len(rel) > 1 and rel[0] in CONSUMERS) and rel[0] != "__main__.py"


@pytest.mark.parametrize(
    "path", [p for p in _modules() if _production(p)], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_production_code_never_imports_cli_phantoms_or_devtools(path: Path) -> None:
    bad = sorted(
        name
        for name in _imported(path)
        if any(name == banned or name.startswith(banned + ".") for banned in NOT_FOR_PRODUCTION)
    )
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_phantoms_and_devtools_never_import_the_cli() -> None:
    for path in _modules():
        rel = path.relative_to(PACKAGE).parts
        if rel[0] in ("phantoms", "devtools"):
            bad = [n for n in _imported(path) if n.startswith("mrcohort.cli")]
            assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_no_module_over_the_size_limit() -> None:
    sizes = {p.relative_to(PACKAGE): len(p.read_text().splitlines()) for p in _modules()}
    assert {str(p): n for p, n in sizes.items() if n > MAX_LINES} == {}


def test_every_package_states_what_it_holds() -> None:
    for init in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init.relative_to(PACKAGE)} has no docstring"
