"""The planning page's JSON endpoints and its planner, over plain HTTP (no browser, no NUTS)."""

import json
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import pytest
from fixtures_serve import write_scenario

from nsm_sim import forecast, prioritise, simulate
from nsm_sim.errors import SpecError
from nsm_sim.serve import Planner, ScenarioDocument
from nsm_sim.spec import load_scenario


def get(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status, response.headers.get("Content-Type"), response.read()


def post(url, body):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def ranking(payload):
    rows = payload["results"]["ranking"]
    column = next(c for c in rows[0] if c.startswith("expected value"))  # with its currency
    return {row["initiative"]: row[column] for row in rows}


def test_state_is_what_the_api_computes(served):
    base, planner = served
    status, kind, body = get(f"{base}/api/state")
    assert status == 200 and kind == "application/json"
    state = json.loads(body)
    # the ranking is prioritise's on simulate's draws, number for number
    scenario = planner.simulated_scenario(0)
    model = planner.model
    result = simulate.simulate(
        scenario, model.posterior, model.population, simulations=planner.simulations, seed=0
    )
    plan = prioritise.prioritise(result)
    expected = dict(zip(plan.ranking["name"], plan.ranking["expected_value"], strict=True))
    assert ranking(state) == pytest.approx(expected, rel=1e-12)
    assert state["results"]["portfolio"]["selected"] == list(plan.portfolio.selected)
    # the tree is an SVG with one node per metric of the tree
    svg = ET.fromstring(state["tree"])
    nodes = svg.findall(".//{http://www.w3.org/2000/svg}g[@class]")
    metrics = {g.get("data-metric") for g in nodes if g.get("data-metric")}
    assert metrics == set(model.tree.nodes)
    # the forecast and P(target) of the chosen portfolio, from the forecast's API
    target = state["results"]["target"]
    projected = forecast.forecast(
        scenario,
        model.posterior,
        model.population,
        model.forecast_model,
        model.history,
        portfolio=plan.portfolio.selected,
        each=False,
        simulations=planner.simulations,
        seed=0,
    )
    assert target["p_baseline"] == projected.p_target("baseline")
    assert target["p_portfolio"] == projected.p_target("portfolio")
    assert 0.0 < target["p_portfolio"] < 1.0  # a target the test can see move
    assert state["results"]["forecast"][0]["period"] > str(model.history["period"].max())[:10]


def test_an_edit_changes_the_ranking_and_saving_keeps_the_comments(served):
    base, planner = served
    path = planner.documents[0].path
    before_text = path.read_text(encoding="utf-8")
    _, _, body = get(f"{base}/api/state")
    before = ranking(json.loads(body))
    status, after = post(
        f"{base}/api/edit",
        {"scenario": 0, "initiative": "Guided onboarding", "field": "lift_high", "value": "40%"},
    )
    assert status == 200
    assert ranking(after)["Guided onboarding"] > before["Guided onboarding"]
    assert path.read_text(encoding="utf-8") == before_text  # nothing written before a save
    status, saved = post(f"{base}/api/save", {"scenario": 0})
    assert status == 200 and saved["saved"] == str(path)
    text = path.read_text(encoding="utf-8")
    # only the edited value changed: comments, order and spelling kept
    assert text == before_text.replace(
        "lift: {low: 2%, high: 10%}", "lift: {low: 2%, high: 40%}", 1
    )
    assert load_scenario(path).initiatives[0].lift.high == pytest.approx(0.40)


@pytest.mark.parametrize(
    ("field", "value"),
    [("lift_high", "1%"), ("confidence", "2"), ("effort", "-1"), ("start", "99"), ("reach", "x")],
)
def test_bad_edits_are_refused_with_the_clis_message(served, tmp_path, field, value):
    base, planner = served
    doc = planner.documents[0]
    before_text = doc.path.read_text(encoding="utf-8")
    status, refused = post(
        f"{base}/api/edit",
        {"scenario": 0, "initiative": "Guided onboarding", "field": field, "value": value},
    )
    assert status == 400
    # the CLI's message for the same value written in the file
    edited = doc.text(
        doc.edited({"initiative": "Guided onboarding", "field": field, "value": value})
    )
    bad = doc.path.with_name("bad.yaml")
    bad.write_text(edited, encoding="utf-8")
    with pytest.raises(SpecError) as cli:
        load_scenario(bad)
    assert refused["problems"] == cli.value.problems
    assert refused["source"] == str(doc.path)
    # nothing changed: the file, and the page's scenario (a save writes the old values)
    post(f"{base}/api/save", {"scenario": 0})
    assert doc.path.read_text(encoding="utf-8") == before_text


def test_switching_an_initiative_off_leaves_it_out_and_in_the_file(served):
    base, planner = served
    status, payload = post(
        f"{base}/api/edit",
        {"scenario": 0, "initiative": "Invite nudges", "field": "on", "value": False},
    )
    assert status == 200
    assert "Invite nudges" not in ranking(payload)
    row = next(r for r in payload["table"]["initiatives"] if r["name"] == "Invite nudges")
    assert row["on"] is False
    # an initiative that another requires cannot be switched off alone
    status, refused = post(
        f"{base}/api/edit",
        {"scenario": 0, "initiative": "Board templates", "field": "on", "value": False},
    )
    assert status == 400 and "'Mobile boards' requires 'Board templates'" in refused["problems"][0]
    post(f"{base}/api/save", {"scenario": 0})
    assert "Invite nudges" in {i.name for i in load_scenario(planner.documents[0].path).initiatives}


def test_capacity_edit_changes_the_portfolio(served):
    base, _ = served
    status, payload = post(f"{base}/api/edit", {"scenario": 0, "field": "capacity", "value": "5"})
    assert status == 200
    folio = payload["results"]["portfolio"]
    assert folio["capacity"] == 5 and folio["effort"] <= 5


def test_assets_are_served_from_the_package(served):
    base, _ = served
    status, kind, body = get(f"{base}/")
    assert status == 200 and kind.startswith("text/html")
    html = body.decode()
    for asset in ("/static/page.js", "/static/page.css", "/bokeh/bokeh.min.js"):
        assert asset in html
        status, _, content = get(base + asset)
        assert status == 200 and len(content) > 100
    assert "http://" not in html and "https://" not in html  # nothing from the internet
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(f"{base}/static/..%2fserver.py")
    missing.value.close()
    assert missing.value.code == 404


def test_two_scenarios_side_by_side(small_fit_model, tmp_path):
    model, panel = small_fit_model
    a = write_scenario(tmp_path, panel, name="a.yaml", capacity=30)
    b = write_scenario(tmp_path, panel, name="b.yaml", capacity=10)
    planner = Planner([ScenarioDocument(a), ScenarioDocument(b)], model, simulations=300)
    comparison = planner.comparison()
    assert comparison["funded"] is True
    value = next(r for r in comparison["quantities"] if r["quantity"] == "value")
    # A funds more under its larger capacity, on common simulations
    assert value["a_mean"] > value["b_mean"]
    assert len(comparison["selected"]["a"]) > len(comparison["selected"]["b"])


def test_a_scenario_that_does_not_validate_is_refused_at_start(tmp_path, small_fit_model):
    _, panel = small_fit_model
    path = write_scenario(tmp_path, panel)
    path.write_text(path.read_text().replace("capacity: 30", "capacity: -3"), encoding="utf-8")
    with pytest.raises(SpecError, match="capacity"):
        ScenarioDocument(path)


def test_the_command_refuses_bad_input_with_exit_code_2(small_fit_model, tmp_path):
    import socket

    from typer.testing import CliRunner

    from nsm_sim.cli import app

    _, panel = small_fit_model
    path = write_scenario(tmp_path, panel)
    runner = CliRunner()
    missing = runner.invoke(
        app, ["serve", str(path), "--fit", str(tmp_path / "nope"), "--port", "0"]
    )
    assert missing.exit_code == 2 and "not a folder" in missing.output
    three = runner.invoke(app, ["serve", str(path), str(path), str(path), "--fit", "x"])
    assert three.exit_code == 2 and "one or two scenario files" in three.output
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        busy = runner.invoke(app, ["serve", str(path), "--fit", "x", "--port", port])
    assert busy.exit_code == 2 and "cannot listen on 127.0.0.1" in busy.output


def test_a_scenario_may_name_a_tree_with_metric_definitions_whose_owners_are_drawn(
    small_fit_model, tmp_path
):
    import yaml

    from nsm_sim.events.synthetic import world_events
    from nsm_sim.output.tree_diagram import tree_owners
    from nsm_sim.synth import generate_world

    model, panel = small_fit_model
    path = write_scenario(tmp_path, panel)
    log = world_events(generate_world(accounts=60, periods=10, seed=2), seed=2)
    tree_file = tmp_path / "models" / "demo.yaml"
    tree_file.write_text(yaml.safe_dump(log.tree, sort_keys=False), encoding="utf-8")
    doc = ScenarioDocument(path)  # the tree part of a file with definitions
    assert doc.scenario.tree.fingerprint() == model.tree.fingerprint()
    owners = tree_owners(tree_file)
    planner = Planner([doc], model, simulations=300, owners=owners)
    svg = ET.fromstring(planner.tree_svg)
    drawn = {g.get("data-metric"): g.get("data-owner") for g in svg.iter() if g.get("data-metric")}
    assert drawn == {node: owners[node] for node in model.tree.nodes}
