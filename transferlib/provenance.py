"""Which transferlib code an artifact depends on, as a hash: the *code version* of cache keys.

Every cached artifact (rendered data, trained network, extracted outputs, result rows) and every
executed book page depends on the library code that produced it. Bumping version numbers by hand
is easy to forget, and a forgotten bump serves a stale result that looks right. So the version is
derived: :func:`code_version` hashes the source of a module together with every transferlib module
it imports, directly or through others (:func:`module_closure`, found by reading ``import``
statements, including those inside functions, without importing anything).

The hash is taken over the parsed syntax tree with docstrings removed, so comments, docstrings and
formatting do not count; any change to code (a number, a name, a string that is not a docstring)
does. Infrastructure that cannot change a result is left out of every closure
(:data:`NEUTRAL_MODULES`: the cache itself, progress bars, the command line, this module), so that
work on them does not invalidate every artifact.

Examples
--------
>>> from transferlib.provenance import module_closure
>>> "transferlib.scores.leep" in module_closure(["transferlib.scores"])
True
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

__all__ = [
    "NEUTRAL_MODULES",
    "code_version",
    "imported_modules",
    "module_closure",
    "source_fingerprint",
]

PACKAGE = "transferlib"
_ROOT = Path(__file__).resolve().parent

#: Modules that never change what an artifact contains (storage, progress display, the CLI).
NEUTRAL_MODULES = frozenset(
    {"transferlib.cache", "transferlib._progress", "transferlib.cli", "transferlib.provenance"}
)


def _module_file(name: str) -> Path | None:
    """Source file of a transferlib module or package, or None if there is none."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = _ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(name: str) -> list[str]:
    """Packages whose ``__init__`` runs when ``name`` is imported (``a.b.c`` -> ``a``, ``a.b``)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(source: str, current: str | None = None) -> set[str]:
    """Transferlib modules named by the import statements of ``source``.

    ``from transferlib.x import y`` counts ``transferlib.x`` when its ``__init__`` binds ``y``
    (a definition or a re-export), else the submodule ``transferlib.x.y``. Relative imports are resolved against ``current`` (a module name).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and current is not None:
                package = current if _is_package(current) else current.rpartition(".")[0]
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                # ``from pkg import x`` gives pkg's own binding of x when its __init__ has one
                # (a function re-exported under a submodule's name), else the submodule.
                if _module_file(submodule) is not None and alias.name not in _bound_names(base):
                    found.add(submodule)
                else:
                    found.add(base)
    return {name for name in found if _module_file(name) is not None}


@cache
def _bound_names(name: str) -> frozenset[str]:
    """Names a module binds at its top level (imports, definitions, assignments)."""
    path = _module_file(name)
    if path is None:
        return frozenset()
    bound: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(bound)


def _is_package(name: str) -> bool:
    path = _module_file(name)
    return path is not None and path.name == "__init__.py"


@cache
def _direct_imports(name: str) -> frozenset[str]:
    path = _module_file(name)
    if path is None:
        return frozenset()
    return frozenset(imported_modules(path.read_text(), current=name))


def module_closure(modules: Iterable[str]) -> list[str]:
    """Sorted names of ``modules`` and every transferlib module they import, transitively.

    Parent packages count with their own code (importing ``a.b.c`` runs ``a/__init__`` and
    ``a/b/__init__``) but not with what they import: a sibling that ``a/b/__init__`` re-exports
    matters to ``a.b.c`` only if ``a.b.c`` imports it, and then it is in the closure anyway. This
    keeps, say, head re-training code out of the version of a trained network.
    :data:`NEUTRAL_MODULES` are left out.

    Raises
    ------
    ValueError
        If a name is not a transferlib module.
    """
    pending = []
    for name in modules:
        if _module_file(name) is None:
            raise ValueError(f"{name!r} is not a module of the transferlib package")
        pending.append(name)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name in NEUTRAL_MODULES:
            continue
        seen.add(name)
        pending.extend(_direct_imports(name))
    parents = {p for name in seen for p in _parents(name) if _module_file(p) is not None}
    return sorted((seen | parents) - NEUTRAL_MODULES)


class _StripDocstrings(ast.NodeTransformer):
    def _strip(self, node: ast.AST) -> ast.AST:
        self.generic_visit(node)
        body = getattr(node, "body", None)
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip


def source_fingerprint(source: str) -> str:
    """Hash of Python ``source`` that ignores comments, docstrings and formatting.

    Examples
    --------
    >>> source_fingerprint("x = 1  # one") == source_fingerprint("x = (1)")
    True
    >>> source_fingerprint("x = 1") == source_fingerprint("x = 2")
    False
    """
    tree = _StripDocstrings().visit(ast.parse(source))
    text = ast.dump(tree, annotate_fields=False, include_attributes=False)
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def _module_fingerprint(name: str) -> str:
    path = _module_file(name)
    assert path is not None
    return source_fingerprint(path.read_text())


def code_version(*modules: str, length: int = 16) -> str:
    """Hash of the code of ``modules`` and of everything they import from transferlib.

    Comments, docstrings and formatting do not change it; any code change in the closure does.
    Computed once per process and module set (sources are read at first use).

    Examples
    --------
    >>> code_version("transferlib.scores.leep") == code_version("transferlib.scores.leep")
    True
    """
    digest = hashlib.sha256()
    for name in module_closure(modules):
        digest.update(name.encode())
        digest.update(_module_fingerprint(name).encode())
    return digest.hexdigest()[:length]
