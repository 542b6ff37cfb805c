"""Outputs: rich tables in the terminal, JSON, and files written atomically.

A command that writes several files writes them all into a temporary folder beside the
target first and moves them in only when every one was written, so a failed run leaves no
half-written file behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from nsm_sim.models.retention import retention_curve


def to_jsonable(obj: Any) -> Any:
    """Convert numpy, pandas and nested containers into plain JSON types (NaN becomes null).

    Parameters
    ----------
    obj : Any
        A scalar, array, DataFrame, mapping or sequence.

    Returns
    -------
    Any
        The same content made of dict, list, str, int, float, bool and None.
    """
    if isinstance(obj, pd.DataFrame):
        return [to_jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | pd.Index):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def dumps(obj: Any) -> str:
    """Serialise ``obj`` as indented JSON via :func:`to_jsonable`."""
    return json.dumps(to_jsonable(obj), indent=2)


def write_outputs(out_dir: str | Path, files: Mapping[str, Any]) -> list[Path]:
    """Write several files into ``out_dir`` atomically.

    Parameters
    ----------
    out_dir : str or Path
        Target folder, created if needed. Files already there and not named in ``files``
        are left alone.
    files : mapping of str to content
        File name to content: ``str`` or ``bytes`` as is, a DataFrame as CSV, a matplotlib
        figure as PNG, anything else as JSON.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".nsm-sim-", dir=out))
    try:
        for name, content in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            elif isinstance(content, str):
                target.write_text(content)
            elif isinstance(content, pd.DataFrame):
                content.to_csv(target, index=False)
            elif hasattr(content, "savefig"):
                content.savefig(target, dpi=120, bbox_inches="tight")
            else:
                target.write_text(dumps(content))
        written = []
        for name in files:
            final = out / name
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, final)
            written.append(final)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fmt(value: Any, digits: int = 3) -> str:
    """Format a number for a table: significant digits, thousands separators, '-' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:,.{digits}g}" if abs(v) < 1e-3 else f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    return str(value)


def table(
    frame: pd.DataFrame, title: str | None = None, *, columns: list[str] | None = None
) -> Table:
    """Render a DataFrame as a rich table (numbers right-aligned and formatted)."""
    cols = columns or list(frame.columns)
    tab = Table(title=Text(title) if title else None, title_justify="left", header_style="bold")
    for col in cols:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        tab.add_column(str(col), justify="right" if numeric else "left")
    for _, row in frame[cols].iterrows():
        tab.add_row(*(Text(fmt(row[c])) for c in cols))
    return tab


def console(stderr: bool = False) -> Console:
    """Return a console for tables (stdout) or for messages and progress (stderr)."""
    return Console(stderr=stderr, highlight=False)


# --------------------------------------------------------------------------- validation

VALIDATION_COLUMNS = ["rank", "metric", "verdict", "log_loss", "auc", "elpd_loo"]


def _interval_columns(frame: pd.DataFrame, prefix: str) -> pd.Series:
    return frame.apply(
        lambda r: (
            f"{fmt(r[f'{prefix}_mean'])} [{fmt(r[f'{prefix}_low'])}, {fmt(r[f'{prefix}_high'])}]"
        ),
        axis=1,
    )


def validation_table(validation: Any) -> pd.DataFrame:
    """Return the verdict table: rank, metric, verdict, scores, within and between."""
    m = validation.metrics
    out = m[VALIDATION_COLUMNS].copy()
    out["within (90%)"] = _interval_columns(m, "within")
    out["between (90%)"] = _interval_columns(m, "between")
    return out


def render_validation(con: Console, validation: Any) -> None:
    """Print the verdicts, the reasons, the threshold and the lag convention."""
    con.print(table(validation_table(validation), "Is the North Star leading?"))
    for _, row in validation.metrics.iterrows():
        con.print(f"  [bold]{escape(row['metric'])}[/]: {row['verdict']} — {escape(row['why'])}")
    sentence = (validation.threshold or {}).get("sentence")
    if sentence:
        con.print(f"Threshold: {escape(sentence)}")
    con.print(f"[dim]Timing: {validation.settings.get('lag_convention', '')}[/]")


def validation_files(validation: Any) -> dict[str, Any]:
    """CSV, JSON and PNG files of a validation."""
    from nsm_sim.output import plots

    convention = validation.settings.get("lag_convention", "")
    return {
        "validation.json": validation.to_dict(),
        "validation_metrics.csv": validation.metrics,
        "validation_timing.csv": validation.timing,
        "cross_correlations.csv": validation.cross_correlations,
        "within_between.csv": validation.within_between,
        "timing.png": plots.timing(
            validation.cross_correlations, validation.north_star, convention
        ),
    }


# --------------------------------------------------------------------------- simulation

SIMULATION_COLUMNS = {
    "name": "initiative",
    "effort": "effort",
    "north_star_change_pct_mean": "NSM change % (mean)",
    "north_star_change_pct_p5": "p5",
    "north_star_change_pct_p95": "p95",
    "north_star_change_p_positive": "P(>0)",
    "retained_accounts_mean": "retained accounts",
    "value_mean": "value (mean)",
    "value_per_effort": "value / effort",
}


def drivers_view(drivers: pd.DataFrame, population: bool = False) -> pd.DataFrame:
    """Return the drivers table to show.

    Population rows only when ``population``; the ``calibrated_by`` column only when an
    experiment calibrates an edge.
    """
    view = drivers[drivers["segment"].isna()] if population else drivers
    if "calibrated_by" in view and not view["calibrated_by"].astype(bool).any():
        view = view.drop(columns="calibrated_by")
    return view


def simulation_table(result: Any) -> pd.DataFrame:
    """Return the headline columns of a simulation summary, renamed for people."""
    summary = result.summary()
    return summary[list(SIMULATION_COLUMNS)].rename(columns=SIMULATION_COLUMNS)


#: Fan chart names of the trajectory's series.
FAN_SERIES = {"baseline": "no initiative", "portfolio": "every initiative"}


def fan_frame(result: Any, plan: Any = None) -> pd.DataFrame:
    """Return the North Star trajectory in the fan chart's columns.

    Series: no initiative, every initiative of the scenario and, with a prioritisation whose
    portfolio is not every initiative, the chosen portfolio (projected jointly).
    """
    extra = {}
    chosen = None if plan is None else plan.portfolio.joint_outcomes
    if chosen is not None and chosen.north_star_path is not None:
        if set(plan.portfolio.selected) != set(result.names):
            extra["chosen portfolio"] = chosen.north_star_path
    traj = result.trajectory(extra=extra)
    traj["series"] = traj["series"].replace(FAN_SERIES)
    return traj.rename(
        columns={
            "series": "scenario",
            "q05": "p5",
            "q25": "p25",
            "q50": "p50",
            "q75": "p75",
            "q95": "p95",
        }
    )


def render_simulation(con: Console, result: Any) -> None:
    """Print the per-initiative and portfolio outcomes."""
    scenario = result.scenario
    con.print(
        table(
            simulation_table(result),
            f"{scenario.name}: {result.draws:,} draws, horizon {scenario.horizon} periods "
            "(changes against no initiative)",
        )
    )
    if not result.has_value:
        con.print("[dim]No value column: value is retained accounts.[/]")


def simulation_files(result: Any, plan: Any = None) -> dict[str, Any]:
    """CSV, JSON and PNG files of a simulation (the fan chart with ``plan``'s portfolio)."""
    from nsm_sim.output import plots

    north_star = result.scenario.tree.north_star
    fan = fan_frame(result, plan)
    quantity = "value" if result.has_value else "retained_accounts"
    draws = dict(zip(result.names, result.initiatives.get(quantity), strict=True))
    return {
        "simulation.json": result.to_dict(),
        "simulation.csv": result.summary(),
        "trajectory.csv": fan,
        "north_star_fan.png": plots.north_star_fan(fan, north_star),
        "value_distribution.png": plots.value_distribution(draws, quantity),
    }


# --------------------------------------------------------------------------- prioritisation


def render_prioritisation(con: Console, result: Any, plan: Any) -> None:
    """Print the ranking, the chosen portfolio and the value of information."""
    render_simulation(con, result)
    ranking_columns = ["rank", "name", "effort", "expected_value", "value_per_effort", "p_positive"]
    ranking_columns += [c for c in plan.ranking.columns if c.startswith("p_top")]
    con.print(
        table(plan.ranking, f"Ranking by {plan.quantity} per effort", columns=ranking_columns)
    )
    p = plan.portfolio
    con.print(
        f"[bold]Best portfolio[/] (effort {p.effort:g} of {p.capacity:g}): " + ", ".join(p.selected)
    )
    joint = p.joint or {}
    con.print(
        f"  expected {plan.quantity} {fmt(p.expected_value)} (sum of each alone); "
        f"together {fmt(joint.get('mean'))} (90% interval {fmt(joint.get('p5'))} to "
        f"{fmt(joint.get('p95'))}), P(>0) {fmt(joint.get('p_positive'))}"
    )
    con.print(table(plan.evpi, "Value of perfect information: test the top one first"))
    if plan.note:
        con.print(f"[dim]{plan.note}[/]")


def prioritisation_files(result: Any, plan: Any) -> dict[str, Any]:
    """CSV, JSON and PNG files of a prioritisation (with its simulation's)."""
    from nsm_sim.output import plots

    return {
        **simulation_files(result, plan),
        "prioritise.json": plan.to_dict(),
        "ranking.csv": plan.ranking,
        "evpi.csv": plan.evpi,
        "evpi.png": plots.evpi_bars(plan.evpi, plan.quantity),
    }


def render_comparison(con: Console, comparison: Any) -> None:
    """Print two scenarios' portfolios side by side with P(A beats B)."""
    a, b = comparison.names
    t = comparison.table

    def spread(side: str) -> pd.Series:
        return t.apply(
            lambda r: (
                f"{fmt(r[f'{side}_mean'])} ({fmt(r[f'{side}_p5'])} to {fmt(r[f'{side}_p95'])})"
            ),
            axis=1,
        )

    view = pd.DataFrame(
        {
            "quantity": t["quantity"],
            "A: mean (90%)": spread("a"),
            "B: mean (90%)": spread("b"),
            "A - B": t["diff_mean"],
            "P(A beats B)": t["p_a_beats_b"],
        }
    )
    basis = (
        "the portfolio each funds under its capacity"
        if comparison.funded
        else "each scenario's initiatives together"
    )
    con.print(table(view, f"A = {a}  vs  B = {b} ({basis})"))
    if comparison.funded:
        for side, names in zip("AB", comparison.selected, strict=True):
            con.print(f"{side} funds: {', '.join(names) or 'nothing'}")


# --------------------------------------------------------------------------- the full report


def assumptions(tree: Any) -> str:
    """Return the report's assumptions, naming the elasticities experiments calibrate."""
    calibrated = {edge: exps for edge, exps in tree.calibration.items() if exps}
    if calibrated:
        listed = "; ".join(
            f"{p} <- {c} by {', '.join(e.name for e in exps)}"
            for (p, c), exps in calibrated.items()
        )
        calibration = f"calibrated here: {listed}; the others are not"
    else:
        calibration = "none in this fit is calibrated"
    return ASSUMPTIONS.format(calibration=calibration)


ASSUMPTIONS = """\
Elasticities are observational: they are estimated within accounts, with period effects, so \
account size and shocks common to all accounts do not bias them, but a change that moves an \
input and the North Star together for another reason would. They are causal effects only where \
experiments calibrate them ({calibration}): treat initiative sizing as a plan, and test the \
initiatives with the largest value of information first.

The churn model is a discrete-time logistic hazard on log1p of the North Star, a tenure term \
and segment intercepts, with a threshold step where one is supported. Retention over h periods \
is the product of (1 - hazard).

The projection starts from the accounts active in the last observed period (grouped by segment \
and North Star level), holds their North Star at its last level apart from the initiatives' \
lifts, and carries each lift up the tree by the elasticities. A cell reached in part is \
projected at its expected multiplier. New accounts are not projected.

Every interval is a 90% interval unless marked otherwise; Monte Carlo results use common \
random numbers, so differences between initiatives are sharp."""


def _threshold_for_plot(threshold: dict | None) -> dict | None:
    if not threshold or not threshold.get("supported"):
        return None
    return {
        "tau": threshold["tau"]["mean"],
        "low": threshold["tau"]["low"],
        "high": threshold["tau"]["high"],
        "retention_above": threshold["retention_above"]["mean"],
        "retention_below": threshold["retention_below"]["mean"],
    }


def report_files(analysis: Any, *, generated: str | None = None) -> dict[str, Any]:
    """Every file of the report: ``report.html`` and the CSV, JSON and PNG behind it.

    Parameters
    ----------
    analysis : nsm_sim.pipeline.Analysis
        The fit and, where present, the validation, simulation and prioritisation.
    generated : str, optional
        Time stamp printed in the report's footer.

    Returns
    -------
    dict
        File name to content, ready for :func:`write_outputs`.
    """
    from nsm_sim import simulate
    from nsm_sim.models import inference
    from nsm_sim.output import html, plots

    fit = analysis.fit
    tree = fit.tree
    ns = tree.north_star
    tables = inference.summarise(fit)
    posterior = simulate.posterior_draws(fit.idata, tree)
    horizon = tree.retention_horizon
    threshold = analysis.validation.threshold if analysis.validation is not None else None
    curve = retention_curve(posterior, fit.population, horizon)
    files: dict[str, Any] = {
        "drivers.csv": tables["drivers"],
        "retention.csv": tables["retention"],
        "diagnostics.csv": fit.diagnostics,
        "fit_card.json": fit.card,
        "retention_curve.csv": curve,
        "elasticities.png": plots.elasticity_forest(tables["drivers"], ns),
        "retention_by_level.png": plots.retention_by_level(
            curve, ns, horizon, _threshold_for_plot(threshold)
        ),
    }
    sections = []

    # 1. Is the North Star leading?
    if analysis.validation is not None:
        v = analysis.validation
        files.update(validation_files(v))
        own = v.metrics.set_index("metric").loc[ns]
        blocks = [
            html.Callout(f"{ns}: {own['verdict']}. {own['why']}", own["verdict"]),
            html.TableBlock(
                validation_table(v), "Verdict per metric; effects on churn logit, 90% intervals"
            ),
        ]
        if threshold and threshold.get("sentence"):
            blocks.append(html.Callout(threshold["sentence"], "INFO"))
        blocks += [
            html.FigureBlock(files["retention_by_level.png"], f"Retention by {ns}"),
            html.FigureBlock(files["timing.png"], v.settings.get("lag_convention", "")),
            html.Text(v.summary),
        ]
        sections.append(
            html.Section(
                "Is the North Star leading?",
                "Does it predict churn ahead of time, within accounts, better than the candidates?",
                blocks,
            )
        )

    # 2. What drives it?
    population_drivers = drivers_view(tables["drivers"], population=True)
    sections.append(
        html.Section(
            f"What drives {ns}?",
            "Elasticities: +1% in the input moves its parent by about this many per cent. "
            + str(fit.card.get("estimation", "")),
            [
                html.FigureBlock(files["elasticities.png"], "Elasticities, 90% intervals"),
                html.TableBlock(population_drivers, "Population-level elasticities"),
                html.TableBlock(tables["retention"], f"Churn model: how {ns} drives churn"),
            ],
        )
    )

    # 3. What should we fund?
    if analysis.plan is not None:
        sim, plan = analysis.simulation, analysis.plan
        files.update(prioritisation_files(sim, plan))
        p = plan.portfolio
        joint = p.joint or {}
        sections.append(
            html.Section(
                "What should we fund?",
                f"Scenario {sim.scenario.name!r}: {len(sim.names)} initiatives, capacity "
                f"{p.capacity:g}, horizon {sim.scenario.horizon} periods, {sim.draws:,} draws.",
                [
                    html.Callout(
                        f"Fund {', '.join(p.selected)} (effort {p.effort:g} of {p.capacity:g}): "
                        f"expected {plan.quantity} {fmt(joint.get('mean', p.expected_value))}, "
                        f"90% interval {fmt(joint.get('p5'))} to {fmt(joint.get('p95'))}. "
                        f"Test {plan.evpi.iloc[0]['name']} first: its uncertainty is worth the "
                        "most to the decision.",
                        "INFO",
                    ),
                    html.TableBlock(plan.ranking, f"Ranking by {plan.quantity} per effort"),
                    html.FigureBlock(
                        files["north_star_fan.png"],
                        f"{ns} with no initiative, with every initiative of the scenario "
                        "and with the chosen portfolio",
                    ),
                    html.FigureBlock(files["value_distribution.png"], "Per initiative"),
                    html.TableBlock(simulation_table(sim), "Each initiative alone"),
                    html.FigureBlock(files["evpi.png"], "Expected value of perfect information"),
                ]
                + ([html.Text(plan.note)] if plan.note else []),
            )
        )

    # 4. Details and diagnostics, 5. assumptions
    checks = fit.diagnostics
    worst = (
        "FAIL"
        if (checks["status"] == "FAIL").any()
        else ("REVIEW" if (checks["status"] == "REVIEW").any() else "PASS")
    )
    details = [
        html.Callout(f"Trust gates: {worst}", worst),
        html.TableBlock(checks, "Sampling diagnostics and posterior predictive checks"),
        html.TableBlock(drivers_view(tables["drivers"]), "Elasticities per segment"),
    ]
    if analysis.validation is not None:
        details.append(html.TableBlock(analysis.validation.timing, "Panel Granger tests"))
    sections.append(html.Section("Details and diagnostics", "", details))
    sections.append(
        html.Section("Assumptions", "", [html.Text(assumptions(tree))]),
    )
    card = fit.card
    meta = {
        "tree": tree.name,
        "data": card.get("data_fingerprint"),
        "rows": card.get("rows"),
        "sampler": card.get("sampler"),
        "seed": card.get("seed"),
    }
    files["report.html"] = html.render_report(
        f"North Star report: {ns}", f"Metric tree {tree.name!r}", sections, generated, meta
    )
    return files
