"""Render the report's content, a list of blocks, as Markdown and as one self-contained HTML
page."""

from __future__ import annotations

import base64
import dataclasses
import html
import re
from collections.abc import Callable, Sequence
from importlib import resources
from string import Template

from sivi_engine.report.tables import Table


@dataclasses.dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclasses.dataclass(frozen=True)
class Paragraph:
    text: str


@dataclasses.dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Code:
    text: str
    language: str = ""


@dataclasses.dataclass(frozen=True)
class TableBlock:
    table: Table
    numeric: bool = True  # numeric tables right-align their cells in HTML


@dataclasses.dataclass(frozen=True)
class Image:
    """A figure: its path relative to the report directory, a caption and the PNG bytes."""

    path: str
    caption: str
    png: bytes


@dataclasses.dataclass(frozen=True)
class Collapsed:
    """Blocks shown folded under a one-line ``summary`` (HTML and GitHub Markdown
    ``<details>``)."""

    summary: str
    blocks: tuple[Heading | Paragraph | Bullets | Code | TableBlock | Image, ...]


Block = Heading | Paragraph | Bullets | Code | TableBlock | Image | Collapsed


# --- Markdown ---------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_md_cell(c) for c in cells) + " |"


def _md_table(block: TableBlock) -> str:
    table = block.table
    align = ["---", *(("---:" if block.numeric else "---") for _ in table.header[1:])]
    rule = "|" + "|".join(align) + "|"
    return "\n".join([_md_row(table.header), rule, *(_md_row(r) for r in table.rows)])


def _md_code(block: Code) -> str:
    longest = max((len(run) for run in re.findall("`+", block.text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{block.language}\n{block.text.rstrip()}\n{fence}"


MARKDOWN: dict[type, Callable[..., str]] = {
    Heading: lambda b: f"{'#' * b.level} {b.text}",
    Paragraph: lambda b: b.text,
    Bullets: lambda b: "\n".join(f"- {item}" for item in b.items),
    Code: _md_code,
    TableBlock: _md_table,
    Image: lambda b: f"![{b.caption}]({b.path})",
    Collapsed: lambda b: (
        f"<details><summary>{html.escape(b.summary)}</summary>\n\n"
        + to_markdown(b.blocks)
        + "\n</details>"
    ),
}


def to_markdown(blocks: Sequence[Block]) -> str:
    """The report as Markdown; figures are linked by their relative paths."""
    return "\n\n".join(MARKDOWN[type(b)](b) for b in blocks) + "\n"


# --- HTML -------------------------------------------------------------------------------------

_e = html.escape


def _html_table(block: TableBlock) -> str:
    table = block.table
    head = "".join(f"<th>{_e(c)}</th>" for c in table.header)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    css = "" if block.numeric else ' class="text"'
    return f"<table{css}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _html_image(block: Image) -> str:
    data = base64.b64encode(block.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(block.caption)}">'
        f"<figcaption>{_e(block.caption)} ({_e(block.path)})</figcaption></figure>"
    )


HTML: dict[type, Callable[..., str]] = {
    Heading: lambda b: f"<h{b.level}>{_e(b.text)}</h{b.level}>",
    Paragraph: lambda b: f"<p>{_e(b.text)}</p>",
    Bullets: lambda b: "<ul>\n" + "\n".join(f"<li>{_e(i)}</li>" for i in b.items) + "\n</ul>",
    Code: lambda b: f"<pre><code>{_e(b.text.rstrip())}</code></pre>",
    TableBlock: _html_table,
    Image: _html_image,
    Collapsed: lambda b: (
        f"<details><summary>{_e(b.summary)}</summary>\n"
        + "\n".join(HTML[type(inner)](inner) for inner in b.blocks)
        + "\n</details>"
    ),
}


def to_html(blocks: Sequence[Block], title: str) -> str:
    """The report as one HTML page with inline CSS and figures embedded as base64 PNG."""
    page = Template(resources.files(__package__).joinpath("templates/page.html").read_text("utf-8"))
    body = "\n".join(HTML[type(b)](b) for b in blocks)
    return page.substitute(title=_e(title), body=body)
