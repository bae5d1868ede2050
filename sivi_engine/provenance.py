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
    registrations: tuple[str, ...]  # names of ``@REGISTRY.register("name")`` decorators
    stan_files: tuple[str, ...]  # string constants ending in ``.stan``


@functools.lru_cache(maxsize=512)
def _source_facts(source: str) -> _SourceFacts:
    """Cached by source text: the workflow hashes the same few dozen files for every job of
    the grid (1180 training jobs in the paper config)."""
    imports, from_modules, registrations, stan_files = [], set(), [], []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imports += [a.name for a in node.names if a.name.startswith(PACKAGE)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            from_modules.add(node.module)
            imports += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            registrations += [
                decorator.args[0].value
                for decorator in node.decorator_list
                if isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "register"
                and decorator.args
                and isinstance(decorator.args[0], ast.Constant)
            ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.endswith(".stan"):
            stan_files.append(node.value)
    return _SourceFacts(tuple(imports), frozenset(from_modules), tuple(registrations),
                        tuple(stan_files))


def _imported_modules(path: Path) -> set[str]:
    """``sivi_engine`` modules named by the import statements of the file at ``path``.

    ``from sivi_engine.a import b`` names ``sivi_engine.a.b`` when that is a module, else
    ``sivi_engine.a``; package ``__init__`` files only count when imported by name, so a
    method module that imports ``sivi_engine.methods.base`` does not depend on its siblings.
    """
    facts = _source_facts(path.read_text())
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
    names = {name for path in modules for name in _source_facts(path.read_text()).stan_files}
    return sorted(STAN_PROGRAM_DIR / name for name in names if (STAN_PROGRAM_DIR / name).is_file())


def code_hash(roots: Iterable[str], with_stan_programs: bool = False) -> str:
    """SHA-256 over the contents (not timestamps) of the code that ``roots`` run, and with
    ``with_stan_programs`` of the Stan programs that code names."""
    digest = hashlib.sha256()
    modules = module_closure(roots)
    named = [(str(path.relative_to(PACKAGE_ROOT)), path) for path in modules]
    if with_stan_programs:
        named += [(f"stan/{path.name}", path) for path in stan_programs(modules)]
    for name, path in named:
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def settings_hash(*parts: str) -> str:
    """Short stable hash of JSON strings (e.g. a target's name and settings)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def registered_modules(subpackage: str) -> dict[str, str]:
    """Registered name → defining module for one registry package (``methods``, ``targets``,
    ``reference``), read statically from ``@REGISTRY.register("name")`` decorators.

    No module is imported, so the workflow computes code hashes without loading torch.
    """
    found: dict[str, str] = {}
    for path in sorted((PACKAGE_ROOT / subpackage).glob("*.py")):
        module = f"{PACKAGE}.{subpackage}.{path.stem}"
        found.update(dict.fromkeys(_source_facts(path.read_text()).registrations, module))
    return found


#: Code shared by every step that writes an artifact.
_ARTIFACT_CORE = (f"{PACKAGE}.artifacts",)


def training_code_hash(method: str, target: str) -> str:
    """Hash of the code a training job runs: its method and target modules and their imports."""
    roots = (registered_modules("methods")[method], registered_modules("targets")[target])
    return code_hash((*roots, *_ARTIFACT_CORE))


def reference_code_hash(engine: str, target: str) -> str:
    """Hash of the code a reference job runs: its engine and target modules, their imports and
    the target's Stan program (editing the program reruns the target's reference only)."""
    roots = (registered_modules("reference")[engine], registered_modules("targets")[target])
    return code_hash((*roots, *_ARTIFACT_CORE), with_stan_programs=True)


def evaluation_code_hash(target: str) -> str:
    """Hash of the code an evaluation runs: every metric module and the target's module."""
    roots = (f"{PACKAGE}.metrics", registered_modules("targets")[target])
    return code_hash((*roots, *_ARTIFACT_CORE))
