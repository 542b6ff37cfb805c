"""End to end, as a user runs it: demo, fit, simulate, prioritise, compare, report."""

import json
import math
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from nsm_sim.cli import app
from nsm_sim.models import inference
from nsm_sim.output.html import PNG_SIGNATURE

ROOT = Path(__file__).parent.parent
SCENARIO = ROOT / "scenarios" / "demo.yaml"
runner = CliRunner()

pytestmark = pytest.mark.slow  # every test here runs the demo or samples a fit

REPORT_SECTIONS = [
    "Where the North Star is heading",
    "Is the North Star leading?",
    "What drives projects_completed?",
    "What should we fund?",
    "Details and diagnostics",
    "Assumptions",
]
FIGURES = [
    "forecast.png",
    "elasticities.png",
    "retention_by_level.png",
    "timing.png",
    "north_star_fan.png",
    "value_distribution.png",
    "evpi.png",
]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = runner.invoke(
        app,
        [
            "demo",
            "--out",
            str(out),
            "--accounts",
            "1500",
            "--periods",
            "40",
            "--simulations",
            "500",
            "--seed",
            "11",
        ],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_demo_prints_the_three_answers(demo_dir):
    _, output = demo_dir
    for heading in [
        "Is the North Star leading?",
        "What drives the North Star",
        "Best portfolio",
        "Value of perfect information",
    ]:
        assert heading in output


def test_demo_says_each_stage_and_its_seconds_and_no_more(demo_dir):
    _, output = demo_dir
    stages = re.findall(r"^(.+) \((\d+) s\)$", output, flags=re.M)
    said = [stage for stage, _ in stages]
    assert said[0] == "generating the synthetic world: 1,500 accounts x 40 weeks"
    assert "fitting the driver and retention models; validating alongside" in said
    assert "validating the North Star against the candidates" in said
    assert said[-1].startswith("writing the report to")
    assert ".py:" not in output  # no source locations
    assert "lag k > 0" not in output  # the lag convention is in the files, not the terminal
    assert max(len(line) for line in output.splitlines()) <= 80


def test_demo_writes_every_file(demo_dir):
    out, _ = demo_dir
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000, name
    for name in [
        "drivers.csv",
        "ranking.csv",
        "evpi.csv",
        "validation_metrics.csv",
        "simulation.csv",
        "diagnostics.csv",
    ]:
        assert len((out / name).read_text().splitlines()) > 1, name
    plan = json.loads((out / "prioritise.json").read_text())
    assert plan["portfolio"]["effort"] <= 30
    # the demo's capacity leaves initiatives out, so the fan chart shows the chosen portfolio
    series = set(pd.read_csv(out / "trajectory.csv")["scenario"])
    assert series == {"no initiative", "all initiatives together", "chosen portfolio"}
    forecast = json.loads((out / "forecast.json").read_text())
    last = pd.read_csv(out / "world" / "panel.csv", usecols=["period"])["period"].max()
    first = pd.Timestamp(last) + pd.Timedelta(days=7)
    assert forecast["forecast"][0]["period"] == f"{first:%Y-%m-%d}"  # the week after the data
    assert 0 <= forecast["target"]["p_portfolio"] <= 1
    assert {"world", "fit"} <= {p.name for p in out.iterdir()}
    staging = [*out.glob(".*nsm-sim-*"), *out.parent.glob(f".{out.name}.nsm-sim-*")]
    assert not staging, "staging folder left behind"


def test_report_holds_every_section_and_embedded_figure(demo_dir):
    out, _ = demo_dir
    page = (out / "report.html").read_text()
    for title in REPORT_SECTIONS:
        assert title in page
    assert page.count('<img src="data:image/png;base64,') == len(FIGURES)
    # nothing fetched from elsewhere (an SVG's xmlns names its namespace, it loads nothing)
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?https?://""", page)


@pytest.fixture(scope="module")
def bundle(fitted, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "fit"
    inference.save_bundle(fitted, out)
    return out


def test_simulate_json_has_the_promised_keys(bundle):
    result = runner.invoke(
        app, ["simulate", str(SCENARIO), "--fit", str(bundle), "--simulations", "400", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    first = payload["initiatives"][0]
    assert {
        "name",
        "effort",
        "north_star_change",
        "north_star_change_pct",
        "retained_accounts",
        "value",
    } <= set(first)
    assert {"mean", "median", "p5", "p95", "p_positive"} <= set(first["north_star_change"])
    assert "portfolio" in payload


def test_same_seed_same_numbers(bundle):
    args = [
        "prioritise",
        str(SCENARIO),
        "--fit",
        str(bundle),
        "--simulations",
        "300",
        "--seed",
        "5",
        "--json",
    ]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    payload = json.loads(first.stdout)
    assert {"name", "expected_value", "value_per_effort", "p_top3"} <= set(payload["ranking"][0])
    assert {"selected", "effort", "expected_value"} <= set(payload["portfolio"])
    assert {"name", "evpi"} <= set(payload["evpi"][0])


@pytest.mark.parametrize("basis", ["--all", "--funded"])
def test_compare_a_scenario_with_itself_is_a_tie(bundle, basis):
    result = runner.invoke(
        app,
        [
            *("compare", str(SCENARIO), str(SCENARIO), "--fit", str(bundle)),
            *("--simulations", "300", "--json", basis),
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["funded"] == (basis == "--funded")
    assert payload["selected"]["a"] == payload["selected"]["b"]
    for row in payload["quantities"]:
        assert row["diff_mean"] == 0
        assert row["p_a_beats_b"] == 0


def test_report_on_a_bundle_without_data(bundle, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "report",
            "--fit",
            str(bundle),
            "--scenario",
            str(SCENARIO),
            "--out",
            str(out),
            "--simulations",
            "300",
        ],
    )
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "What should we fund?" in page and "Is the North Star leading?" not in page


def test_simulate_refuses_a_bundle_of_another_tree(bundle, tmp_path):
    scenario = tmp_path / "other.yaml"
    tree = tmp_path / "tree.yaml"
    tree.write_text(
        (ROOT / "models" / "demo.yaml").read_text().replace("[logins, revenue]", "[logins]")
    )
    scenario.write_text(SCENARIO.read_text().replace("../models/demo.yaml", "tree.yaml"))
    result = runner.invoke(app, ["simulate", str(scenario), "--fit", str(bundle)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_fit_with_an_experiment_calibrates_its_edge(world_dir, tmp_path):
    """A tree with a past experiment: its edge takes the experiment's level, and says so."""
    tree = yaml.safe_load((world_dir / "tree.yaml").read_text())
    # invites_sent +20% moved active_seats by 1.0-1.2 %: an elasticity of about 0.06, where
    # the observational data say 0.35
    tree["experiments"] = [
        {
            "name": "Invite reminder test",
            "input": "invites_sent",
            "input_lift": "20%",
            "parent_lift": {"low": "1.0%", "high": "1.2%"},
        }
    ]
    tree_file = tmp_path / "tree.yaml"
    tree_file.write_text(yaml.safe_dump(tree))
    assert runner.invoke(app, ["check", str(tree_file)]).exit_code == 0
    result = runner.invoke(
        app,
        [
            *("fit", str(tree_file), "--data", str(world_dir / "panel.csv")),
            *("--out", str(tmp_path / "fit"), "--draws", "200", "--tune", "200", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["drivers"]
    by_edge = {(r["parent"], r["child"], r["segment"]): r for r in rows}
    calibrated = by_edge[("active_seats", "invites_sent", None)]
    measured = math.log(1.011) / math.log(1.2)
    assert calibrated["calibrated_by"] == "Invite reminder test"
    assert calibrated["low"] < measured < calibrated["high"]
    assert calibrated["high"] - calibrated["low"] < 0.02
    for segment in ("free", "team", "enterprise"):  # the causal segment elasticities follow
        assert abs(by_edge[("active_seats", "invites_sent", segment)]["mean"] - measured) < 0.1
    other = by_edge[("active_seats", "seats_activated", None)]  # not calibrated: the data's
    assert other["calibrated_by"] == "" and abs(other["mean"] - 0.55) < 0.02
    assert other["low"] < other["mean"] < other["high"]
    page = runner.invoke(
        app,
        ["report", "--fit", str(tmp_path / "fit"), "--out", str(tmp_path / "report")],
    )
    assert page.exit_code == 0, page.output
    html_text = (tmp_path / "report" / "report.html").read_text()
    assert "calibrated here: active_seats &lt;- invites_sent by Invite reminder test" in html_text


def test_validating_alongside_gives_the_validation_of_this_process():
    from nsm_sim import leading, pipeline, synth
    from nsm_sim.data import check_frame
    from nsm_sim.files import dumps
    from nsm_sim.output.report import validation_payload

    world = synth.generate_world(accounts=300, periods=20, seed=11)
    panel = check_frame(world.panel, world.tree, source="synthetic world")
    with pipeline.validating_alongside(panel, seed=5) as alongside:
        with warnings.catch_warnings(record=True) as seen_here:
            warnings.simplefilter("always")
            here = leading.validate(panel, seed=5)
        # the second process's warnings are raised again here, for the caller's notes
        with warnings.catch_warnings(record=True) as seen_there:
            warnings.simplefilter("always")
            there = alongside()
    assert dumps(validation_payload(there)) == dumps(validation_payload(here))
    assert len(here.metrics) >= 3

    def said(seen):
        return {str(w.message) for w in seen if issubclass(w.category, UserWarning)}

    # every warning of the validation reaches this process (the second one may add its own
    # start-up warnings, such as PyTensor's about BLAS; whether this one raises any depends on
    # what ran before in it, so the relay itself is checked in tests/test_alongside.py)
    assert said(seen_here) <= said(seen_there)
