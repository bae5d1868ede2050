"""Provenance recorded in every artifact: package versions, code hashes, timestamps."""

from __future__ import annotations

import ast
import dataclasses
import datetime
import functools
import hashlib
import importlib.metadata
import platform
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "sivi_engine"
_VERSIONED = ("sivi_engine", "torch", "numpy", "scipy", "xarray", "zarr")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that determine numerical results."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def now() -> str:
    """UTC timestamp in ISO 8601."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


PACKAGE_ROOT = Path(__file__).resolve().parent


def _module_path(module: str) -> Path | None:
    """Source file of a ``sivi_engine`` module, found on disk without importing it."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@dataclasses.dataclass(frozen=True)
class _SourceFacts:
    """What the code hashes need from one module's source, read in one pass over its syntax."""

    imports: tuple[str, ...]  # ``a.b`` of ``import a.b`` and ``a.b.c`` of ``from a.b import c``
    from_modules: frozenset[str]  # ``a.b`` of each ``from a.b import c``
    stan_files: tuple[str, ...]  # string constants ending in ``.stan``


@functools.lru_cache(maxsize=512)
def _source_facts(source: str) -> _SourceFacts:
    """Cached by source text: the workflow hashes the same few dozen files for every job of
    the grid (1180 training jobs in the paper config)."""
    imports, from_modules, stan_files = [], set(), []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imports += [a.name for a in node.names if a.name.startswith(PACKAGE)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            from_modules.add(node.module)
            imports += [f"{node.module}.{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.endswith(".stan")
        ):
            stan_files.append(node.value)
    return _SourceFacts(tuple(imports), frozenset(from_modules), tuple(stan_files))


def _imported_modules(path: Path) -> set[str]:
    """``sivi_engine`` modules named by the import statements of the file at ``path``.

    ``from sivi_engine.a import b`` names ``sivi_engine.a.b`` when that is a module, else
    ``sivi_engine.a``; package ``__init__`` files only count when imported by name, so a
    method module that imports ``sivi_engine.methods.base`` does not depend on its siblings.
    """
    facts = _source_facts(source_text(path))
    found: set[str] = set()
    for name in facts.imports:
        parent = name.rpartition(".")[0]
        is_from = parent in facts.from_modules
        found.add(parent if is_from and _module_path(name) is None else name)
    return found


def module_closure(roots: Iterable[str]) -> list[Path]:
    """Source files of ``roots`` and of every ``sivi_engine`` module they import, transitively."""
    seen: dict[str, Path] = {}
    stack = list(roots)
    while stack:
        module = stack.pop()
        if module in seen:
            continue
        path = _module_path(module)
        if path is None:
            continue
        seen[module] = path
        stack.extend(_imported_modules(path))
    return sorted(seen.values())


#: Where the targets' Stan programs live; a module names its program by file name.
STAN_PROGRAM_DIR = PACKAGE_ROOT / "targets" / "stan"


def stan_programs(modules: Iterable[Path]) -> list[Path]:
    """The Stan programs named (as string constants, e.g. ``stan_program = "bnn.stan"``) in
    the source files ``modules``."""
    names = {name for path in modules for name in _source_facts(source_text(path)).stan_files}
    return sorted(STAN_PROGRAM_DIR / name for name in names if (STAN_PROGRAM_DIR / name).is_file())


def _drop_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` without the docstring (a leading string-constant statement) of its module,
    classes and functions; a body left empty gets ``pass``, as the docstring stood for it."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def source_text(path: Path) -> str:
    """The text of ``path``, read once per version of the file: the workflow hashes the same
    few dozen files for every job of the grid (2 400 jobs under the paper config)."""
    stat = path.stat()
    return _read_text(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=512)
def _read_text(path: Path, mtime_ns: int, size: int) -> str:
    return path.read_text()


@functools.lru_cache(maxsize=512)
def _parsed_digest(source: str) -> bytes:
    return hashlib.sha256(parsed_code(source).encode()).digest()


@functools.lru_cache(maxsize=512)
def parsed_code(source: str) -> str:
    """The code of a module as Python parses it, without docstrings: comments, docstrings and
    formatting do not change it, any change to what runs does (``ast.dump`` holds no line or
    column numbers)."""
    return ast.dump(_drop_docstrings(ast.parse(source)))


def code_hash(
    roots: Iterable[str], files: Iterable[Path] = (), with_stan_programs: bool = False
) -> str:
    """SHA-256 over the parsed code (:func:`parsed_code`) of the modules that ``roots`` run,
    the text of ``files`` (package data, e.g. templates), and with ``with_stan_programs`` the
    text of the Stan programs that code names. Contents only, never timestamps."""
    digest = hashlib.sha256()
    modules = module_closure(roots)
    for path in modules:
        digest.update(str(path.relative_to(PACKAGE_ROOT)).encode())
        digest.update(_parsed_digest(source_text(path)))
    texts = list(files) + (stan_programs(modules) if with_stan_programs else [])
    for path in texts:
        digest.update(f"{path.parent.name}/{path.name}".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def settings_hash(*parts: str) -> str:
    """Short stable hash of JSON strings (e.g. a target's name and settings)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def registered_modules(kind: str) -> dict[str, str]:
    """Registered name → defining module for one registry (``methods``, ``targets``,
    ``reference``), from the registries themselves (:func:`sivi_engine.spec.registry_spec`,
    cached per package source: the workflow computes code hashes without importing torch)."""
    from sivi_engine import spec

    return spec.registered_modules(kind)


#: What every job runs: ``python -m sivi_engine`` and the command line, which imports the step
#: module of its command at run time (``cli.STEP_MODULES``), so no step is in another's hash.
ENTRY_POINT = (f"{PACKAGE}.__main__", f"{PACKAGE}.cli")
#: The report's package data (HTML template and styles), part of the report's hash.
REPORT_TEMPLATES = PACKAGE_ROOT / "report" / "templates"


def _step(name: str) -> str:
    return f"{PACKAGE}.steps.{name}"


def _target(target: str) -> str:
    return registered_modules("targets")[target]


def training_code_hash(method: str, target: str) -> str:
    """Hash of the code a training job runs: the entry point, the train step, its method and
    target modules and their imports."""
    method_module = registered_modules("methods")[method]
    return code_hash((*ENTRY_POINT, _step("train"), method_module, _target(target)))


def reference_code_hash(engine: str, target: str) -> str:
    """Hash of the code a reference job runs: the entry point, the reference step, its engine
    and target modules, their imports and the target's Stan program (editing the program
    reruns the target's reference only)."""
    engine_module = registered_modules("reference")[engine]
    roots = (*ENTRY_POINT, _step("reference"), engine_module, _target(target))
    return code_hash(roots, with_stan_programs=True)


def evaluation_code_hash(target: str) -> str:
    """Hash of the code an evaluation runs: the entry point, the evaluate step, every metric
    module and the target's module."""
    return code_hash((*ENTRY_POINT, _step("evaluate"), f"{PACKAGE}.metrics", _target(target)))


def description_code_hash(target: str) -> str:
    """Hash of the code a describe job runs: the entry point, the describe step and the
    target's module."""
    return code_hash((*ENTRY_POINT, _step("describe"), _target(target)))


def report_code_hash() -> str:
    """Hash of the code the report runs: the entry point, the report package and its
    templates."""
    templates = sorted(p for p in REPORT_TEMPLATES.iterdir() if p.is_file())
    return code_hash((*ENTRY_POINT, f"{PACKAGE}.report"), files=templates)
