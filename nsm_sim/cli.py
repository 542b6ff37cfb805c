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
from nsm_sim.output import report

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

Seed = Annotated[int, typer.Option(help="Random seed; the same seed gives the same numbers.")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
OutDir = Annotated[
    Path | None, typer.Option("--out", help="Folder for CSV, JSON, PNG and HTML outputs.")
]


def _guard(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain errors into exit codes at the boundary, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        err = report.console(stderr=True)
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            err.print(f"[bold red]error:[/] {exc.message}", markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except DiagnosticsError as exc:
            err.print(f"[bold red]diagnostics failed:[/] {exc}", soft_wrap=True)
            raise typer.Exit(3) from None

    return wrapper


def _emit_json(payload: Any) -> None:
    sys.stdout.write(report.dumps(payload) + "\n")


# --------------------------------------------------------------------------- generate


@app.command()
@_guard
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the world into.")],
    accounts: Annotated[int, typer.Option(min=50, help="Accounts in the world.")] = 5000,
    periods: Annotated[int, typer.Option(min=8, help="Weekly periods.")] = 52,
    seed: Seed = 0,
    fmt: Annotated[
        str, typer.Option("--format", help="Panel file format: csv or parquet.")
    ] = "csv",
    json: Json = False,
) -> None:
    """Generate the built-in synthetic world: panel, tree.yaml and truth.json."""
    from nsm_sim import synth

    if fmt not in {"csv", "parquet"}:
        raise InputError("--format", [f"expected csv or parquet, got {fmt!r}"])
    world = synth.generate_world(accounts=accounts, periods=periods, seed=seed)
    paths = list(synth.write_world(world, out, fmt=fmt).values())
    rows, churned = len(world.panel), int(world.panel["churned"].sum())
    if json:
        _emit_json({"out": str(out), "files": [str(p) for p in paths], "rows": rows})
        return
    report.console().print(
        f"Wrote {rows:,} account-periods of {accounts:,} accounts x {periods} weeks "
        f"({churned:,} churned) to {out}/: " + ", ".join(Path(p).name for p in paths)
    )


# --------------------------------------------------------------------------- check


@app.command()
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
    import yaml

    from nsm_sim import data as data_mod
    from nsm_sim import spec as spec_mod

    try:
        is_scenario = "initiatives" in (yaml.safe_load(spec.read_text()) or {})
    except (OSError, yaml.YAMLError, TypeError, AttributeError):
        is_scenario = False
    out = report.console()
    if is_scenario:
        if data is not None:
            raise InputError("--data", ["--data goes with a metric-tree file, not a scenario"])
        scenario = spec_mod.load_scenario(spec)
        summary = {
            "scenario": scenario.name,
            "tree": scenario.tree.name,
            "initiatives": len(scenario.initiatives),
            "total_effort": sum(i.effort for i in scenario.initiatives),
            "capacity": scenario.capacity,
            "horizon": scenario.horizon,
        }
        if json:
            _emit_json(summary)
            return
        out.print(
            f"[green]OK[/] scenario {scenario.name!r} on tree {scenario.tree.name!r}: "
            f"{summary['initiatives']} initiatives, total effort {summary['total_effort']:g} "
            f"for capacity {scenario.capacity:g}, horizon {scenario.horizon} periods"
        )
        return
    tree = spec_mod.load_tree(spec)
    summary: dict[str, Any] = {
        "tree": tree.name,
        "north_star": tree.north_star,
        "nodes": list(tree.nodes),
        "candidates": list(tree.candidates),
    }
    if data is None:
        if json:
            _emit_json(summary)
            return
        out.print(
            f"[green]OK[/] tree {tree.name!r}: North Star {tree.north_star!r}, "
            f"{len(tree.nodes) - 1} inputs, candidates: {', '.join(tree.candidates) or 'none'}"
        )
        return
    panel = data_mod.load_panel(data, tree)
    summary["data"] = data_mod.describe(panel)
    if json:
        _emit_json(summary)
        return
    d = summary["data"]
    out.print(f"[green]OK[/] {data} against tree {tree.name!r}")
    out.print(report.table(_describe_frame(d), "Panel"))
    if "metrics" in d:
        out.print(report.table(_metric_frame(d["metrics"]), "Metric ranges"))


def _describe_frame(d: dict[str, Any]):
    import pandas as pd

    rows = [(k, v) for k, v in d.items() if not isinstance(v, dict | list)]
    for k, v in d.items():
        if isinstance(v, dict) and k != "metrics":
            rows += [(f"{k}: {kk}", vv) for kk, vv in v.items()]
    return pd.DataFrame(rows, columns=["what", "value"]).astype({"value": "object"})


def _metric_frame(metrics: dict[str, Any]):
    import pandas as pd

    return pd.DataFrame([{"metric": m, **v} for m, v in metrics.items()])


# --------------------------------------------------------------------------- shared options

FitDir = Annotated[Path, typer.Option("--fit", help="Fit bundle folder written by `nsm-sim fit`.")]
Draws = Annotated[int, typer.Option(min=100, help="Monte Carlo draws.")]
Sampler = Annotated[str, typer.Option(help="NUTS back-end: nutpie (default, faster) or pymc.")]


def _check_sampler(sampler: str) -> None:
    if sampler not in {"nutpie", "pymc"}:
        raise InputError("--sampler", [f"expected nutpie or pymc, got {sampler!r}"])


def _progress(label: str, quiet: bool):
    """Return a rich progress bar on stderr and a ``callback(done, total)`` that advances it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=report.console(stderr=True),
        transient=True,
        disable=quiet,
    )
    task = bar.add_task(label, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, advance


def _load_scenario_and_fit(scenario_path: Path, fit_dir: Path):
    from nsm_sim import simulate
    from nsm_sim.models import inference
    from nsm_sim.spec import load_scenario

    scenario = load_scenario(scenario_path)
    fit = inference.load_bundle(fit_dir, tree=scenario.tree)
    return scenario, fit, simulate.posterior_draws(fit.idata, scenario.tree)


def _simulate(scenario_path: Path, fit_dir: Path, draws: int, seed: int, quiet: bool):
    from nsm_sim import simulate

    scenario, fit, posterior = _load_scenario_and_fit(scenario_path, fit_dir)
    bar, advance = _progress("simulating", quiet)
    with bar:
        result = simulate.simulate(
            scenario, posterior, fit.population, draws=draws, seed=seed, progress=advance
        )
    return scenario, fit, result


# --------------------------------------------------------------------------- fit


@app.command()
@_guard
def fit(
    tree: Annotated[Path, typer.Argument(help="Metric-tree file (models/NAME.yaml).")],
    data: Annotated[Path, typer.Option("--data", help="Panel, CSV or Parquet.")],
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
) -> None:
    """Fit the driver and retention models and write a fit bundle."""
    from nsm_sim import data as data_mod
    from nsm_sim.models import inference
    from nsm_sim.spec import load_tree

    _check_sampler(sampler)
    panel = data_mod.load_panel(data, load_tree(tree))
    result = inference.fit(
        panel,
        within=not pooled,
        hinge=hinge,
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progress=not json,
    )
    inference.save_bundle(result, out)
    tables = inference.summarise(result)
    payload = {
        "drivers": tables["drivers"],
        "retention": tables["retention"],
        "diagnostics": result.card["diagnostics"],
        "checks": result.diagnostics,
        "bundle": str(out),
    }
    if json:
        _emit_json(payload)
    else:
        _render_fit(result, tables, out)
    _enforce(result.diagnostics, strict)


def _render_fit(result, tables, out: Path) -> None:
    con = report.console()
    con.print(f"[bold]{result.card.get('estimation', '')}[/]")
    con.print(
        report.table(report.drivers_view(tables["drivers"]), "Elasticities (mean, 90% interval)")
    )
    con.print(report.table(tables["retention"], "Churn model (mean, 90% interval)"))
    _render_checks(result.diagnostics)
    con.print(f"Fit bundle written to {out}/")


def _render_checks(checks) -> None:
    con = report.console()
    con.print(report.table(checks, "Trust gates", columns=["check", "status", "detail"]))
    bad = checks[checks["status"] != "PASS"]
    err = report.console(stderr=True)
    for _, row in bad.iterrows():
        err.print(f"[yellow]warning:[/] {row['check']}: {row['status']} — {row.get('detail', '')}")


def _enforce(checks, strict: bool) -> None:
    failed = checks[checks["status"] == "FAIL"]
    if strict and len(failed):
        raise DiagnosticsError(", ".join(failed["check"].astype(str)))


# --------------------------------------------------------------------------- validate


@app.command()
@_guard
def validate(
    tree: Annotated[Path, typer.Argument(help="Metric-tree file (models/NAME.yaml).")],
    data: Annotated[Path, typer.Option("--data", help="Panel, CSV or Parquet.")],
    seed: Seed = 0,
    sampler: Sampler = "nutpie",
    out: OutDir = None,
    json: Json = False,
) -> None:
    """Is the North Star truly leading? Verdicts for it and every candidate, with the evidence."""
    from nsm_sim import data as data_mod
    from nsm_sim import leading
    from nsm_sim.spec import load_tree

    _check_sampler(sampler)
    panel = data_mod.load_panel(data, load_tree(tree))
    with report.console(stderr=True).status("validating (fits the churn model per metric)"):
        result = leading.validate(panel, seed=seed, sampler=sampler)
    if out is not None:
        report.write_outputs(out, report.validation_files(result))
    if json:
        _emit_json(result.to_dict())
        return
    report.render_validation(report.console(), result)


# --------------------------------------------------------------------------- simulate


@app.command()
@_guard
def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (scenarios/NAME.yaml).")],
    fit_dir: FitDir,
    draws: Draws = 4000,
    seed: Seed = 0,
    out: OutDir = None,
    json: Json = False,
) -> None:
    """Project each initiative and the portfolio to the North Star, retention and value."""
    _, _, result = _simulate(scenario, fit_dir, draws, seed, json)
    if out is not None:
        report.write_outputs(out, report.simulation_files(result))
    if json:
        _emit_json(result.to_dict())
        return
    report.render_simulation(report.console(), result)


@app.command()
@_guard
def prioritise(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (scenarios/NAME.yaml).")],
    fit_dir: FitDir,
    draws: Draws = 4000,
    seed: Seed = 0,
    objective: Annotated[
        str, typer.Option(help="value, north_star or retained_accounts.")
    ] = "value",
    risk_aversion: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Weight on the worst 10% of draws (CVaR), 0..1."),
    ] = 0.0,
    out: OutDir = None,
    json: Json = False,
) -> None:
    """Rank initiatives, choose the best portfolio for the capacity, value information."""
    from nsm_sim import prioritise as prio

    if objective not in {"value", "north_star", "retained_accounts"}:
        raise InputError(
            "--objective", [f"expected value, north_star or retained_accounts, got {objective!r}"]
        )
    _, _, result = _simulate(scenario, fit_dir, draws, seed, json)
    plan = prio.prioritise(result, objective=objective, risk_aversion=risk_aversion)
    if out is not None:
        report.write_outputs(out, report.prioritisation_files(result, plan))
    if json:
        _emit_json(plan.to_dict())
        return
    report.render_prioritisation(report.console(), result, plan)


@app.command()
@_guard
def compare(
    scenario_a: Annotated[Path, typer.Argument(help="Scenario A.")],
    scenario_b: Annotated[Path, typer.Argument(help="Scenario B.")],
    fit_dir: FitDir,
    draws: Draws = 4000,
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
) -> None:
    """Compare two scenarios' portfolios on common draws: side by side and P(A beats B)."""
    from nsm_sim import prioritise as prio

    _, _, result_a = _simulate(scenario_a, fit_dir, draws, seed, json)
    _, _, result_b = _simulate(scenario_b, fit_dir, draws, seed, json)
    comparison = prio.compare(result_a, result_b, funded=funded)
    if out is not None:
        report.write_outputs(out, {"comparison.csv": comparison.table})
    if json:
        _emit_json(comparison.to_dict())
        return
    report.render_comparison(report.console(), comparison)


# --------------------------------------------------------------------------- report, demo


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _render_analysis(analysis) -> None:
    con = report.console()
    if analysis.validation is not None:
        report.render_validation(con, analysis.validation)
    from nsm_sim.models import inference

    tables = inference.summarise(analysis.fit)
    drivers = report.drivers_view(tables["drivers"], population=True)
    con.print(report.table(drivers, "What drives the North Star"))
    _render_checks(analysis.fit.diagnostics)
    if analysis.plan is not None:
        report.render_prioritisation(con, analysis.simulation, analysis.plan)


@app.command(name="report")
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
    draws: Draws = 4000,
    seed: Seed = 0,
    json: Json = False,
) -> None:
    """Write the HTML report (with CSV, JSON and PNG) for a fit bundle on your own data."""
    from nsm_sim import data as data_mod
    from nsm_sim import pipeline
    from nsm_sim.models import inference
    from nsm_sim.spec import load_scenario

    fitted = inference.load_bundle(fit_dir)
    spec = load_scenario(scenario) if scenario is not None else None
    if spec is not None:
        fitted = inference.load_bundle(fit_dir, tree=spec.tree)
    panel = data_mod.load_panel(data, fitted.tree) if data is not None else None
    err = report.console(stderr=True)
    bar, advance = _progress("simulating", json)
    with err.status("working") as status, bar:
        analysis = pipeline.analyse(
            fitted,
            panel=panel,
            scenario=spec,
            draws=draws,
            seed=seed,
            on_step=lambda m: status.update(m),
            progress=advance,
        )
    written = report.write_outputs(out, report.report_files(analysis, generated=_now()))
    if json:
        _emit_json({"out": str(out), "files": [p.name for p in written]})
        return
    _render_analysis(analysis)
    report.console().print(f"Report: {out / 'report.html'} ({len(written)} files in {out}/)")


@app.command()
@_guard
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("nsm-demo"),
    accounts: Annotated[int, typer.Option(min=200, help="Accounts in the world.")] = 5000,
    periods: Annotated[int, typer.Option(min=20, help="Weekly periods.")] = 52,
    draws: Draws = 4000,
    seed: Seed = 0,
    json: Json = False,
) -> None:
    """Run everything on the built-in synthetic world, then write the report."""
    import time

    from nsm_sim import pipeline

    started = time.perf_counter()
    err = report.console(stderr=True)
    steps: list[tuple[str, float]] = []

    with err.status("starting") as status:

        def on_step(message: str) -> None:
            if not json:
                err.log(message)
                status.update(message)
            steps.append((message, time.perf_counter() - started))

        analysis = pipeline.run_demo(
            out, accounts=accounts, periods=periods, seed=seed, draws=draws, on_step=on_step
        )
    written = report.write_outputs(out, report.report_files(analysis, generated=_now()))
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
    _render_analysis(analysis)
    report.console().print(
        f"Done in {seconds:.0f} s. Report: {out / 'report.html'}; world, fit bundle, CSV, "
        f"JSON and PNG in {out}/"
    )


def main() -> None:  # pragma: no cover - console entry point
    """Run the ``nsm-sim`` application."""
    app()
