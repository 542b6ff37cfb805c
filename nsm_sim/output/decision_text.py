"""The decisions on the terminal: a simulation, the prioritisation and a comparison.

Every ``render_*`` function prints a result the pipeline has computed; none computes one.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from nsm_sim.output import tables
from nsm_sim.output.format import fmt
from nsm_sim.output.layout import print_table

# --------------------------------------------------------------------------- simulation


def render_simulation(con: Console, result: Any) -> None:
    """Print the per-initiative outcomes of a simulation."""
    scenario = result.scenario
    print_table(
        con,
        tables.simulation_table(result),
        f"{scenario.name}: {result.simulations:,} simulations, horizon {scenario.horizon} "
        "periods (changes against no initiative)",
    )
    row = tables.simulation_summary(result).iloc[-1]
    effort, capacity = float(row["effort"]), float(scenario.capacity)
    currency = tables.currency_of(result)
    money = f" {currency}" if currency and result.has_value else ""
    fits = "within" if effort <= capacity else "over"
    con.print(
        Text.assemble(
            (f"All {len(result.names)} initiatives together", "bold"),
            f" (effort {effort:g}, {fits} the capacity of {capacity:g}; not a chosen "
            f"portfolio): {scenario.tree.north_star} "
            f"{fmt(row['north_star_change_pct_mean'])} % (90% interval "
            f"{fmt(row['north_star_change_pct_p5'])} to {fmt(row['north_star_change_pct_p95'])}), "
            f"retained accounts {fmt(row['retained_accounts_mean'])}, value "
            f"{fmt(row['value_mean'])}{money}",
        )
    )
    if not result.has_value:
        con.print(Text("No value column: value is retained accounts.", style="dim"))


def render_prioritisation(con: Console, result: Any, plan: Any) -> None:
    """Print the simulation, the ranking, the chosen portfolio and the value of information."""
    render_simulation(con, result)
    currency = tables.currency_of(result)
    ranking = tables.ranking_view(plan, currency)
    print_table(con, ranking, f"Ranking by {plan.quantity} per effort", keys=2)
    portfolio = plan.portfolio
    con.print(
        Text.assemble(
            ("Best portfolio", "bold"),
            f" (effort {portfolio.effort:g} of {portfolio.capacity:g}): "
            + ", ".join(portfolio.selected),
        )
    )
    joint = portfolio.joint or {}
    unit = f" ({currency})" if currency and plan.quantity == "value" else ""
    con.print(
        Text(
            f"  expected {plan.quantity}{unit} {fmt(portfolio.expected_value)} (sum of each "
            "alone); "
            f"together {fmt(joint.get('mean'))} (90% interval {fmt(joint.get('p5'))} to "
            f"{fmt(joint.get('p95'))}), P(>0) {fmt(joint.get('p_positive'))}"
        )
    )
    print_table(con, plan.evpi, "Value of perfect information: test the top one first")
    if plan.note:
        con.print(Text(str(plan.note), style="dim"))


def render_comparison(con: Console, comparison: Any) -> None:
    """Print two scenarios' portfolios side by side with P(A beats B)."""
    a, b = comparison.names
    basis = (
        "the portfolio each funds under its capacity"
        if comparison.funded
        else "each scenario's initiatives together"
    )
    print_table(con, tables.comparison_view(comparison), f"A = {a}  vs  B = {b} ({basis})")
    sides = zip("AB", comparison.selected, comparison.effort, comparison.capacity, strict=True)
    for side, names, effort, capacity in sides:
        over = "  (over capacity)" if effort > capacity else ""
        what = "funds" if comparison.funded else "proposes"
        con.print(
            Text(
                f"{side} {what} effort {effort:g} of capacity {capacity:g}{over}: "
                f"{', '.join(names) or 'nothing'}"
            )
        )
