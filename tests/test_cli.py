"""The command line as a user runs it: exit codes, messages, JSON, files."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nsm_sim.cli import app

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
SPECS = Path(__file__).parent / "specs"
runner = CliRunner()

COMMANDS = [
    "generate",
    "check",
    "fit",
    "validate",
    "simulate",
    "prioritise",
    "compare",
    "report",
    "demo",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_generate_then_check_passes(tmp_path):
    out = tmp_path / "w"
    result = runner.invoke(
        app, ["generate", "--out", str(out), "--accounts", "300", "--periods", "20", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"panel.csv", "tree.yaml", "truth.json"}
    result = runner.invoke(
        app, ["check", str(out / "tree.yaml"), "--data", str(out / "panel.csv"), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["data"]["accounts"] == 300
    assert summary["data"]["periods"]["count"] == 20


def test_check_scenario(tmp_path):
    result = runner.invoke(app, ["check", str(ROOT / "scenarios" / "demo.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["initiatives"] == 8


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("wrong_scenario_target.yaml", "initiatives[0].target"),
        ("wrong_tree_cycle.yaml", "cycle"),
        ("wrong_scenario_unknown_key.yaml", "did you mean 'effort'"),
    ],
)
def test_bad_spec_exits_2_without_traceback(spec, expected):
    result = runner.invoke(app, ["check", str(SPECS / spec)])
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output


def test_bad_panel_exits_2_naming_column():
    result = runner.invoke(
        app, ["check", str(DATA / "tiny_tree.yaml"), "--data", str(DATA / "negative.csv")]
    )
    assert result.exit_code == 2
    assert "negative" in result.output and "Traceback" not in result.output


def test_bad_option_value_exits_2(tmp_path):
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--format", "xlsx"])
    assert result.exit_code == 2
    assert "csv or parquet" in result.output
    assert not any(tmp_path.iterdir())


def test_missing_fit_bundle_exits_2(tmp_path):
    result = runner.invoke(
        app, ["simulate", str(ROOT / "scenarios" / "demo.yaml"), "--fit", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
