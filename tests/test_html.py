import base64
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from nsm_sim.output.format import format_cell
from nsm_sim.output.html import (
    PNG_SIGNATURE,
    STATUS_COLOURS,
    Callout,
    FigureBlock,
    Section,
    TableBlock,
    Text,
    figure_png,
    normalise_status,
    render_report,
)

EVIL = "<script>alert('x')</script>"


def small_figure(label):
    fig = Figure(figsize=(2, 1.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    ax.set_title(label)
    return fig


@pytest.fixture(scope="module")
def sections():
    verdicts = pd.DataFrame(
        {
            "metric": ["projects_completed", "logins", EVIL],
            "verdict": ["LEADING", "vanity", "NO SIGNAL"],
            "auc": [0.712345, 0.6, np.nan],
            "accounts": [5000, 5000, 3],
        }
    )
    return [
        Section(
            "Is the North Star leading?",
            "First paragraph.\n\nSecond paragraph with <b>tags</b>.",
            [
                Callout("projects_completed leads retention", "leading"),
                TableBlock(verdicts, "Verdicts"),
            ],
        ),
        Section(
            f"Drivers of {EVIL}",
            "",
            [FigureBlock(small_figure("a"), "Elasticities"), Text("R-hat < 1.01 & ESS > 400")],
        ),
        Section(
            "Funding",
            "Which to fund",
            [FigureBlock(small_figure("b"), EVIL), Callout("ok", "PASS")],
        ),
    ]


@pytest.fixture(scope="module")
def doc(sections):
    return render_report("NSM report", "demo world", sections, generated="2025-01-01 00:00 UTC")


def test_document_structure(doc, sections):
    assert doc.startswith("<!DOCTYPE html>")
    assert doc.rstrip().endswith("</html>")
    ids = re.findall(r'<section id="([^"]+)">', doc)
    assert len(ids) == len(sections) == len(set(ids))
    for anchor in ids:
        assert f'href="#{anchor}"' in doc  # table of contents links every section
    for s in sections[::2]:
        assert f"<h2>{s.title}</h2>" in doc
    assert "Drivers of &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in doc
    assert "<footer>" in doc and "2025-01-01 00:00 UTC" in doc
    assert "<p>First paragraph.</p>" in doc
    assert "Second paragraph with &lt;b&gt;tags&lt;/b&gt;." in doc
    assert "R-hat &lt; 1.01 &amp; ESS &gt; 400" in doc


def test_figures_embedded_as_png(doc, sections):
    n_figures = sum(isinstance(b, FigureBlock) for s in sections for b in s.blocks)
    payloads = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', doc)
    assert len(payloads) == n_figures == doc.count('<img src="data:image/png;base64,')
    for payload in payloads:
        assert base64.b64decode(payload, validate=True).startswith(PNG_SIGNATURE)


def test_everything_escaped_and_self_contained(doc):
    assert "<script" not in doc.lower()
    assert "&lt;script&gt;" in doc
    assert "http://" not in doc and "https://" not in doc
    assert "<link" not in doc and "@import" not in doc and "url(" not in doc


def test_table_cells_formatted(doc):
    assert '<td class="num">0.712</td>' in doc
    assert '<td class="num">5,000</td>' in doc
    assert '<td class="num">-</td>' in doc  # NaN
    assert '<th class="num">auc</th>' in doc
    # verdict column shown as coloured badges, canonical spelling
    colour = STATUS_COLOURS["VANITY"][0]
    assert re.search(
        rf'<td><span class="badge" style="color:{colour};[^"]*">VANITY</span></td>', doc
    )
    # the metric column is not badged
    assert "<td>logins</td>" in doc


def test_render_is_reproducible(sections):
    a = render_report("t", "s", sections, generated="x")
    b = render_report("t", "s", sections, generated="x")
    assert a == b


def test_status_names():
    assert normalise_status("no_signal") == "NO SIGNAL"
    assert normalise_status(" review ") == "REVIEW"
    assert Callout("x", "fail").status == "FAIL"
    with pytest.raises(ValueError, match="unknown status"):
        Callout("x", "GREAT")


def test_format_cell():
    assert format_cell(0.0123456) == "0.0123"
    assert format_cell(12.3456) == "12.3"
    assert format_cell(None) == "-"
    assert format_cell(pd.NA) == "-"
    assert format_cell(np.float64("inf")) == "-"
    assert format_cell(True) == "yes"
    assert format_cell(("free", "team")) == "free, team"


def test_empty_table_and_meta():
    html_doc = render_report(
        "t",
        "s",
        [Section("Empty", "", [TableBlock(pd.DataFrame({"a": pd.Series([], dtype=float)}))])],
        meta={"model": EVIL, "seed": 7},
    )
    assert "(none)" in html_doc
    assert "<dd>7</dd>" in html_doc
    assert "<script" not in html_doc


def test_figure_png_accepts_bytes_and_rejects_other():
    png = figure_png(small_figure("c"))
    assert png.startswith(PNG_SIGNATURE)
    assert b"matplotlib.org" not in png  # no software metadata
    assert figure_png(png) == png
    with pytest.raises(ValueError, match="PNG"):
        figure_png(b"GIF89a")
