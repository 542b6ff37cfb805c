"""The forecast in the terminal: a short table on calendar dates, and P(target)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from rich.console import Console
from rich.text import Text

from nsm_sim.output.format import fmt
from nsm_sim.output.layout import print_table

#: Most rows of the forecast table (longer forecasts show every k-th period and the target's).
MAX_ROWS = 14


def forecast_rows(forecast: Any) -> pd.DataFrame:
    """Lay out the forecast's summary: one row per projected period, baseline and portfolio.

    Parameters
    ----------
    forecast : nsm_sim.forecast.Forecast

    Returns
    -------
    pandas.DataFrame
        ``period`` (``YYYY-MM-DD``), then per series its mean and 90 % interval
        (``baseline mean``, ``baseline p5``, ``baseline p95``, ``portfolio mean``...).
    """
    summary = forecast.summary((0.05, 0.95))
    out = None
    for series, part in summary.groupby("series", sort=False):
        frame = pd.DataFrame(
            {
                "period": [f"{d:%Y-%m-%d}" for d in part["period"]],
                f"{series} mean": part["mean"].to_numpy(),
                f"{series} p5": part["p5"].to_numpy(),
                f"{series} p95": part["p95"].to_numpy(),
            }
        )
        out = frame if out is None else out.merge(frame, on="period")
    return pd.DataFrame() if out is None else out


def needed_text(item: Mapping[str, Any]) -> str:
    """Return what one lever needs, in words (``+8.0%``, ``+120 a period``, ``out of reach``).

    Parameters
    ----------
    item : mapping
        One entry of the target report's ``needed``: ``kind`` (``lift`` or arrivals) and
        ``value`` (None when out of reach).

    Returns
    -------
    str
    """
    value = item["value"]
    if value is None:
        return "out of reach"
    if item["kind"] == "lift":
        return f"+{100 * value:.1f}%"
    return f"+{value:,.0f} a period"


def render_forecast(con: Console, forecast: Any, target: Mapping[str, Any] | None = None) -> None:
    """Print the forecast table and, with a target, P(reaching it) and what it would take.

    Parameters
    ----------
    con : rich.console.Console
    forecast : nsm_sim.forecast.Forecast
    target : mapping, optional
        :func:`nsm_sim.forecast.target_report` (or the forecast's own ``target`` block).
    """
    from nsm_sim.spec import aggregate_label

    rows = forecast_rows(forecast)
    keep = list(range(len(rows)))
    if len(rows) > MAX_ROWS:
        step = -(-len(rows) // (MAX_ROWS - 1))
        keep = sorted(
            {
                *range(0, len(rows), step),
                len(rows) - 1,
                *([forecast.target_index] if forecast.target_index is not None else []),
            }
        )
    tree = forecast.scenario.tree
    print_table(
        con,
        rows.iloc[keep],
        f"Forecast of {tree.north_star} ({aggregate_label(forecast.aggregate)}) with new "
        f"accounts, per {tree.period} from {rows['period'].iloc[0]}: mean and 90% interval",
    )
    if target is None:
        return
    render_target_line(con, target)
    alone = target.get("initiatives") or []
    if alone:
        each = ", ".join(f"{item['name']} {100 * item['p']:.0f}%" for item in alone)
        con.print(Text(f"P(reaching it) with each initiative alone: {each}."))
    needed = target.get("needed") or []
    if needed:
        parts = []
        for prob in dict.fromkeys(item["probability"] for item in needed):
            items = [i for i in needed if i["probability"] == prob]
            levers = ", ".join(f"{i['lever']} {needed_text(i)}" for i in items)
            parts.append(f"for {100 * prob:.0f}%: {levers}")
        beyond = needed[0]["beyond"]
        con.print(
            Text(
                f"What it would take (one lever at a time, beyond the {beyond}): "
                + "; ".join(parts)
            )
        )


def render_target_line(
    con: Console, target: Mapping[str, Any], portfolio: str = "the portfolio"
) -> None:
    """Print P(reaching the target) without and with the portfolio, and the expected gap.

    Parameters
    ----------
    con : rich.console.Console
    target : mapping
        The forecast's ``target`` block.
    portfolio : str
        What the forecast's portfolio is, in words.
    """
    con.print(
        Text.assemble(
            (f"Target {fmt(target['value'])} by {target['by']}", "bold"),
            f": P(reaching it) {100 * target['p_baseline']:.0f}% without the initiatives, "
            f"{100 * target['p_portfolio']:.0f}% with {portfolio}; expected gap "
            f"{fmt(target['gap_baseline']['mean'])} without, "
            f"{fmt(target['gap_portfolio']['mean'])} with.",
        )
    )


def render_target_portfolio(con: Console, scenario: Any, chosen: Mapping[str, Any]) -> None:
    """Print the portfolio that maximises P(target) (from ``best_target_portfolio``).

    Parameters
    ----------
    con : rich.console.Console
    scenario : Scenario
    chosen : mapping
        ``selected``, ``effort``, ``capacity``, ``p_target``, ``p_baseline``, ``gap``.
    """
    goal = scenario.goal
    names = ", ".join(chosen["selected"]) or "no initiative"
    con.print(
        Text.assemble(
            (f"For the target {fmt(goal.value)} by {goal.by:%Y-%m-%d}", "bold"),
            f": the portfolio that maximises P(reaching it) under the capacity is {names} "
            f"(effort {chosen['effort']:g} of {chosen['capacity']:g}): P "
            f"{100 * chosen['p_target']:.0f}% against {100 * chosen['p_baseline']:.0f}% "
            f"without initiatives; expected gap {fmt(chosen['gap']['mean'])}.",
        )
    )
