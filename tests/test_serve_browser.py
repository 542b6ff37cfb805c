"""The planning page in a real browser: Debian's Chromium, headless, driven by Playwright.

Playwright's Python client is pointed at the system's browser (no browser is downloaded).
The page is served by the ``served`` fixture (a small world, a seeded posterior, no NUTS).
The first test also takes the screenshot the README shows (docs/planning_page.png).
"""

import shutil
from pathlib import Path

import pytest

from nsm_sim.spec import load_scenario

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "planning_page.png"


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium on this machine (apt-get install -y chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def tab(browser, served):
    base, planner = served
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # the page works offline: any request that leaves 127.0.0.1 fails the test
    outside = []
    tab.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(base)
            else (outside.append(route.request.url), route.abort())
        ),
    )
    tab.goto(base + "/")
    tab.wait_for_selector("body[data-ready=yes]", state="attached", timeout=60_000)
    yield tab, planner
    context.close()
    assert not errors, errors
    assert not outside, outside


def expected_value(tab, name):
    row = tab.locator(f'#ranking tr[data-initiative="{name}"]')
    return row.locator("td").nth(3).inner_text()


def edit(tab, name, field, value):
    cell = tab.locator(f'#initiatives tr[data-initiative="{name}"] input[data-field="{field}"]')
    cell.fill(value)
    cell.press("Enter")


def test_edit_a_lift_see_the_ranking_and_p_target_change_save_and_reload(tab):
    tab, planner = tab
    path = planner.documents[0].path
    # the tree is drawn, one node per metric
    assert tab.locator("#tree g.node").count() == len(planner.model.tree.nodes)
    before = expected_value(tab, "Invite nudges")
    p_target = tab.locator("#p-target").inner_text()
    assert "P(reaching it)" in p_target
    SCREENSHOT.parent.mkdir(exist_ok=True)
    tab.screenshot(path=str(SCREENSHOT), full_page=True)

    edit(tab, "Invite nudges", "lift_high", "60%")
    tab.wait_for_function(
        "([name, before]) => { const row = document.querySelector("
        '`#ranking tr[data-initiative="${name}"]`);'
        " return row && row.children[3].textContent !== before; }",
        arg=["Invite nudges", before],
    )
    assert float(expected_value(tab, "Invite nudges").replace(",", "")) > float(
        before.replace(",", "")
    )
    assert tab.locator("#p-target").inner_text() != p_target
    assert tab.locator("#problems").is_hidden()

    tab.click("#save")
    tab.wait_for_function("document.querySelector('#status').textContent.startsWith('Saved')")
    assert load_scenario(path).initiatives[1].lift.high == pytest.approx(0.60)
    assert "lift: {low: 5%, high: 60%}" in path.read_text(encoding="utf-8")

    tab.reload()
    tab.wait_for_selector("body[data-ready=yes]", state="attached")
    cell = '#initiatives tr[data-initiative="Invite nudges"] input[data-field="lift_high"]'
    assert tab.locator(cell).input_value() == "60%"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lift_high", "1%", "initiatives[0].lift.high: must not be below low (0.02), got 0.01"),
        ("confidence", "2", "initiatives[0].confidence: Input should be less than or equal to 1"),
        ("effort", "-3", "initiatives[0].effort: Input should be greater than 0"),
    ],
)
def test_bad_edits_are_refused_on_the_page_and_nothing_is_saved(tab, field, value, message):
    tab, planner = tab
    path = planner.documents[0].path
    before = path.read_text(encoding="utf-8")
    ranking = tab.locator("#ranking tbody").inner_text()
    edit(tab, "Guided onboarding", field, value)
    problems = tab.locator("#problems")
    problems.wait_for(state="visible")
    # the CLI's message for the same value in the file (tests/test_serve.py checks the
    # equality for every field; here the words a planner reads)
    assert message in problems.inner_text()
    assert tab.locator("#ranking tbody").inner_text() == ranking
    tab.click("#save")
    tab.wait_for_function("document.querySelector('#status').textContent.startsWith('Saved')")
    assert path.read_text(encoding="utf-8") == before
