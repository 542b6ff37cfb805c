"""Commands on decisions: simulate, prioritise, compare, and the report and the demo."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from nsm_sim import limits
from nsm_sim.cli.app import (
    Engine,
    FitDir,
    Json,
    OutDir,
    ScenarioFile,
    Seed,
    Simulations,
    Verbose,
    announce_first_compile,
    check_choice,
    check_out,
    command,
    emit_json,
    guard,
    now,
)
from nsm_sim.events import command as events_command
from nsm_sim.files import write_files
from nsm_sim.output import report, terminal

# --------------------------------------------------------------------------- simulate, prioritise


def _load_for_simulation(scenario_files: Sequence[Path], fit_dir: Path, simulations: int):
    """Read the scenarios and the fit bundle, check the simulations' size, print its warnings."""
    from nsm_sim.models import inference
    from nsm_sim.spec import load_scenario

    scenarios = [load_scenario(path) for path in scenario_files]
    fitted = inference.load_bundle(fit_dir, tree=scenarios[0].tree)
    for scenario in scenarios[1:]:
        inference.load_bundle(fit_dir, tree=scenario.tree)
    cells = len(fitted.population.frame)
    for scenario in scenarios:
        limits.check_simulation(
            simulations, scenario.horizon, len(scenario.initiatives), cells, len(scenarios)
        )
    terminal.render_warnings(terminal.console(stderr=True), fitted.warnings)
    return scenarios, fitted


def _simulate(scenario, fitted, simulations: int, seed: int, quiet: bool):
    from nsm_sim import pipeline

    with terminal.Stages(terminal.console(stderr=True), quiet=quiet) as stages:
        stages.start(f"simulating {scenario.name}: {simulations:,} simulations")
        return pipeline.simulate_scenario(
            scenario, fitted, simulations=simulations, seed=seed, progress=stages.advance
        )


def _forecast(
    scenario, fitted, simulations: int, seed: int, quiet: bool, needed: bool = True, portfolio=None
):
    """Forecast the North Star with new accounts and judge the target.

    ``portfolio``: the initiatives of the forecast's portfolio (default all). Returns
    ``(None, None)``, with a warning, when the fit has no history.
    """
    from nsm_sim import forecast as fc

    err = terminal.console(stderr=True)
    if getattr(fitted, "history", None) is None:
        terminal.render_warnings(
            err,
            [
                "the fit bundle has no history.csv (fitted before forecasts, or from a query "
                "engine's reduction): no forecast with new accounts; fit again from the panel"
            ],
        )
        return None, None
    with terminal.Stages(err, quiet=quiet) as stages:
        stages.start("forecasting the North Star with new accounts")
        forecast = fc.forecast_fit(
            scenario, fitted, portfolio=portfolio, simulations=simulations, seed=seed
        )
        terminal.render_warnings(err, forecast.warnings)
        target = None
        if forecast.target is not None:
            stages.start("judging the target: P(reaching it), what it would take")
            target = fc.target_report(forecast) if needed else forecast.to_dict()["target"]
    return forecast, target


@command()
@guard
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
    check_out(out)
    from nsm_sim.output.forecast_text import render_forecast

    (spec,), fitted = _load_for_simulation([scenario], fit_dir, simulations)
    result = _simulate(spec, fitted, simulations, seed, json)
    forecast, target = _forecast(spec, fitted, simulations, seed, json)
    if out is not None:
        files = report.simulation_files(
            result, warnings=fitted.warnings, origin=report.origin_of(fitted)
        )
        if forecast is not None:
            files = {**files, **report.forecast_files(forecast, target)}
        write_files(out, files)
    if json:
        payload = result.to_dict()
        if forecast is not None:
            payload["forecast"] = forecast.to_dict()["forecast"]
            payload["target"] = target
        warnings = fitted.warnings + (forecast.warnings if forecast is not None else [])
        emit_json(report.with_warnings(payload, warnings))
        return
    terminal.render_simulation(terminal.console(), result)
    if forecast is not None:
        render_forecast(terminal.console(), forecast, target)


@command()
@guard
def prioritise(
    scenario: ScenarioFile,
    fit_dir: FitDir,
    simulations: Simulations = 4000,
    seed: Seed = 0,
    objective: Annotated[
        str,
        typer.Option(
            help="value, north_star, retained_accounts, or target (the portfolio that "
            "maximises P(reaching the scenario's or the tree's target))."
        ),
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
    from nsm_sim.errors import SpecError
    from nsm_sim.forecast import best_target_portfolio
    from nsm_sim.output.forecast_text import render_target_line, render_target_portfolio

    check_choice("--objective", objective, (*prio.OBJECTIVES, "target"))
    check_out(out)
    (spec,), fitted = _load_for_simulation([scenario], fit_dir, simulations)
    for_target = objective == "target"
    if for_target and spec.goal is None:
        raise SpecError(
            str(scenario),
            [
                "target: --objective target needs a target: {value, by: DATE} in the scenario "
                "or the tree"
            ],
        )
    result = _simulate(spec, fitted, simulations, seed, json)
    # the ranking and the value of information of a target are those of the North Star
    ranked = "north_star" if for_target else objective
    plan = prio.prioritise(result, objective=ranked, risk_aversion=risk_aversion)
    chosen, forecast, target = None, None, None
    if for_target:
        forecast, _ = _forecast(spec, fitted, simulations, seed, json, needed=False)
        if forecast is None:
            raise SpecError(str(fit_dir), ["history.csv: --objective target needs a forecast"])
        chosen = best_target_portfolio(forecast)
    elif spec.goal is not None:  # P(target) with the portfolio chosen
        forecast, target = _forecast(
            spec, fitted, simulations, seed, json, needed=False, portfolio=plan.portfolio.selected
        )
    if out is not None:
        files = report.prioritisation_files(
            result, plan, fitted.warnings, origin=report.origin_of(fitted)
        )
        write_files(out, files)
    if json:
        payload = plan.to_dict()
        if chosen is not None:
            payload["target_portfolio"] = chosen
        if target is not None:
            payload["target"] = target
        emit_json(report.with_warnings(payload, fitted.warnings))
        return
    terminal.render_prioritisation(terminal.console(), result, plan)
    if chosen is not None:
        render_target_portfolio(terminal.console(), spec, chosen)
    elif target is not None:
        render_target_line(terminal.console(), target, "the chosen portfolio")


@command()
@guard
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

    check_out(out)
    (spec_a, spec_b), fitted = _load_for_simulation([scenario_a, scenario_b], fit_dir, simulations)
    result_a = _simulate(spec_a, fitted, simulations, seed, json)
    result_b = _simulate(spec_b, fitted, simulations, seed, json)
    comparison = prio.compare(result_a, result_b, funded=funded)
    if out is not None:
        write_files(out, report.comparison_files(comparison))
    if json:
        emit_json(report.with_warnings(comparison.to_dict(), fitted.warnings))
        return
    terminal.render_comparison(terminal.console(), comparison)


# --------------------------------------------------------------------------- report, demo


@command(name="report")
@guard
def report_command(
    fit_dir: FitDir,
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html and its files.")],
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="Scenario to simulate and prioritise.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Panel, to validate the North Star.")
    ] = None,
    tree: Annotated[
        Path | None,
        typer.Option("--tree", help="Tree file that builds the panel from events (for --data)."),
    ] = None,
    simulations: Simulations = 4000,
    seed: Seed = 0,
    engine: Engine = "duckdb",
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Write the HTML report (with CSV, JSON and PNG) for a fit bundle on your own data."""
    from nsm_sim import data as data_mod
    from nsm_sim import pipeline
    from nsm_sim.errors import BundleError
    from nsm_sim.models import inference

    check_out(out)
    err = terminal.console(stderr=True)
    with terminal.Stages(err, quiet=json) as stages:
        stages.start(f"reading the fit bundle {fit_dir}")
        if scenario is not None:
            (spec,), fitted = _load_for_simulation([scenario], fit_dir, simulations)
        else:
            spec, fitted = None, inference.load_bundle(fit_dir)
            terminal.render_warnings(err, fitted.warnings)
        panel = None
        if tree is not None:
            panel = events_command.panel_for(tree, data, engine)
            diffs = inference.tree_differences(fitted.tree, panel.tree)
            if diffs:
                raise BundleError(str(fit_dir), [f"fitted on another tree than {tree}: {diffs[0]}"])
        elif data is not None:
            panel = data_mod.load_panel(data, fitted.tree)
        if panel is not None:
            announce_first_compile(err, json)
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
        written = write_files(out, report.report_files(analysis, generated=now()))
    if json:
        emit_json(
            {"out": str(out), "files": [p.name for p in written], "warnings": fitted.warnings}
        )
        return
    con = terminal.console()
    terminal.render_analysis(con, err, analysis, verbose)
    con.print(Text(f"Report: {out / 'report.html'} ({len(written)} files in {out}/)"))


@command()
@guard
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

    check_out(out)
    limits.check_generate(accounts, periods)
    limits.check_simulation(simulations, horizon=13, initiatives=8, cells=100)
    started = time.perf_counter()
    err = terminal.console(stderr=True)
    announce_first_compile(err, json)
    with terminal.Stages(err, quiet=json) as stages:
        analysis = pipeline.run_demo(
            out,
            accounts=accounts,
            periods=periods,
            seed=seed,
            simulations=simulations,
            generated=now(),
            verbose=verbose,
            on_step=stages.start,
            progress=stages.advance,
        )
    seconds = time.perf_counter() - started
    if json:
        emit_json(
            {
                "out": str(out),
                "files": [p.name for p in analysis.files],
                "validation": report.validation_payload(analysis.validation),
                "prioritise": analysis.plan.to_dict(),
                "warnings": analysis.fit.warnings,
            }
        )
        return
    con = terminal.console()
    terminal.render_analysis(con, err, analysis, verbose)
    terminal.render_warnings(err, analysis.fit.warnings)
    con.print(
        Text(
            f"Done in {seconds:.0f} s. Report: {out / 'report.html'}; world, fit bundle, CSV, "
            f"JSON and PNG in {out}/"
        )
    )
