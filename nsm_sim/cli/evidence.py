"""Commands on the evidence: generate a world, check files, build a panel, fit, validate."""

from __future__ import annotations

import functools
import os
import time
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from nsm_sim import limits
from nsm_sim.alongside import SecondProcess
from nsm_sim.cli.app import (
    Engine,
    Json,
    OutDir,
    PanelFile,
    Sampler,
    Seed,
    TreeFile,
    Verbose,
    announce_first_compile,
    check_choice,
    check_out,
    command,
    emit_json,
    enforce,
    guard,
)
from nsm_sim.defaults import VALIDATION_CHAINS, VALIDATION_DRAWS, VALIDATION_TUNE
from nsm_sim.errors import InputError
from nsm_sim.events import command as events_command
from nsm_sim.files import write_files
from nsm_sim.output import report, tables, terminal

# --------------------------------------------------------------------------- generate, check


@command()
@guard
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the world into.")],
    accounts: Annotated[int, typer.Option(min=50, help="Accounts in the world.")] = 5000,
    periods: Annotated[int, typer.Option(min=8, help="Weekly periods.")] = 52,
    seed: Seed = 0,
    file_format: Annotated[
        str, typer.Option("--format", help="Panel file format: csv or parquet.")
    ] = "csv",
    events: Annotated[
        bool,
        typer.Option(
            "--events",
            help="Also write the world as an event log (events.parquet, accounts.parquet) "
            "with a tree.yaml that builds the panel from it.",
        ),
    ] = False,
    residual_rho: Annotated[
        float,
        typer.Option(
            "--residual-rho",
            min=-0.99,
            max=0.99,
            help="AR(1) correlation within account of the parents' residuals (0: independent).",
        ),
    ] = 0.0,
    churn: Annotated[
        str,
        typer.Option(
            "--churn",
            help="Churn definition: hazard (an event ends the account) or inactivity "
            "(the last active period before --inactive-periods idle ones).",
        ),
    ] = "hazard",
    inactive_periods: Annotated[
        int, typer.Option("--inactive-periods", min=1, help="Idle periods that define churn.")
    ] = 4,
    static_trait: Annotated[
        bool,
        typer.Option(
            "--static-trait",
            help="Add the candidate signup_team_size, constant within each account.",
        ),
    ] = False,
    binary_north_star: Annotated[
        bool,
        typer.Option("--binary-north-star", help="A 0/1 North Star: active or not this period."),
    ] = False,
    json: Json = False,
) -> None:
    """Generate the built-in synthetic world: panel, tree.yaml and truth.json."""
    from nsm_sim import synth

    check_choice("--format", file_format, ("csv", "parquet"))
    check_choice("--churn", churn, synth.CHURN_DEFINITIONS)
    check_out(out)
    limits.check_generate(accounts, periods, events=events)
    options = {
        "residual_rho": residual_rho,
        "churn": churn,
        "inactive_periods": inactive_periods,
        "static_trait": static_trait,
        "binary_north_star": binary_north_star,
    }
    if churn == "inactivity" and inactive_periods >= periods:
        raise InputError("--inactive-periods", [f"must be below --periods ({periods})"])
    if events:
        if residual_rho or churn != "hazard" or static_trait or binary_north_star:
            raise InputError("--events", ["writes the default world only (no world options)"])
        paths = list(
            events_command.write_events(out, accounts, periods, seed, file_format).values()
        )
        if json:
            emit_json({"out": str(out), "files": [str(p) for p in paths]})
            return
        terminal.console().print(
            Text(
                f"Wrote the synthetic world of {accounts:,} accounts x {periods} weeks as events "
                f"to {out}/: " + ", ".join(Path(p).name for p in paths)
            )
        )
        return
    world = synth.generate_world(accounts=accounts, periods=periods, seed=seed, **options)
    paths = list(synth.write_world(world, out, fmt=file_format).values())
    rows, churned = len(world.panel), int(world.panel["churned"].sum())
    if json:
        emit_json({"out": str(out), "files": [str(p) for p in paths], "rows": rows})
        return
    terminal.console().print(
        Text(
            f"Wrote {rows:,} account-periods of {accounts:,} accounts x {periods} weeks "
            f"({churned:,} churned) to {out}/: " + ", ".join(Path(p).name for p in paths)
        )
    )


@command()
@guard
def check(
    spec: Annotated[Path, typer.Argument(help="A metric-tree file or a scenario file (YAML).")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Panel (CSV or Parquet) to check against the tree."),
    ] = None,
    json: Json = False,
) -> None:
    """Validate a metric tree (and a panel against it, or its events) or a scenario."""
    from nsm_sim import data as data_mod
    from nsm_sim import spec as spec_mod
    from nsm_sim.events.load import has_definitions, load_definitions
    from nsm_sim.spec.load import read_yaml

    con = terminal.console()
    if "initiatives" in read_yaml(spec):
        if data is not None:
            raise InputError("--data", ["--data goes with a metric-tree file, not a scenario"])
        facts = tables.scenario_facts(spec_mod.load_scenario(spec))
        render = functools.partial(terminal.render_scenario_check, con, facts)
    elif has_definitions(spec) and data is None:
        tree = load_definitions(spec).tree
        facts = {**tables.tree_facts(tree), "events": events_command.check_events(spec)}
        render = functools.partial(terminal.render_events_check, con, facts)
    else:
        tree = load_definitions(spec).tree if has_definitions(spec) else spec_mod.load_tree(spec)
        facts = tables.tree_facts(tree)
        render = functools.partial(terminal.render_tree_check, con, facts)
        if data is not None:
            facts["data"] = data_mod.describe(data_mod.load_panel(data, tree))
            render = functools.partial(terminal.render_panel_check, con, data, tree.name, facts)
    if json:
        emit_json(facts)
        return
    render()
    if "data" in facts:
        terminal.render_warnings(terminal.console(stderr=True), facts["data"]["warnings"])


@command(name="build")
@guard
@functools.wraps(events_command.build)
def build(**options: Any) -> None:
    """Build the panel from a tree file's event log (its help is the events command's)."""
    check_out(options.get("out"), folder=False)
    events_command.build(**options)


# --------------------------------------------------------------------------- fit, validate


class Hinge(StrEnum):
    """The threshold step of the fit's churn model: by evidence, or forced on or off."""

    auto = "auto"
    on = "on"
    off = "off"


@command()
@guard
def fit(
    tree: TreeFile,
    out: Annotated[Path, typer.Option("--out", help="Folder for the fit bundle.")],
    data: PanelFile = None,
    seed: Seed = 0,
    sampler: Sampler = "nutpie",
    draws: Annotated[int, typer.Option(min=50, help="Posterior draws per chain.")] = 500,
    tune: Annotated[int, typer.Option(min=50, help="Tuning steps per chain.")] = 500,
    chains: Annotated[int, typer.Option(min=1, help="Chains.")] = 4,
    pooled: Annotated[
        bool, typer.Option("--pooled", help="Elasticities across accounts (biased by size).")
    ] = False,
    hinge: Annotated[
        Hinge,
        typer.Option(
            "--hinge",
            help="Threshold ('aha') step in the churn model: auto turns it on only where it "
            "improves the expected elpd and the North Star has enough distinct levels (the "
            "reason is said and kept in the card); on or off decide.",
        ),
    ] = Hinge.auto,
    no_hinge: Annotated[
        bool, typer.Option("--no-hinge", hidden=True, help="The same as --hinge off.")
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Reduce the panel inside a query engine, duckdb or spark (the extra), and bring "
            "back only its statistics (kilobytes), from the tree's events or the --data file; "
            "default: read the rows into memory.",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 3 when a diagnostic fails.")
    ] = False,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Fit the driver and retention models and write a fit bundle."""
    from nsm_sim.models import inference

    check_choice("--sampler", sampler, ("nutpie", "pymc"))
    check_out(out)
    limits.check_fit(draws, tune, chains)
    err = terminal.console(stderr=True)
    with terminal.Stages(err, quiet=json) as stages:
        step = Hinge.off.value if no_hinge else hinge.value
        settings = dict(hinge=step, sampler=sampler, draws=draws, tune=tune, chains=chains)
        if engine is None:
            stages.start(f"reading the panel {data or tree}")
            panel = events_command.panel_for(tree, data)
            limits.check_fit(draws, tune, chains, rows=len(panel.frame))
            announce_first_compile(err, json)
            stages.start(f"fitting the driver and retention models ({sampler} NUTS)")
            result = inference.fit(panel, within=not pooled, seed=seed, **settings)
        else:
            stages.start(f"reducing the panel of {data or tree} in {engine}")
            started = time.perf_counter()
            reduction = events_command.reduction_for(tree, data, engine=engine, within=not pooled)
            reduce_seconds = time.perf_counter() - started
            limits.check_fit(draws, tune, chains, rows=int(reduction.summary["rows"]))
            announce_first_compile(err, json)
            stages.start(f"fitting the driver and retention models ({sampler} NUTS)")
            result = inference.fit_reduction(
                reduction, seed=seed, reduce_seconds=reduce_seconds, **settings
            )
        stages.start(f"writing the fit bundle to {out}")
        inference.save_bundle(result, out)
        summaries = inference.summarise(result)
    if json:
        emit_json(
            {
                "drivers": summaries["drivers"],
                "retention": summaries["retention"],
                "hinge": result.card["hinge_choice"],
                "diagnostics": result.card["diagnostics"],
                "checks": result.diagnostics,
                "bundle": str(out),
                "warnings": result.warnings,
            }
        )
    else:
        terminal.render_fit(terminal.console(), err, result, summaries, out)
        terminal.render_warnings(err, result.warnings)
    enforce(result.diagnostics, strict)


@command()
@guard
def validate(
    tree: TreeFile,
    data: PanelFile = None,
    seed: Seed = 0,
    sampler: Sampler = "nutpie",
    draws: Annotated[
        int, typer.Option(min=50, help="Posterior draws per chain of each churn fit.")
    ] = VALIDATION_DRAWS,
    tune: Annotated[
        int, typer.Option(min=50, help="Tuning steps per chain of each churn fit.")
    ] = VALIDATION_TUNE,
    chains: Annotated[int, typer.Option(min=1, help="Chains of each churn fit.")] = (
        VALIDATION_CHAINS
    ),
    out: OutDir = None,
    engine: Engine = "duckdb",
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 3 when a fit's trust gate fails.")
    ] = False,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Is the North Star truly leading? Verdicts for it and every candidate, with the evidence."""
    check_choice("--sampler", sampler, ("nutpie", "pymc"))
    limits.check_fit(draws, tune, chains)
    check_out(out)
    err = terminal.console(stderr=True)
    # on two cores the threshold's fits run in a second process, started now so that its
    # imports run beside this one's
    two_cores = (os.cpu_count() or 1) >= 2
    with (
        SecondProcess(["nsm_sim.leading"]) if two_cores else nullcontext() as second,
        terminal.Stages(err, quiet=json) as stages,
    ):
        from nsm_sim import leading

        stages.start(f"reading the panel {data or tree}")
        panel = events_command.panel_for(tree, data, engine)
        if not json:
            terminal.render_warnings(err, panel.warnings)
        announce_first_compile(err, json)
        stages.start("validating: the churn model fitted per metric")
        result = leading.validate(
            panel,
            seed=seed,
            sampler=sampler,
            draws=draws,
            tune=tune,
            chains=chains,
            second_process=second,
        )
    if out is not None:
        write_files(out, report.validation_files(result))
    if json:
        emit_json({**report.validation_payload(result), "warnings": list(panel.warnings)})
    else:
        terminal.render_validation(terminal.console(), result, verbose)
    enforce(result.checks, strict)
