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
from rich.table import Table


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
    tab = Table(title=title, title_justify="left", header_style="bold")
    for col in cols:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        tab.add_column(str(col), justify="right" if numeric else "left")
    for _, row in frame[cols].iterrows():
        tab.add_row(*(fmt(row[c]) for c in cols))
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
        con.print(f"  [bold]{row['metric']}[/]: {row['verdict']} — {row['why']}")
    sentence = (validation.threshold or {}).get("sentence")
    if sentence:
        con.print(f"Threshold: {sentence}")
    con.print(f"[dim]Timing: {validation.settings.get('lag_convention', '')}[/]")


def validation_files(validation: Any) -> dict[str, Any]:
    """CSV, JSON and PNG files of a validation."""
    from nsm_sim import plots

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


def simulation_table(result: Any) -> pd.DataFrame:
    """Return the headline columns of a simulation summary, renamed for people."""
    summary = result.summary()
    return summary[list(SIMULATION_COLUMNS)].rename(columns=SIMULATION_COLUMNS)


def fan_frame(result: Any) -> pd.DataFrame:
    """Return the North Star trajectory (baseline, portfolio) in the fan chart's columns."""
    traj = result.trajectory()
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


def simulation_files(result: Any) -> dict[str, Any]:
    """CSV, JSON and PNG files of a simulation."""
    from nsm_sim import plots

    north_star = result.scenario.tree.north_star
    quantity = "value" if result.has_value else "retained_accounts"
    draws = dict(zip(result.names, result.initiatives.get(quantity), strict=True))
    return {
        "simulation.json": result.to_dict(),
        "simulation.csv": result.summary(),
        "trajectory.csv": fan_frame(result),
        "north_star_fan.png": plots.north_star_fan(fan_frame(result), north_star),
        "value_distribution.png": plots.value_distribution(draws, quantity),
    }


# --------------------------------------------------------------------------- prioritisation


def render_prioritisation(con: Console, result: Any, plan: Any) -> None:
    """Print the ranking, the chosen portfolio and the value of information."""
    render_simulation(con, result)
    con.print(table(plan.ranking, f"Ranking by {plan.quantity} per effort"))
    p = plan.portfolio
    con.print(
        f"[bold]Best portfolio[/] (effort {p.effort:g} of {p.capacity:g}): " + ", ".join(p.selected)
    )
    joint = p.joint or {}
    con.print(
        f"  expected {plan.quantity} {fmt(p.expected_value)} (sum of each alone); "
        f"together {fmt(joint.get('mean'))} [p5 {fmt(joint.get('p5'))}, "
        f"p95 {fmt(joint.get('p95'))}], P(>0) {fmt(joint.get('p_positive'))}"
    )
    con.print(table(plan.evpi, "Value of perfect information: test the top one first"))
    if plan.note:
        con.print(f"[dim]{plan.note}[/]")


def prioritisation_files(result: Any, plan: Any) -> dict[str, Any]:
    """CSV, JSON and PNG files of a prioritisation (with its simulation's)."""
    from nsm_sim import plots

    return {
        **simulation_files(result),
        "prioritise.json": plan.to_dict(),
        "ranking.csv": plan.ranking,
        "evpi.csv": plan.evpi,
        "evpi.png": plots.evpi_bars(plan.evpi, plan.quantity),
    }


def render_comparison(con: Console, comparison: Any) -> None:
    """Print two scenarios' portfolios side by side with P(A beats B)."""
    a, b = comparison.names
    cols = [
        "quantity",
        "a_mean",
        "a_p5",
        "a_p95",
        "b_mean",
        "b_p5",
        "b_p95",
        "diff_mean",
        "p_a_beats_b",
    ]
    con.print(table(comparison.table[cols], f"A = {a}  vs  B = {b} (portfolios, common draws)"))
