"""A self-contained HTML report: one file with inline CSS and figures embedded as PNG.

The report is made of :class:`Section` objects, each a title, an introduction and a list of
blocks: :class:`Text`, :class:`TableBlock`, :class:`FigureBlock`, :class:`Callout` and
:class:`SvgBlock` (the metric tree, drawn by :mod:`nsm_sim.output.tree_diagram`).
:func:`render_report` turns them into a complete HTML5 document with a table of contents,
no external fonts, scripts, style sheets or links, so it reads the same when mailed, opened
offline or printed.

Every string that may come from a user's file (metric, segment and initiative names, table
cells, captions) is escaped. The generation time is an argument, never read from the clock,
so the same inputs give the same file byte for byte (PNGs are written without metadata).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from nsm_sim import __version__
from nsm_sim.output.format import format_cell
from nsm_sim.serialise import FIGURE_DPI, PNG_SIGNATURE, figure_png

STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "PASS": ("#1e7b34", "#e8f5ec"),
    "REVIEW": ("#8a5a00", "#fff4dc"),
    "FAIL": ("#b3261e", "#fdecea"),
    "INFO": ("#1f5f99", "#e9f1fa"),
    "LEADING": ("#1e7b34", "#e8f5ec"),
    "COINCIDENT": ("#1f5f99", "#e9f1fa"),
    "LAGGING": ("#8a5a00", "#fff4dc"),
    "VANITY": ("#b3261e", "#fdecea"),
    "NO SIGNAL": ("#555555", "#f0f0f0"),
}
"""Status or verdict to (text/border colour, background colour)."""


def normalise_status(status: str) -> str:
    """Return the canonical spelling of a status or verdict.

    Parameters
    ----------
    status : str
        One of PASS, REVIEW, FAIL, INFO, LEADING, COINCIDENT, LAGGING, VANITY or NO SIGNAL,
        in any case, with ``_`` or ``-`` in place of the space.

    Returns
    -------
    str
        The key of :data:`STATUS_COLOURS`.

    Raises
    ------
    ValueError
        If ``status`` is none of these.

    Examples
    --------
    >>> normalise_status("no_signal")
    'NO SIGNAL'
    """
    key = re.sub(r"[\s_-]+", " ", str(status).strip()).upper()
    if key not in STATUS_COLOURS:
        raise ValueError(f"unknown status {status!r}; expected one of {sorted(STATUS_COLOURS)}")
    return key


@dataclass(frozen=True)
class Text:
    """Plain text; blank lines separate paragraphs. Escaped, never interpreted as HTML."""

    text: str


@dataclass(frozen=True)
class TableBlock:
    """A table from a DataFrame: no index, numbers to 3 significant digits, escaped.

    A column whose every cell is a status or verdict (PASS, LEADING, ...) is shown as
    coloured badges unless ``badges`` is False.
    """

    frame: pd.DataFrame
    caption: str = ""
    badges: bool = True


@dataclass(frozen=True)
class FigureBlock:
    """A matplotlib figure (or PNG bytes), embedded as a base64 PNG with its caption."""

    figure: Any
    caption: str = ""
    dpi: int = FIGURE_DPI


@dataclass(frozen=True)
class Callout:
    """A highlighted note with a coloured status or verdict badge."""

    text: str
    status: str = "INFO"

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", normalise_status(self.status))


@dataclass(frozen=True)
class SvgBlock:
    """An SVG drawn by nsm_sim's own code (the metric tree), inlined with its caption.

    The SVG is inserted as it is: it must come from :mod:`nsm_sim.output.tree_diagram`,
    which escapes every name, never from a user's file.
    """

    svg: str
    caption: str = ""


Block = Text | TableBlock | FigureBlock | Callout | SvgBlock


@dataclass
class Section:
    """A report section: a title, a plain-text introduction and a list of blocks."""

    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)


def _paragraphs(text: str) -> str:
    parts = [p.strip() for p in re.split(r"\n\s*\n", str(text)) if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>\n" for p in parts)


def _badge(status: str) -> str:
    key = normalise_status(status)
    colour, background = STATUS_COLOURS[key]
    return (
        f'<span class="badge" style="color:{colour};background:{background};'
        f'border-color:{colour}">{html.escape(key)}</span>'
    )


def _is_status(text: str) -> bool:
    try:
        normalise_status(text)
    except ValueError:
        return False
    return True


_NUM = ' class="num"'


def _status_column(column: pd.Series) -> bool:
    values = column.dropna()
    return len(values) > 0 and all(isinstance(v, str) and _is_status(v) for v in values)


def _render_table(block: TableBlock) -> str:
    frame = block.frame
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    badged = [block.badges and _status_column(frame.iloc[:, j]) for j in range(frame.shape[1])]
    head = "".join(
        f"<th{_NUM if num else ''}>{html.escape(str(c))}</th>"
        for c, num in zip(frame.columns, numeric, strict=True)
    )
    rows = []
    for values in frame.itertuples(index=False, name=None):
        cells = []
        for value, num, badge in zip(values, numeric, badged, strict=True):
            text = format_cell(value)
            if badge and isinstance(value, str):
                content = _badge(text)
            else:
                content = html.escape(text)
            cells.append(f"<td{_NUM if num else ''}>{content}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
    body = "\n".join(rows) if rows else f'<tr><td colspan="{max(len(numeric), 1)}">(none)</td></tr>'
    return (
        f'<div class="table-wrap"><table>{caption}\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table></div>\n"
    )


def _render_figure(block: FigureBlock) -> str:
    data = base64.b64encode(figure_png(block.figure, block.dpi)).decode("ascii")
    alt = html.escape(block.caption or "figure", quote=True)
    caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">{caption}</figure>\n'


def _render_callout(block: Callout) -> str:
    colour, background = STATUS_COLOURS[block.status]
    return (
        f'<div class="callout" style="border-left-color:{colour};background:{background}">'
        f"{_badge(block.status)}<div>{_paragraphs(block.text)}</div></div>\n"
    )


def render_block(block: Block) -> str:
    """Render one block as an HTML fragment.

    Parameters
    ----------
    block : Text, TableBlock, FigureBlock, Callout or SvgBlock
        The block.

    Returns
    -------
    str
        The HTML fragment.
    """
    if isinstance(block, Text):
        return _paragraphs(block.text)
    if isinstance(block, TableBlock):
        return _render_table(block)
    if isinstance(block, FigureBlock):
        return _render_figure(block)
    if isinstance(block, Callout):
        return _render_callout(block)
    if isinstance(block, SvgBlock):
        caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
        return f'<figure class="svg">{block.svg}{caption}</figure>\n'
    raise TypeError(f"not a report block: {type(block).__name__}")


def _anchor(index: int, title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", str(title).lower()).strip("-")[:40]
    return f"s{index + 1}-{slug}" if slug else f"s{index + 1}"


_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: #1d1d1f;
  font: 15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue",
  Arial, sans-serif; }
main { max-width: 960px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.1em; }
.subtitle { color: #555; margin: 0 0 0.8em; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0 0 1em;
  font-size: 0.9em; color: #444; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
nav.toc { border: 1px solid #e3e3e3; border-radius: 6px; padding: 8px 16px; margin: 1em 0 1.5em;
  background: #fafafa; }
nav.toc h2 { font-size: 1em; margin: 0.3em 0; border: 0; }
nav.toc ol { margin: 0.3em 0; padding-left: 1.4em; }
a { color: #1f5f99; }
section { margin-top: 2em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #e3e3e3; padding-bottom: 0.2em; }
p { margin: 0.5em 0; }
.table-wrap { overflow-x: auto; margin: 0.8em 0; }
table { border-collapse: collapse; font-size: 0.9em; min-width: 40%; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0 0 4px; color: #333; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fbfbfb; }
figure { margin: 1em 0; text-align: center; }
figure img, figure.svg svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; margin-top: 4px; }
.callout { display: flex; gap: 12px; align-items: flex-start; border-left: 4px solid;
  border-radius: 4px; padding: 8px 12px; margin: 0.8em 0; }
.callout p { margin: 0.2em 0; }
.badge { display: inline-block; border: 1px solid; border-radius: 3px; padding: 0 6px;
  font-size: 0.8em; font-weight: 700; letter-spacing: 0.03em; white-space: nowrap; }
footer { margin-top: 3em; padding-top: 0.6em; border-top: 1px solid #e3e3e3; color: #777;
  font-size: 0.85em; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  nav.toc { break-after: avoid; }
  section { break-before: auto; }
  figure, table, .callout { break-inside: avoid; }
  h2 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def render_report(
    title: str,
    subtitle: str,
    sections: Sequence[Section],
    generated: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> str:
    """Render a complete, self-contained HTML5 report.

    Parameters
    ----------
    title : str
        Report title (escaped).
    subtitle : str
        One line under the title (escaped).
    sections : sequence of Section
        The sections, in order; each gets an anchor ``s<n>-<slug>`` linked from the table of
        contents.
    generated : str, optional
        When the report was generated, shown in the footer; passed in (not read from the
        clock) so that the same inputs give the same file.
    meta : mapping, optional
        Short key/value facts shown under the subtitle (model, data fingerprint, seed...).

    Returns
    -------
    str
        The HTML document.

    Examples
    --------
    >>> sections = [Section("Verdicts", "", [Callout("ok", "PASS")])]
    >>> doc = render_report("NSM report", "demo", sections)
    >>> doc.startswith("<!DOCTYPE html>") and 'id="s1-verdicts"' in doc
    True
    """
    esc = html.escape
    anchors = [_anchor(i, s.title) for i, s in enumerate(sections)]
    toc = "".join(
        f'<li><a href="#{a}">{esc(s.title)}</a></li>'
        for a, s in zip(anchors, sections, strict=True)
    )
    meta_html = ""
    if meta:
        items = "".join(
            f"<dt>{esc(str(k))}</dt><dd>{esc(format_cell(v))}</dd>" for k, v in meta.items()
        )
        meta_html = f'<dl class="meta">{items}</dl>\n'
    body = []
    for anchor, section in zip(anchors, sections, strict=True):
        blocks = "".join(render_block(b) for b in section.blocks)
        body.append(
            f'<section id="{anchor}">\n<h2>{esc(section.title)}</h2>\n'
            f"{_paragraphs(section.intro)}{blocks}</section>\n"
        )
    footer = f"Generated by nsm_sim {esc(__version__)}"
    if generated:
        footer += f" on {esc(generated)}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<header>\n<h1>{esc(title)}</h1>\n"
        f'<p class="subtitle">{esc(subtitle)}</p>\n{meta_html}</header>\n'
        f'<nav class="toc"><h2>Contents</h2><ol>{toc}</ol></nav>\n'
        + "".join(body)
        + f"<footer>{footer}</footer>\n</main>\n</body>\n</html>\n"
    )


__all__ = [
    "Block",
    "Callout",
    "FigureBlock",
    "PNG_SIGNATURE",
    "STATUS_COLOURS",
    "Section",
    "SvgBlock",
    "TableBlock",
    "Text",
    "figure_png",
    "normalise_status",
    "render_block",
    "render_report",
]
