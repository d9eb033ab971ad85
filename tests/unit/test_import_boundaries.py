"""Context boundaries (DESIGN.md): ``functions/<context>`` imports only itself, ``kernel``,
``integration``, ``cairn``, the stdlib and third-party packages — never another context.

AST scan of every module (``import x``, ``from x import y``, imports inside functions too), so a
lazy import like the one the payment service used to have (``from orders import app``) fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
SHARED = {"kernel", "integration", "cairn"}
# not bounded contexts: the shared kernel, the published contracts (and their translations), and
# the platform functions that serve every context (publisher, snapshotter, ops)
NOT_CONTEXTS = {"kernel", "integration", "cairn_platform"}
PACKAGES = {p.name for p in FUNCTIONS.iterdir() if (p / "__init__.py").exists()}
CONTEXTS = sorted(PACKAGES - NOT_CONTEXTS)


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_context_is_scanned():
    assert {"orders", "accounts", "payments", "inventory", "notifications", "catalog"} <= set(CONTEXTS)


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_context_imports_no_other_context(context: str):
    others = PACKAGES - SHARED - {context}
    offenders = {
        f"{path.relative_to(FUNCTIONS)} imports {', '.join(sorted(imported_packages(path) & others))}"
        for path in (FUNCTIONS / context).rglob("*.py")
        if imported_packages(path) & others
    }
    assert not offenders, sorted(offenders)


def test_the_kernel_imports_no_context_at_all():
    offenders = [p for p in (FUNCTIONS / "kernel").rglob("*.py") if imported_packages(p) & (PACKAGES - {"kernel"})]
    assert not offenders


def test_the_scan_catches_a_lazy_cross_context_import(tmp_path: Path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from orders import app\n    import inventory.store\n")
    assert {"orders", "inventory"} <= imported_packages(module)
