"""The import graph of the `sea` package, read with `ast` (every import, also those inside functions)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SEA = Path(__file__).resolve().parent.parent / "sea"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SEA.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of `sea`: dotted name -> file."""
    return {module_name(p): p for p in sorted(SEA.rglob("*.py"))}


@functools.cache
def imported_names(module: str) -> frozenset[str]:
    """The dotted names `module` imports (absolute; `from a import b` gives `a` and `a.b`)."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(names)


def sea_imports(module: str) -> set[str]:
    """The `sea` modules `module` imports directly (a name resolves to its longest module prefix)."""
    found = set()
    for name in imported_names(module):
        while name and name not in modules():
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found - {module}


def closure(module: str) -> set[str]:
    """`module` and every `sea` module it imports, directly or not (with the packages they sit in)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in modules()]
        todo += sorted(sea_imports(name))
    return seen


def source_file(module: str) -> str:
    """The module's file relative to the repository root, e.g. `sea/stages/align.py`."""
    return modules()[module].relative_to(SEA.parent).as_posix()
