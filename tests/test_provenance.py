"""Code hashes: over the parsed code each job runs, blind to comments, docstrings and layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sivi_engine import provenance

SOURCE = '''"""Module docstring."""

SCALE = 2.0


def scaled(x, offset=0.0):
    """Scale x."""
    return SCALE * x + offset
'''


@pytest.mark.parametrize(
    "variant",
    [
        SOURCE + "\n# a trailing comment\n",
        SOURCE.replace('"""Scale x."""', '"""Scale x by SCALE, then shift."""'),
        SOURCE.replace('"""Module docstring."""', ""),
        SOURCE.replace(
            "return SCALE * x + offset", "return (\n        SCALE * x\n        + offset\n    )"
        ),
        SOURCE.replace("def scaled(x, offset=0.0):", "def scaled(\n    x,\n    offset=0.0,\n):"),
    ],
    ids=["comment", "docstring", "no-docstring", "rewrapped-expression", "rewrapped-signature"],
)
def test_parsed_code_ignores_comments_docstrings_and_layout(variant: str) -> None:
    assert provenance.parsed_code(variant) == provenance.parsed_code(SOURCE)


@pytest.mark.parametrize(
    "variant",
    [
        SOURCE.replace("SCALE = 2.0", "SCALE = 3.0"),
        SOURCE.replace("offset=0.0", "offset=1.0"),
        SOURCE.replace("SCALE * x + offset", "SCALE * x - offset"),
        SOURCE + "\nEXTRA = 1\n",
    ],
    ids=["constant", "default", "operator", "new-statement"],
)
def test_parsed_code_changes_with_the_code(variant: str) -> None:
    assert provenance.parsed_code(variant) != provenance.parsed_code(SOURCE)


def test_a_docstring_only_body_keeps_its_place() -> None:
    """A function whose body is only a docstring becomes ``pass``: still a function."""
    one = provenance.parsed_code('def f():\n    """Doc."""\n')
    assert one == provenance.parsed_code("def f():\n    pass\n")


def closure_names(*roots: str) -> set[str]:
    return {str(p.relative_to(provenance.PACKAGE_ROOT)) for p in provenance.module_closure(roots)}


def test_the_training_hash_covers_its_step_and_entry_point_only() -> None:
    method = provenance.registered_modules("methods")["ksivi"]
    target = provenance.registered_modules("targets")["banana"]
    names = closure_names(*provenance.ENTRY_POINT, "sivi_engine.steps.train", method, target)
    for needed in (
        "__main__.py",
        "cli.py",
        "runtime.py",
        "steps/train.py",
        "steps/common.py",
        "methods/ksivi.py",
        "targets/banana.py",
        "artifacts.py",
    ):
        assert needed in names, needed
    for foreign in (
        "steps/evaluate.py",
        "steps/reference.py",
        "metrics/__init__.py",
        "methods/sivi.py",
        "targets/bnn.py",
        "reference/stan.py",
        "report/views.py",
    ):
        assert foreign not in names, foreign


def test_the_reference_step_follows_its_engine_only() -> None:
    engine = provenance.registered_modules("reference")["exact"]
    target = provenance.registered_modules("targets")["banana"]
    names = closure_names("sivi_engine.steps.reference", engine, target)
    assert "reference/exact.py" in names and "steps/reference.py" in names
    assert "reference/stan.py" not in names and "reference/sgld.py" not in names


def test_the_report_hash_covers_its_modules_and_templates(tmp_path, monkeypatch) -> None:
    names = closure_names(*provenance.ENTRY_POINT, "sivi_engine.report")
    assert {"report/views.py", "report/build.py", "report/render.py"} <= names
    assert not any(name.startswith("targets/") and name != "targets/__init__.py" for name in names)
    before = provenance.report_code_hash()
    templates = tmp_path / "templates"
    shutil.copytree(provenance.REPORT_TEMPLATES, templates)
    monkeypatch.setattr(provenance, "REPORT_TEMPLATES", templates)
    assert provenance.report_code_hash() == before  # same text, other place
    page = templates / "page.html"
    page.write_text(page.read_text().replace("<body", "<body data-edited", 1))
    assert provenance.report_code_hash() != before


def test_source_text_is_reread_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("A = 1\n")
    assert provenance.source_text(path) == "A = 1\n"
    path.write_text("A = 22\n")  # a different size, whatever the clock's resolution
    assert provenance.source_text(path) == "A = 22\n"


def test_the_spec_cache_is_keyed_by_every_source_file(tmp_path) -> None:
    """Editing, adding or renaming any module changes the fingerprint the workflow's registry
    spec is cached under, so a stale spec is never read."""
    from sivi_engine.spec import source_fingerprint

    (tmp_path / "a.py").write_text("X = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("Y = 2\n")
    first = source_fingerprint(tmp_path)
    assert source_fingerprint(tmp_path) == first
    (tmp_path / "sub" / "b.py").write_text("Y = 3\n")
    edited = source_fingerprint(tmp_path)
    (tmp_path / "sub" / "b.py").rename(tmp_path / "sub" / "c.py")
    assert len({first, edited, source_fingerprint(tmp_path)}) == 3
