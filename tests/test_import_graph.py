"""The package graph is a DAG that flows one way: read every module's imports with ``ast``.

Each top-level part of ``smcp_box`` has a layer; a module may import its own part and parts of
lower layers only. Lazy imports inside functions and ``TYPE_CHECKING`` blocks count too: a cycle
hidden in a function is still a cycle. README's design notes describe the same layers.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smcp_box"

#: Lowest first. A part may import only parts of a strictly lower layer (and itself).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "seams", "logs", "__init__"}),
    frozenset({"config"}),
    frozenset({"protocol"}),
    # The sandbox checks what crosses the ABI with protocol's own JSON-RPC rules.
    frozenset({"sandbox"}),
    frozenset({"store", "vetting", "metrics"}),
    frozenset({"auth", "tenancy"}),
    frozenset({"web"}),
    frozenset({"box"}),
    frozenset({"admin"}),
    frozenset({"ops", "tui"}),
    frozenset({"cli", "__main__"}),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
#: The lower packages the issue names: none of them may reach the web or anything above it.
LOWER = ("protocol", "sandbox", "store", "auth", "tenancy", "vetting")
UPPER = ("web", "admin", "ops", "tui", "box", "cli")


def _part(relative: Path) -> str:
    """``sandbox/pool.py`` -> ``sandbox``; ``box.py`` -> ``box``."""
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path: Path, package_root: Path = PACKAGE) -> Iterator[str]:
    """Every module ``path`` imports, as absolute dotted names."""
    relative = path.relative_to(package_root.parent)
    package = list(relative.with_suffix("").parts)
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module
            # ``from smcp_box import x`` imports the part ``x`` when ``x`` is a module, else a
            # name of the package's own ``__init__``.
            if module == "smcp_box":
                for alias in node.names:
                    is_part = (package_root / alias.name).is_dir() or (
                        package_root / f"{alias.name}.py"
                    ).is_file()
                    yield f"smcp_box.{alias.name if is_part else '__init__'}"


def _edges() -> list[tuple[str, str, str]]:
    """(importing file, its part, imported part) for every import of another part."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = _part(path.relative_to(PACKAGE))
        for module in _imports(path):
            names = module.split(".")
            if names[0] != "smcp_box" or len(names) < 2:
                continue
            target = names[1]
            if target != part:
                edges.append((str(path.relative_to(PACKAGE)), part, target))
    return edges


def test_every_part_has_a_layer() -> None:
    parts = {_part(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")}
    assert parts - set(RANK) == set(), "give each new part a layer in LAYERS (and the README)"


def test_imports_flow_down_the_layers() -> None:
    upward = [
        f"{file} ({part}, layer {RANK[part]}) imports {target} (layer {RANK[target]})"
        for file, part, target in _edges()
        if RANK[target] >= RANK[part]
    ]
    assert upward == []


@pytest.mark.parametrize("lower", LOWER)
def test_lower_packages_never_import_upper_ones(lower: str) -> None:
    wrong = [(f, t) for f, part, t in _edges() if part == lower and t in UPPER]
    assert wrong == []


def test_web_does_not_import_the_box() -> None:
    assert [(f, t) for f, part, t in _edges() if part == "web" and t == "box"] == []


def test_seams_import_only_the_standard_library() -> None:
    tree = ast.parse((PACKAGE / "seams.py").read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    top_level = {name.split(".")[0] for name in imported if name}
    assert top_level <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The reader itself: a lazy import of web from inside a sandbox function is found."""
    fake = tmp_path / "smcp_box" / "sandbox"
    fake.mkdir(parents=True)
    module = fake / "x.py"
    module.write_text("def f():\n    from smcp_box.web import app\n    from ..box import Box\n")
    found = list(_imports(module, tmp_path / "smcp_box"))
    assert "smcp_box.web" in found
    assert "smcp_box.box" in found
