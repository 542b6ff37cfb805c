"""The terminal: rich tables on stdout, messages and progress on stderr.

Every ``render_*`` function prints a result the pipeline has computed; none computes one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from nsm_sim.output import tables
from nsm_sim.output.format import fmt


def console(stderr: bool = False) -> Console:
    """Return a console for tables (stdout) or for messages and progress (stderr).

    Parameters
    ----------
    stderr : bool, default False
        Print on standard error.

    Returns
    -------
    rich.console.Console
    """
    return Console(stderr=stderr, highlight=False)


def table(
    frame: pd.DataFrame, title: str | None = None, *, columns: list[str] | None = None
) -> Table:
    """Render a DataFrame as a rich table (numbers right-aligned and formatted).

    Parameters
    ----------
    frame : pandas.DataFrame
    title : str, optional
        Shown above the table, left-aligned.
    columns : list of str, optional
        The columns to show, in order; all of them by default.

    Returns
    -------
    rich.table.Table
    """
    shown = columns or list(frame.columns)
    tab = Table(title=Text(title) if title else None, title_justify="left", header_style="bold")
    for column in shown:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        tab.add_column(str(column), justify="right" if numeric else "left")
    for _, row in frame[shown].iterrows():
        tab.add_row(*(Text(fmt(row[c])) for c in shown))
    return tab


def progress(label: str, quiet: bool) -> tuple[Progress, Callable[[int, int], None]]:
    """Return a progress bar on stderr and a ``callback(done, total)`` that advances it.

    Parameters
    ----------
    label : str
        What is in progress.
    quiet : bool
        Show nothing.

    Returns
    -------
    (rich.progress.Progress, callable)
        Use the bar as a context manager around the work that calls the callback.
    """
    bar = Progress(
        TextColumn(f"[bold]{escape(label)}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
        disable=quiet,
    )
    task = bar.add_task(label, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, advance


# --------------------------------------------------------------------------- check


def render_scenario_check(con: Console, facts: Mapping[str, Any]) -> None:
    """Print that a scenario file is valid, with its size and capacity."""
    con.print(
        f"[green]OK[/] scenario {escape(repr(facts['scenario']))} on tree "
        f"{escape(repr(facts['tree']))}: {facts['initiatives']} initiatives, total effort "
        f"{facts['total_effort']:g} for capacity {facts['capacity']:g}, horizon "
        f"{facts['horizon']} periods"
    )


def render_tree_check(con: Console, facts: Mapping[str, Any]) -> None:
    """Print that a metric tree is valid: its North Star, inputs and candidates."""
    candidates = ", ".join(facts["candidates"]) or "none"
    con.print(
        f"[green]OK[/] tree {escape(repr(facts['tree']))}: North Star "
        f"{escape(repr(facts['north_star']))}, {len(facts['nodes']) - 1} inputs, "
        f"candidates: {escape(candidates)}"
    )


def render_panel_check(con: Console, source: Path, tree: str, description: Mapping) -> None:
    """Print that a panel meets its tree's contract, and what it holds."""
    con.print(f"[green]OK[/] {escape(str(source))} against tree {escape(repr(tree))}")
    con.print(table(tables.panel_facts(description), "Panel"))
    if "metrics" in description:
        con.print(table(tables.metric_ranges(description["metrics"]), "Metric ranges"))


# --------------------------------------------------------------------------- fit


def render_checks(con: Console, err: Console, checks: pd.DataFrame) -> None:
    """Print the trust gates, and a warning on ``err`` for each that did not pass."""
    con.print(table(checks, "Trust gates", columns=["check", "status", "detail"]))
    for _, row in checks[checks["status"] != "PASS"].iterrows():
        err.print(
            f"[yellow]warning:[/] {escape(str(row['check']))}: {row['status']} — "
            f"{escape(str(row.get('detail', '')))}"
        )


def render_fit(
    con: Console, err: Console, fit: Any, summaries: Mapping[str, pd.DataFrame], out: Path
) -> None:
    """Print a fit: how it was estimated, elasticities, churn model, trust gates, bundle."""
    con.print(f"[bold]{escape(str(fit.card.get('estimation', '')))}[/]")
    con.print(table(tables.drivers_view(summaries["drivers"]), "Elasticities (mean, 90% interval)"))
    con.print(table(summaries["retention"], "Churn model (mean, 90% interval)"))
    render_checks(con, err, fit.diagnostics)
    con.print(f"Fit bundle written to {escape(str(out))}/")


# --------------------------------------------------------------------------- validation


def render_validation(con: Console, validation: Any) -> None:
    """Print the verdicts, the reasons, the threshold and the lag convention."""
    con.print(table(tables.validation_table(validation), "Is the North Star leading?"))
    for _, row in validation.metrics.iterrows():
        con.print(f"  [bold]{escape(row['metric'])}[/]: {row['verdict']} — {escape(row['why'])}")
    sentence = (validation.threshold or {}).get("sentence")
    if sentence:
        con.print(f"Threshold: {escape(sentence)}")
    con.print(f"[dim]Timing: {escape(validation.settings.get('lag_convention', ''))}[/]")


# --------------------------------------------------------------------------- simulation


def render_simulation(con: Console, result: Any) -> None:
    """Print the per-initiative outcomes of a simulation."""
    scenario = result.scenario
    con.print(
        table(
            tables.simulation_table(result),
            f"{scenario.name}: {result.simulations:,} simulations, horizon {scenario.horizon} "
            "periods (changes against no initiative)",
        )
    )
    if not result.has_value:
        con.print("[dim]No value column: value is retained accounts.[/]")


def render_prioritisation(con: Console, result: Any, plan: Any) -> None:
    """Print the simulation, the ranking, the chosen portfolio and the value of information."""
    render_simulation(con, result)
    con.print(table(tables.ranking_view(plan), f"Ranking by {plan.quantity} per effort"))
    portfolio = plan.portfolio
    con.print(
        f"[bold]Best portfolio[/] (effort {portfolio.effort:g} of {portfolio.capacity:g}): "
        + escape(", ".join(portfolio.selected))
    )
    joint = portfolio.joint or {}
    con.print(
        f"  expected {plan.quantity} {fmt(portfolio.expected_value)} (sum of each alone); "
        f"together {fmt(joint.get('mean'))} (90% interval {fmt(joint.get('p5'))} to "
        f"{fmt(joint.get('p95'))}), P(>0) {fmt(joint.get('p_positive'))}"
    )
    con.print(table(plan.evpi, "Value of perfect information: test the top one first"))
    if plan.note:
        con.print(f"[dim]{escape(plan.note)}[/]")


def render_comparison(con: Console, comparison: Any) -> None:
    """Print two scenarios' portfolios side by side with P(A beats B)."""
    a, b = comparison.names
    basis = (
        "the portfolio each funds under its capacity"
        if comparison.funded
        else "each scenario's initiatives together"
    )
    con.print(table(tables.comparison_view(comparison), f"A = {a}  vs  B = {b} ({basis})"))
    if comparison.funded:
        for side, names in zip("AB", comparison.selected, strict=True):
            con.print(f"{side} funds: {escape(', '.join(names) or 'nothing')}")


# --------------------------------------------------------------------------- analysis


def render_analysis(con: Console, err: Console, analysis: Any) -> None:
    """Print what the report holds: verdicts, drivers, trust gates and the plan."""
    if analysis.validation is not None:
        render_validation(con, analysis.validation)
    drivers = tables.drivers_view(analysis.summaries["drivers"], population=True)
    con.print(table(drivers, "What drives the North Star"))
    render_checks(con, err, analysis.fit.diagnostics)
    if analysis.plan is not None:
        render_prioritisation(con, analysis.simulation, analysis.plan)
