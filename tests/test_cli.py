"""The command line as a user runs it: exit codes, messages, JSON, files."""

import io
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from nsm_sim.cli import app
from nsm_sim.output import notes, tables, terminal

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
SPECS = Path(__file__).parent / "specs"
runner = CliRunner()

COMMANDS = [
    "generate",
    "check",
    "build",
    "fit",
    "validate",
    "simulate",
    "prioritise",
    "compare",
    "report",
    "demo",
    "serve",
    "track",
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


# --- the terminal ---------------------------------------------------------------------------

DEMO_OUTPUT = (
    DATA / "demo_output"
)  # tables of `nsm-sim demo --accounts 1500 --periods 40 --seed 11`
LAG_CONVENTION = "lag k > 0: the metric leads the North Star by k periods"


def narrow_console(width=80):
    return Console(file=io.StringIO(), width=width, highlight=False, color_system=None)


@pytest.fixture(scope="module")
def demo_analysis():
    """The demo's results, read back from its CSV files (no model is fitted)."""

    def read(name, **kwargs):
        return pd.read_csv(DEMO_OUTPUT / name, **kwargs)

    summary = read("simulation.csv")
    drivers = read("drivers.csv", dtype={"calibrated_by": str}).fillna({"calibrated_by": ""})
    drivers["segment"] = drivers["segment"].astype(object).where(drivers["segment"].notna(), None)
    validation = SimpleNamespace(
        metrics=read("validation_metrics.csv"),
        threshold={"sentence": "Accounts at or above 7.37 projects_completed per week retain."},
        settings={"lag_convention": LAG_CONVENTION},
    )
    portfolio = SimpleNamespace(
        selected=("Guided onboarding", "Invite nudges", "Seat pricing page"),
        effort=24.0,
        capacity=30.0,
        expected_value=793.99,
        joint={"mean": 764.8, "p5": 99.06, "p95": 1555.4, "p_positive": 0.974},
    )
    plan = SimpleNamespace(
        ranking=read("ranking.csv"),
        evpi=read("evpi.csv"),
        quantity="value",
        portfolio=portfolio,
        note=None,
    )
    simulation = SimpleNamespace(
        scenario=SimpleNamespace(
            name="Q1 plan",
            horizon=13,
            capacity=30.0,
            tree=SimpleNamespace(north_star="projects_completed"),
        ),
        names=tuple(summary["name"].iloc[:-1]),
        simulations=500,
        has_value=True,
        summary=lambda: summary,
    )
    fit = SimpleNamespace(diagnostics=read("diagnostics.csv"), card={})
    return SimpleNamespace(
        fit=fit,
        summaries={"drivers": drivers, "retention": read("retention.csv")},
        validation=validation,
        simulation=simulation,
        plan=plan,
    )


def test_demo_tables_fit_80_columns_without_cutting_a_name(demo_analysis):
    con = narrow_console(80)
    terminal.render_analysis(con, con, demo_analysis)
    text = con.file.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text
    cells = [cell for line in lines for cell in re.split(r"\s{2,}", line.strip())]
    names = [
        *demo_analysis.validation.metrics["metric"],
        *demo_analysis.plan.ranking["name"],
        *demo_analysis.fit.diagnostics["check"],
        *demo_analysis.summaries["drivers"]["child"],
    ]
    for name in names:
        assert name in cells, name  # whole, in one cell of one line
    for verdict in demo_analysis.validation.metrics["verdict"]:
        assert verdict in cells
    for heading in [
        "Is the North Star leading?",
        "What drives the North Star",
        "Trust gates",
        "Ranking by value per effort",
        "Best portfolio",
        "Value of perfect information",
    ]:
        assert heading in text


def test_a_table_too_wide_is_folded_with_its_names_repeated(demo_analysis):
    con = narrow_console(80)
    terminal.render_simulation(con, demo_analysis.simulation)
    text = con.file.getvalue()
    header_words = [w for h in tables.SIMULATION_COLUMNS.values() for w in h.split()]
    assert all(word in text for word in header_words)  # every column, headers maybe wrapped
    assert text.count("Seat pricing page") == 2  # the key column starts every part
    wide = narrow_console(200)
    terminal.render_simulation(wide, demo_analysis.simulation)
    assert wide.file.getvalue().count("Seat pricing page") == 1


def test_all_initiatives_together_are_apart_from_the_table_and_against_the_capacity(
    demo_analysis,
):
    con = narrow_console(80)
    terminal.render_simulation(con, demo_analysis.simulation)
    text = con.file.getvalue()
    cells = [cell for line in text.splitlines() for cell in re.split(r"\s{2,}", line.strip())]
    assert "portfolio" not in cells  # the summary's last row is not shown as an initiative
    together = text[text.index("All 8 initiatives together") :]
    assert "effort 53, over the capacity of 30" in " ".join(together.split())


def test_lag_convention_only_when_verbose(demo_analysis):
    quiet, verbose = narrow_console(), narrow_console()
    terminal.render_validation(quiet, demo_analysis.validation)
    terminal.render_validation(verbose, demo_analysis.validation, verbose=True)
    assert LAG_CONVENTION not in quiet.file.getvalue()
    assert "Threshold: Accounts at or above" in quiet.file.getvalue()
    assert LAG_CONVENTION in " ".join(verbose.file.getvalue().split())


def test_validation_fits_that_did_not_pass_are_counted_by_status(demo_analysis):
    fits = [
        {"fit": f, "metric": "m", "status": status, "max_rhat": 1.0, "min_ess_bulk": 400.0}
        | {"min_ess_tail": 400.0, "divergences": 0}
        for f, status in [("training", "PASS"), ("all periods", "REVIEW"), ("threshold", "FAIL")]
    ]
    graded = SimpleNamespace(
        **vars(demo_analysis.validation),
        diagnostics=lambda: {"fits": fits, "warnings": ["a", "b"]},
    )
    con, err = narrow_console(), narrow_console()
    terminal.render_validation(con, graded, err=err)
    line = " ".join(err.file.getvalue().split())
    assert "2 of 3 validation fits did not pass (1 FAIL, 1 REVIEW; 2 checks;" in line


PARETO = (
    "Estimated shape parameter of Pareto distribution is greater than 0.70 for one or more "
    "samples. You should consider using a more robust model"
)


@pytest.mark.parametrize("verbose", [False, True])
def test_library_warnings_become_notes(verbose):
    con = narrow_console(200)
    with warnings.catch_warnings():
        warnings.resetwarnings()  # the filters of a plain process, not the suite's "error"
        with notes.listening(verbose) as caught:
            for _ in range(2):
                warnings.warn(PARETO, UserWarning, stacklevel=1)
            warnings.warn("a library's own worry", RuntimeWarning, stacklevel=1)
    notes.render_notes(con, caught, verbose)
    text = con.file.getvalue()
    assert "LOO: Pareto k > 0.7 for some accounts in 2 leave-one-out estimate(s)" in text
    assert "shape parameter" not in text and "test_cli.py" not in text
    assert ("a library's own worry" in text) == verbose
    assert ("--verbose shows them" in text) != verbose


def test_first_compile_is_announced_once(tmp_path):
    con = narrow_console(200)
    terminal.announce_first_compile(con, tmp_path)
    assert f"compiling the models once; later runs reuse them from {tmp_path}" in (
        con.file.getvalue()
    )
    module = tmp_path / "tmpabc123" / "mabc.so"
    module.parent.mkdir()
    module.write_bytes(b"")
    again = narrow_console(200)
    terminal.announce_first_compile(again, tmp_path)
    assert again.file.getvalue() == ""


def test_stages_say_what_ran_and_how_long():
    con = narrow_console(200)
    with terminal.Stages(con) as stages:
        stages.start("reading")
        stages.start("simulating")
        stages.advance(5, 10)
    assert re.findall(r"^(\w+) \(\d+ s\)$", con.file.getvalue(), flags=re.M) == [
        "reading",
        "simulating",
    ]
    quiet = narrow_console(200)
    with terminal.Stages(quiet, quiet=True) as stages:
        stages.start("reading")
    assert quiet.file.getvalue() == ""


def test_every_registered_command_is_listed():
    assert list(typer.main.get_command(app).commands) == COMMANDS


@pytest.mark.parametrize(
    "arguments", [[], ["--help"], *([c, "--help"] for c in COMMANDS)], ids=" ".join
)
def test_no_help_shows_a_type_beside_a_flag(arguments):
    result = runner.invoke(app, arguments, env={"COLUMNS": "100"})
    assert "Usage" in result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output
    assert "BOOLEAN" not in result.output.upper()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_flags_as_plain_flags(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    # the planning page serves a page; it prints no result
    assert ("--json" in result.output) == (command != "serve")
    # posterior draws on the commands that sample a posterior; Monte Carlo ones separately
    assert ("--draws" in result.output) == (command in {"fit", "validate"})
    monte_carlo = {"simulate", "prioritise", "compare", "report", "demo", "serve", "track"}
    assert ("--simulations" in result.output) == (command in monte_carlo)


def test_check_prints_no_source_location_and_cuts_nothing(tmp_path):
    out = tmp_path / "w"
    runner.invoke(app, ["generate", "--out", str(out), "--accounts", "300", "--periods", "20"])
    result = runner.invoke(app, ["check", str(out / "tree.yaml"), "--data", str(out / "panel.csv")])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and "cli.py" not in result.output
    assert "integrations_connected" in result.output


HEAVY_MODULES = ("pymc", "pytensor", "arviz", "duckdb", "matplotlib", "pyspark")


def test_the_command_line_starts_without_the_heavy_libraries():
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from nsm_sim.cli import app\n"
        f"for arguments in {[['--help']] + [[c, '--help'] for c in COMMANDS]!r}:\n"
        "    assert CliRunner().invoke(app, arguments).exit_code == 0, arguments\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(done.stdout.split())
    assert "nsm_sim" in loaded
    assert loaded.isdisjoint(HEAVY_MODULES), sorted(loaded & set(HEAVY_MODULES))


@pytest.mark.slow
def test_fit_with_an_engine_reduces_there_and_agrees_with_the_fit_in_memory(tmp_path):
    world = tmp_path / "world"
    result = runner.invoke(
        app,
        ["generate", "--events", "--out", str(world), "--accounts", "300", "--periods", "16"],
    )
    assert result.exit_code == 0, result.output
    common = ["--draws", "100", "--tune", "100", "--chains", "2", "--seed", "4", "--json"]
    fits = {}
    for name, extra in {"memory": [], "duckdb": ["--engine", "duckdb"]}.items():
        out = tmp_path / name
        result = runner.invoke(
            app, ["fit", str(world / "tree.yaml"), "--out", str(out), *common, *extra]
        )
        assert result.exit_code == 0, result.output
        fits[name] = json.loads(result.stdout)
        card = json.loads((out / "card.json").read_text())
        assert card["rows"] > 0 and card["seconds"]["data_reduction"] >= 0
    memory, engine = (pd.DataFrame(fits[k]["drivers"]) for k in ("memory", "duckdb"))
    assert list(memory.columns) == list(engine.columns) and len(memory) == len(engine)
    # The reductions agree to about 1e-12, but NUTS amplifies any difference into other
    # chains: the posteriors agree within their Monte Carlo error.
    spread = (memory["high"] - memory["low"]) / (2 * 1.645)
    assert (abs(memory["mean"] - engine["mean"]) < 0.5 * spread).all()
    assert (abs((engine["high"] - engine["low"]) / (2 * 1.645) / spread - 1) < 0.3).all()
    result = runner.invoke(
        app, ["fit", str(world / "tree.yaml"), "--out", str(tmp_path / "x"), "--engine", "duck"]
    )
    assert result.exit_code == 2
    assert "unknown engine 'duck'" in result.output


def test_validate_strict_exits_3_naming_the_fit_whose_gate_failed(monkeypatch, tmp_path):
    import nsm_sim.leading as leading_mod
    from nsm_sim.output import report as report_mod

    checks = pd.DataFrame(
        {
            "fit": ["in_sample", "in_sample"],
            "metric": ["logins", "revenue"],
            "check": ["r_hat", "r_hat"],
            "status": ["PASS", "FAIL"],
        }
    )
    monkeypatch.setattr(leading_mod, "validate", lambda *a, **k: SimpleNamespace(checks=checks))
    monkeypatch.setattr(report_mod, "validation_payload", lambda v: {"checks": len(v.checks)})
    command = ["validate", str(DATA / "tiny_tree.yaml"), "--data", str(DATA / "valid.csv")]
    assert runner.invoke(app, [*command, "--json"]).exit_code == 0
    result = runner.invoke(app, [*command, "--json", "--strict"])
    assert result.exit_code == 3, result.output
    assert "revenue in_sample r_hat" in result.output
    assert "logins" not in result.output.split("diagnostics failed:")[1]


def test_money_carries_the_currency_the_tree_names(demo_analysis):
    plan = demo_analysis.plan
    named = tables.ranking_view(plan, "EUR").columns
    assert "expected value (EUR)" in named and "EUR / effort" in named
    assert "expected value" in tables.ranking_view(plan).columns
    result = demo_analysis.simulation
    result.scenario.tree.currency = "EUR"
    try:
        columns = tables.simulation_table(result).columns
        con = narrow_console(120)
        terminal.render_simulation(con, result)
    finally:
        del result.scenario.tree.currency
    assert "value (EUR, mean)" in columns and "EUR / effort" in columns
    assert " EUR" in con.file.getvalue()
