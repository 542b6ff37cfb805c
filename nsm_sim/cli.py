"""The ``nsm-sim`` command line: a thin shell that parses, calls the Python API and renders.

Exit codes: 0 ok; 2 bad input (a message, no traceback); 3 failed diagnostics under
``--strict``; 1 a bug.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from nsm_sim.errors import DiagnosticsError, InputError
from nsm_sim.files import dumps, write_files
from nsm_sim.output import notes, report, tables, terminal

warnings.filterwarnings("ignore", message=".*BLAS.*", category=UserWarning)

app = typer.Typer(
    name="nsm-sim",
    help=(
        "North Star Metric engine: is the North Star leading, what drives it, and which "
        "initiatives to fund. Start with `nsm-sim demo`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _Command(typer.core.TyperCommand):
    """A command whose help shows boolean flags as plain flags, without a ``<bool>`` type."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.get_params(ctx):
            if getattr(param, "is_flag", False):
                param.metavar = ""
        super().format_help(ctx, formatter)


command = functools.partial(app.command, cls=_Command)

Seed = Annotated[int, typer.Option(help="Random seed; the same seed gives the same numbers.")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
OutDir = Annotated[
    Path | None, typer.Option("--out", help="Folder for CSV, JSON, PNG and HTML outputs.")
]
FitDir = Annotated[Path, typer.Option("--fit", help="Fit bundle folder written by `nsm-sim fit`.")]
Simulations = Annotated[
    int, typer.Option("--simulations", min=100, help="Monte Carlo simulations.")
]
Sampler = Annotated[str, typer.Option(help="NUTS back-end: nutpie (default, faster) or pymc.")]
TreeFile = Annotated[Path, typer.Argument(help="Metric-tree file (models/NAME.yaml).")]
ScenarioFile = Annotated[Path, typer.Argument(help="Scenario file (scenarios/NAME.yaml).")]
PanelFile = Annotated[Path, typer.Option("--data", help="Panel, CSV or Parquet.")]
Verbose = Annotated[
    bool,
    typer.Option("--verbose", help="Also show library warnings and logs, and the lag convention."),
]


def _guard(run: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain errors into exit codes at the boundary, never a traceback.

    Library warnings raised meanwhile become notes on stderr (all of them with ``--verbose``).
    """

    @functools.wraps(run)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        err = terminal.console(stderr=True)
        verbose = bool(kwargs.get("verbose", False))
        try:
            with notes.listening(verbose) as caught:
                try:
                    return run(*args, **kwargs)
                finally:
                    notes.render_notes(err, caught, verbose)
        except InputError as exc:
            err.print(f"[bold red]error:[/] {exc.message}", markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except DiagnosticsError as exc:
            err.print(f"[bold red]diagnostics failed:[/] {exc}", soft_wrap=True)
            raise typer.Exit(3) from None

    return wrapper


def _emit_json(payload: Any) -> None:
    sys.stdout.write(dumps(payload) + "\n")


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        expected = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        raise InputError(flag, [f"expected {expected}, got {value!r}"])


def _enforce(checks, strict: bool) -> None:
    failed = checks[checks["status"] == "FAIL"]
    if strict and len(failed):
        raise DiagnosticsError(", ".join(failed["check"].astype(str)))


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- generate, check


@command()
@_guard
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the world into.")],
    accounts: Annotated[int, typer.Option(min=50, help="Accounts in the world.")] = 5000,
    periods: Annotated[int, typer.Option(min=8, help="Weekly periods.")] = 52,
    seed: Seed = 0,
    file_format: Annotated[
        str, typer.Option("--format", help="Panel file format: csv or parquet.")
    ] = "csv",
    json: Json = False,
) -> None:
    """Generate the built-in synthetic world: panel, tree.yaml and truth.json."""
    from nsm_sim import synth

    _check_choice("--format", file_format, ("csv", "parquet"))
    world = synth.generate_world(accounts=accounts, periods=periods, seed=seed)
    paths = list(synth.write_world(world, out, fmt=file_format).values())
    rows, churned = len(world.panel), int(world.panel["churned"].sum())
    if json:
        _emit_json({"out": str(out), "files": [str(p) for p in paths], "rows": rows})
        return
    terminal.console().print(
        f"Wrote {rows:,} account-periods of {accounts:,} accounts x {periods} weeks "
        f"({churned:,} churned) to {out}/: " + ", ".join(Path(p).name for p in paths)
    )


def _is_scenario_file(path: Path) -> bool:
    import yaml

    try:
        return "initiatives" in (yaml.safe_load(path.read_text()) or {})
    except (OSError, yaml.YAMLError, TypeError, AttributeError):
        return False


@command()
@_guard
def check(
    spec: Annotated[Path, typer.Argument(help="A metric-tree file or a scenario file (YAML).")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Panel (CSV or Parquet) to check against the tree."),
    ] = None,
    json: Json = False,
) -> None:
    """Validate a metric tree (and a panel against it) or a scenario; change nothing."""
    from nsm_sim import data as data_mod
    from nsm_sim import spec as spec_mod

    con = terminal.console()
    if _is_scenario_file(spec):
        if data is not None:
            raise InputError("--data", ["--data goes with a metric-tree file, not a scenario"])
        facts = tables.scenario_facts(spec_mod.load_scenario(spec))
        render = functools.partial(terminal.render_scenario_check, con, facts)
    else:
        tree = spec_mod.load_tree(spec)
        facts = tables.tree_facts(tree)
        render = functools.partial(terminal.render_tree_check, con, facts)
        if data is not None:
            facts["data"] = data_mod.describe(data_mod.load_panel(data, tree))
            render = functools.partial(terminal.render_panel_check, con, data, tree.name, facts)
    if json:
        _emit_json(facts)
    else:
        render()


# --------------------------------------------------------------------------- fit, validate


def _announce_first_compile(err, quiet: bool) -> None:
    import pytensor

    terminal.announce_first_compile(err, Path(pytensor.config.compiledir), quiet)


@command()
@_guard
def fit(
    tree: TreeFile,
    data: PanelFile,
    out: Annotated[Path, typer.Option("--out", help="Folder for the fit bundle.")],
    seed: Seed = 0,
    sampler: Sampler = "nutpie",
    draws: Annotated[int, typer.Option(min=50, help="Posterior draws per chain.")] = 500,
    tune: Annotated[int, typer.Option(min=50, help="Tuning steps per chain.")] = 500,
    chains: Annotated[int, typer.Option(min=1, help="Chains.")] = 4,
    pooled: Annotated[
        bool, typer.Option("--pooled", help="Elasticities across accounts (biased by size).")
    ] = False,
    hinge: Annotated[bool, typer.Option(help="Threshold ('aha') step in the churn model.")] = True,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 3 when a diagnostic fails.")
    ] = False,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Fit the driver and retention models and write a fit bundle."""
    from nsm_sim import data as data_mod
    from nsm_sim.models import inference
    from nsm_sim.spec import load_tree

    _check_choice("--sampler", sampler, ("nutpie", "pymc"))
    err = terminal.console(stderr=True)
    with terminal.Stages(err, quiet=json) as stages:
        stages.start(f"reading the panel {data}")
        panel = data_mod.load_panel(data, load_tree(tree))
        _announce_first_compile(err, json)
        stages.start(f"fitting the driver and retention models ({sampler} NUTS)")
        result = inference.fit(
            panel,
            within=not pooled,
            hinge=hinge,
            sampler=sampler,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
        )
        stages.start(f"writing the fit bundle to {out}")
        inference.save_bundle(result, out)
        summaries = inference.summarise(result)
    if json:
        _emit_json(
            {
                "drivers": summaries["drivers"],
                "retention": summaries["retention"],
                "diagnostics": result.card["diagnostics"],
                "checks": result.diagnostics,
                "bundle": str(out),
            }
        )
    else:
        terminal.render_fit(terminal.console(), err, result, summaries, out)
    _enforce(result.diagnostics, strict)


@command()
@_guard
def validate(
    tree: TreeFile,
    data: PanelFile,
    seed: Seed = 0,
    sampler: Sampler = "nutpie",
    out: OutDir = None,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Is the North Star truly leading? Verdicts for it and every candidate, with the evidence."""
    from nsm_sim import data as data_mod
    from nsm_sim import leading
    from nsm_sim.spec import load_tree

    _check_choice("--sampler", sampler, ("nutpie", "pymc"))
    err = terminal.console(stderr=True)
    with terminal.Stages(err, quiet=json) as stages:
        stages.start(f"reading the panel {data}")
        panel = data_mod.load_panel(data, load_tree(tree))
        _announce_first_compile(err, json)
        stages.start("validating: the churn model fitted per metric")
        result = leading.validate(panel, seed=seed, sampler=sampler)
    if out is not None:
        write_files(out, report.validation_files(result))
    if json:
        _emit_json(result.to_dict())
        return
    terminal.render_validation(terminal.console(), result, verbose)


# --------------------------------------------------------------------------- simulate, prioritise


def _simulate(scenario_file: Path, fit_dir: Path, simulations: int, seed: int, quiet: bool):
    from nsm_sim import pipeline
    from nsm_sim.models import inference
    from nsm_sim.spec import load_scenario

    scenario = load_scenario(scenario_file)
    fitted = inference.load_bundle(fit_dir, tree=scenario.tree)
    with terminal.Stages(terminal.console(stderr=True), quiet=quiet) as stages:
        stages.start(f"simulating {scenario.name}: {simulations:,} simulations")
        return pipeline.simulate_scenario(
            scenario, fitted, simulations=simulations, seed=seed, progress=stages.advance
        )


@command()
@_guard
def simulate(
    scenario: ScenarioFile,
    fit_dir: FitDir,
    simulations: Simulations = 4000,
    seed: Seed = 0,
    out: OutDir = None,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Project each initiative and the portfolio to the North Star, retention and value."""
    result = _simulate(scenario, fit_dir, simulations, seed, json)
    if out is not None:
        write_files(out, report.simulation_files(result))
    if json:
        _emit_json(result.to_dict())
        return
    terminal.render_simulation(terminal.console(), result)


@command()
@_guard
def prioritise(
    scenario: ScenarioFile,
    fit_dir: FitDir,
    simulations: Simulations = 4000,
    seed: Seed = 0,
    objective: Annotated[
        str, typer.Option(help="value, north_star or retained_accounts.")
    ] = "value",
    risk_aversion: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Weight on the worst 10% of simulations (CVaR), 0..1."),
    ] = 0.0,
    out: OutDir = None,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Rank initiatives, choose the best portfolio for the capacity, value information."""
    from nsm_sim import prioritise as prio

    _check_choice("--objective", objective, tuple(prio.OBJECTIVES))
    result = _simulate(scenario, fit_dir, simulations, seed, json)
    plan = prio.prioritise(result, objective=objective, risk_aversion=risk_aversion)
    if out is not None:
        write_files(out, report.prioritisation_files(result, plan))
    if json:
        _emit_json(plan.to_dict())
        return
    terminal.render_prioritisation(terminal.console(), result, plan)


@command()
@_guard
def compare(
    scenario_a: Annotated[Path, typer.Argument(help="Scenario A.")],
    scenario_b: Annotated[Path, typer.Argument(help="Scenario B.")],
    fit_dir: FitDir,
    simulations: Simulations = 4000,
    seed: Seed = 0,
    funded: Annotated[
        bool,
        typer.Option(
            "--funded/--all",
            help="Compare the portfolio each scenario funds under its own capacity (best "
            "expected value, exact), or every initiative of each.",
        ),
    ] = False,
    out: OutDir = None,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Compare two scenarios' portfolios on common simulations: side by side, P(A beats B)."""
    from nsm_sim import prioritise as prio

    result_a = _simulate(scenario_a, fit_dir, simulations, seed, json)
    result_b = _simulate(scenario_b, fit_dir, simulations, seed, json)
    comparison = prio.compare(result_a, result_b, funded=funded)
    if out is not None:
        write_files(out, report.comparison_files(comparison))
    if json:
        _emit_json(comparison.to_dict())
        return
    terminal.render_comparison(terminal.console(), comparison)


# --------------------------------------------------------------------------- report, demo


@command(name="report")
@_guard
def report_command(
    fit_dir: FitDir,
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html and its files.")],
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="Scenario to simulate and prioritise.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Panel, to validate the North Star.")
    ] = None,
    simulations: Simulations = 4000,
    seed: Seed = 0,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Write the HTML report (with CSV, JSON and PNG) for a fit bundle on your own data."""
    from nsm_sim import data as data_mod
    from nsm_sim import pipeline
    from nsm_sim.models import inference
    from nsm_sim.spec import load_scenario

    err = terminal.console(stderr=True)
    with terminal.Stages(err, quiet=json) as stages:
        stages.start(f"reading the fit bundle {fit_dir}")
        spec = load_scenario(scenario) if scenario is not None else None
        fitted = inference.load_bundle(fit_dir, tree=spec.tree if spec is not None else None)
        panel = data_mod.load_panel(data, fitted.tree) if data is not None else None
        if panel is not None:
            _announce_first_compile(err, json)
        analysis = pipeline.analyse(
            fitted,
            panel=panel,
            scenario=spec,
            simulations=simulations,
            seed=seed,
            on_step=stages.start,
            progress=stages.advance,
        )
        stages.start(f"writing the report to {out}")
        written = write_files(out, report.report_files(analysis, generated=_now()))
    if json:
        _emit_json({"out": str(out), "files": [p.name for p in written]})
        return
    con = terminal.console()
    terminal.render_analysis(con, err, analysis, verbose)
    con.print(f"Report: {out / 'report.html'} ({len(written)} files in {out}/)")


@command()
@_guard
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("nsm-demo"),
    accounts: Annotated[int, typer.Option(min=200, help="Accounts in the world.")] = 5000,
    periods: Annotated[int, typer.Option(min=20, help="Weekly periods.")] = 52,
    simulations: Simulations = 4000,
    seed: Seed = 0,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Run everything on the built-in synthetic world, then write the report."""
    import time

    from nsm_sim import pipeline

    started = time.perf_counter()
    err = terminal.console(stderr=True)
    _announce_first_compile(err, json)
    with terminal.Stages(err, quiet=json) as stages:
        analysis = pipeline.run_demo(
            out,
            accounts=accounts,
            periods=periods,
            seed=seed,
            simulations=simulations,
            on_step=stages.start,
            progress=stages.advance,
        )
        stages.start(f"writing the report to {out}")
        written = write_files(out, report.report_files(analysis, generated=_now()))
    seconds = time.perf_counter() - started
    if json:
        _emit_json(
            {
                "out": str(out),
                "files": [p.name for p in written],
                "seconds": seconds,
                "validation": analysis.validation.to_dict(),
                "prioritise": analysis.plan.to_dict(),
            }
        )
        return
    con = terminal.console()
    terminal.render_analysis(con, err, analysis, verbose)
    con.print(
        f"Done in {seconds:.0f} s. Report: {out / 'report.html'}; world, fit bundle, CSV, "
        f"JSON and PNG in {out}/"
    )


def main() -> None:  # pragma: no cover - console entry point
    """Run the ``nsm-sim`` application."""
    app()
