"""Report blocks rendered to HTML and Markdown, and the not-run section's bullets."""

from __future__ import annotations

from sivi_engine.report.render import Paragraph, TableBlock, to_html, to_markdown
from sivi_engine.report.tables import Table


def test_html_escapes_text() -> None:
    page = to_html([Paragraph("<b> & 'x'"), TableBlock(Table(("a|b",), (("<td>",),)))], "t<")
    assert "&lt;b&gt; &amp; &#x27;x&#x27;" in page and "<td>&lt;td&gt;</td>" in page
    assert "<title>t&lt;</title>" in page
    assert r"| a\|b |" in to_markdown([TableBlock(Table(("a|b",), ()))])


def test_not_run_pairs_of_one_label_and_reason_share_a_line() -> None:
    """A data set swept over splits leaves one pair per split out; the report lists them on
    one line per label and reason."""
    from sivi_engine.report.document import NotRun, not_run_blocks
    from sivi_engine.report.render import Bullets

    pairs = [
        NotRun("y_split0", "livi", "R"),
        NotRun("y_split1", "livi", "R"),
        NotRun("d", "h", "S"),
    ]
    bullets = [b for b in not_run_blocks(pairs) if isinstance(b, Bullets)][0]
    assert bullets.items == ("y_split0, y_split1 / livi: R", "d / h: S")
