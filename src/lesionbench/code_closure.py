"""The library files a script runs: the closure of its ``lesionbench`` imports.

The workflow lists these files as a rule's ``code`` input, so editing one re-runs exactly the jobs whose
scripts import it (directly or through another library module) and nothing else. Deriving the list from the
imports, instead of writing it by hand, keeps that promise true as the code changes.

Definition: starting from the given files, every ``import lesionbench.x.y`` and ``from lesionbench.x import
y`` (relative imports inside the package included, at any depth of the module, function bodies too) adds the
module's file, the ``__init__.py`` of each package on its dotted path (Python executes those on import),
and, for ``from P import y``, the submodule ``P/y.py`` when ``y`` is a module rather than a name. Imports
reached through ``importlib`` by a string are not seen; a caller adds those roots itself (the data
sources). Only the standard library is used, so the Snakefile can load this module by path.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "lesionbench"


def _module_file(package_dir: Path, dotted: str) -> Path | None:
    """The file of module ``lesionbench.<dotted>`` ('' is the package itself), or None if absent."""
    base = package_dir.joinpath(*dotted.split(".")) if dotted else package_dir
    if base.is_dir() and (base / "__init__.py").is_file():
        return base / "__init__.py"
    file = base.with_suffix(".py")
    return file if file.is_file() else None


def _package_chain(dotted: str) -> list[str]:
    """'a.b.c' -> ['', 'a', 'a.b', 'a.b.c']: the package itself and every module on the dotted path."""
    parts = dotted.split(".") if dotted else []
    return [".".join(parts[:i]) for i in range(len(parts) + 1)]


def _own_module(file: Path, package_dir: Path) -> tuple[str, bool]:
    """(dotted name inside the package, is it a package __init__) of a library file."""
    rel = file.relative_to(package_dir).with_suffix("")
    parts = list(rel.parts)
    is_init = parts[-1] == "__init__"
    if is_init:
        parts = parts[:-1]
    return ".".join(parts), is_init


def _imported(file: Path, package_dir: Path) -> frozenset[str]:
    """Dotted names (inside the package) that ``file`` imports, each possibly a module or a package.
    ``file`` and ``package_dir`` are resolved paths."""
    stat = file.stat()
    return _parsed_imports(str(file), str(package_dir), stat.st_mtime_ns, stat.st_size)


# A Snakefile asks for the closure of every rule's script, and each walks much of the library: parse each file
# once per process (keyed by its mtime and size, so an edited file is parsed again).
@functools.cache
def _parsed_imports(path: str, package: str, mtime_ns: int, size: int) -> frozenset[str]:
    file, package_dir = Path(path), Path(package)
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=path)
    inside = file.is_relative_to(package_dir)
    own, is_init = _own_module(file, package_dir) if inside else ("", False)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    names.add(alias.name[len(PACKAGE) + 1 :])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module is None or not (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                    continue
                base = node.module[len(PACKAGE) + 1 :]
            elif inside:
                # Relative import: resolved against the importing module's package.
                pkg = own.split(".") if own else []
                if not is_init:
                    pkg = pkg[:-1]
                up = node.level - 1
                pkg = pkg[: len(pkg) - up] if up else pkg
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                continue
            names.add(base)
            names.update(f"{base}.{a.name}" if base else a.name for a in node.names if a.name != "*")
    return frozenset(names)


def import_closure(roots: Iterable[str | Path], package_dir: str | Path) -> list[str]:
    """Sorted paths of every ``lesionbench`` file the ``roots`` (scripts or library files) import,
    transitively, per the module docstring. Library files among the roots are included themselves."""
    package_dir = Path(package_dir).resolve()
    seen: set[Path] = set()
    pending = [Path(r).resolve() for r in roots]
    visited: set[Path] = set()
    files: dict[str, Path | None] = {}  # dotted name -> module file, looked up once per call
    while pending:
        file = pending.pop()
        if file in visited:
            continue
        visited.add(file)
        if file.is_relative_to(package_dir):
            seen.add(file)
        for dotted in _imported(file, package_dir):
            for name in _package_chain(dotted):
                if name not in files:
                    files[name] = _module_file(package_dir, name)
                target = files[name]
                if target is not None and target not in visited:
                    pending.append(target)
    return sorted(str(p) for p in seen)
