"""The evidence on the terminal: the files' checks, a fit, and the North Star's validation.

Every ``render_*`` function prints a result the pipeline has computed; none computes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.text import Text

from nsm_sim.output import tables
from nsm_sim.output.layout import console, print_table

# --------------------------------------------------------------------------- check


def render_scenario_check(con: Console, facts: Mapping[str, Any]) -> None:
    """Print that a scenario file is valid, with its size and capacity."""
    con.print(
        Text.assemble(
            ("OK", "green"),
            f" scenario {facts['scenario']!r} on tree {facts['tree']!r}: "
            f"{facts['initiatives']} initiatives, total effort {facts['total_effort']:g} for "
            f"capacity {facts['capacity']:g}, horizon {facts['horizon']} periods",
        )
    )


def render_tree_check(con: Console, facts: Mapping[str, Any]) -> None:
    """Print that a metric tree is valid: its North Star, inputs and candidates."""
    candidates = ", ".join(facts["candidates"]) or "none"
    con.print(
        Text.assemble(
            ("OK", "green"),
            f" tree {facts['tree']!r}: North Star {facts['north_star']!r}, "
            f"{len(facts['nodes']) - 1} inputs, candidates: {candidates}",
        )
    )


def render_events_check(con: Console, facts: Mapping[str, Any]) -> None:
    """Print that a tree's metric definitions build a panel from its events, and how."""
    render_tree_check(con, facts)
    built = facts["events"]
    periods = built["periods"]
    con.print(
        Text(
            f"Its events build {built['rows']:,} account-periods of {built['accounts']:,} "
            f"accounts x {periods['count']} {periods['kind']}s ({periods['first']} to "
            f"{periods['last']}); churn by {built['churn_rule']}: {built['churned']:,} "
            f"churned, {built['censored']:,} censored at the end"
        )
    )
    print_table(con, tables.metric_definitions(built["metrics"]), "Metric definitions")


def render_panel_check(con: Console, source: Path, tree: str, facts: Mapping) -> None:
    """Print that a panel meets its tree's contract, and what it holds."""
    description = facts["data"]
    con.print(Text.assemble(("OK", "green"), f" {source} against tree {tree!r}"))
    print_table(con, tables.panel_facts(description), "Panel")
    if "metrics" in description:
        print_table(con, tables.metric_ranges(description["metrics"]), "Metric ranges")


# --------------------------------------------------------------------------- fit


def render_checks(con: Console, err: Console, checks: pd.DataFrame) -> None:
    """Print the trust gates, and a warning on ``err`` for each that did not pass."""
    print_table(con, checks, "Trust gates", columns=["check", "status", "detail"])
    for _, row in checks[checks["status"] != "PASS"].iterrows():
        err.print(
            Text.assemble(
                ("warning:", "yellow"),
                f" {row['check']}: {row['status']} — {row.get('detail', '')}",
            )
        )


def render_fit(
    con: Console, err: Console, fit: Any, summaries: Mapping[str, pd.DataFrame], out: Path
) -> None:
    """Print a fit: how it was estimated, elasticities, churn model, trust gates, bundle."""
    con.print(Text(str(fit.card.get("estimation", "")), style="bold"))
    drivers = tables.drivers_view(summaries["drivers"])
    print_table(con, drivers, "Elasticities (mean, 90% interval)", keys=3)
    print_table(con, summaries["retention"], "Churn model (mean, 90% interval)", keys=2)
    reason = (fit.card.get("hinge_choice") or {}).get("reason")
    if reason:  # older bundles do not say
        con.print(Text(f"{reason[0].upper()}{reason[1:]}."))
    render_checks(con, err, fit.diagnostics)
    con.print(Text(f"Fit bundle written to {out}/"))


# --------------------------------------------------------------------------- validation


def beyond_trained_tenure_line(validation: Any) -> str | None:
    """Return the line saying how many scored rows were older than every training row.

    Parameters
    ----------
    validation : nsm_sim.leading.Validation
        Its ``metrics`` with ``beyond_trained_tenure`` and ``trained_tenure_max`` (from
        :func:`nsm_sim.leading.predictive_power`).

    Returns
    -------
    str or None
        None when no scored row was beyond the trained tenure (or the table does not say).
    """
    m = validation.metrics
    if "beyond_trained_tenure" not in m or not len(m):
        return None
    share = float(m["beyond_trained_tenure"].iloc[0])
    if not share > 0:
        return None
    tenure = int(m["trained_tenure_max"].iloc[0])
    return (
        f"Out-of-time scores: {100 * share:.0f}% of the scored rows were beyond the trained "
        f"tenure ({tenure} periods); their tenure effect is held there, not extrapolated."
    )


def render_validation(
    con: Console, validation: Any, verbose: bool = False, err: Console | None = None
) -> None:
    """Print the verdicts, the reasons, the threshold and the trust gates of the fits.

    One row per fit (R-hat, ESS, divergences and the worst status) and, on ``err`` (standard
    error when omitted), one warning line for the fits that did not pass (with ``verbose``, one
    per check, and the lag convention).
    """
    print_table(con, tables.validation_table(validation), "Is the North Star leading?", keys=2)
    for _, row in validation.metrics.iterrows():
        con.print(
            Text.assemble("  ", (str(row["metric"]), "bold"), f": {row['verdict']} — {row['why']}")
        )
    beyond = beyond_trained_tenure_line(validation)
    if beyond:
        con.print(Text(beyond, style="dim"))
    sentence = (validation.threshold or {}).get("sentence")
    if sentence:
        con.print(Text(f"Threshold: {sentence}"))
    gates = validation.diagnostics() if hasattr(validation, "diagnostics") else None
    if gates is not None:  # a validation read back from its CSV files has no fits to grade
        shown = ["fit", "metric", "status", "max_rhat", "min_ess_bulk", "min_ess_tail"]
        frame = pd.DataFrame(gates["fits"])[[*shown, "divergences"]]
        print_table(con, frame, "Trust gates of the fits", keys=2)
        err = err or console(stderr=True)
        flagged = frame[frame["status"] != "PASS"]
        if verbose:
            for line in gates["warnings"]:
                err.print(Text.assemble(("warning:", "yellow"), f" {line}"))
        elif len(flagged):
            failed = int((flagged["status"] == "FAIL").sum())
            err.print(
                Text.assemble(
                    ("warning:", "yellow"),
                    f" {len(flagged)} of {len(frame)} validation fits did not pass "
                    f"({failed} FAIL, {len(flagged) - failed} REVIEW; "
                    f"{len(gates['warnings'])} checks; --verbose lists them, "
                    "validation_checks.csv has every one): read their verdicts with care",
                )
            )
    if verbose:
        con.print(Text(f"Timing: {validation.settings.get('lag_convention', '')}", style="dim"))
