"""The DataFrames the outputs show, built from results the pipeline has computed.

Each function selects, renames and formats columns for people; none of them computes a
statistic. The terminal, the CSV files and the HTML report show the same frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from nsm_sim.output.format import interval_text, spread_text

#: Columns of the verdict table, before the within and between intervals.
VALIDATION_COLUMNS = ["rank", "metric", "verdict", "log_loss", "auc", "elpd_loo"]

#: Headline columns of a simulation summary and their names for people.
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

#: The simulation's row of every initiative of a scenario projected together, whatever the
#: capacity (the portfolio that fits it is chosen by ``prioritise``).
ALL_TOGETHER = "all initiatives together"

#: Fan chart names of the trajectory's series.
FAN_SERIES = {"baseline": "no initiative", "portfolio": ALL_TOGETHER}

#: Trajectory quantile columns and their names in the fan chart.
FAN_COLUMNS = {
    "series": "scenario",
    "q05": "p5",
    "q25": "p25",
    "q50": "p50",
    "q75": "p75",
    "q95": "p95",
}

#: Columns of the ranking shown, before the P(top k) columns, and their names for people.
RANKING_COLUMNS = {
    "rank": "rank",
    "name": "initiative",
    "effort": "effort",
    "expected_value": "expected value",
    "value_per_effort": "value / effort",
    "p_positive": "P(>0)",
}

#: Order of the trust-gate statuses, best first.
STATUS_ORDER = ("PASS", "REVIEW", "FAIL")


def _intervals(frame: pd.DataFrame, prefix: str) -> pd.Series:
    return pd.Series(
        [
            interval_text(mean, low, high)
            for mean, low, high in zip(
                frame[f"{prefix}_mean"],
                frame[f"{prefix}_low"],
                frame[f"{prefix}_high"],
                strict=True,
            )
        ],
        index=frame.index,
        dtype=object,
    )


def validation_table(validation: Any) -> pd.DataFrame:
    """Return the verdict table: rank, metric, verdict, scores, within and between.

    Parameters
    ----------
    validation : nsm_sim.leading.Validation

    Returns
    -------
    pandas.DataFrame
        :data:`VALIDATION_COLUMNS`, then ``within (90%)`` and ``between (90%)`` as
        ``"mean [low, high]"`` of the effects on the churn logit.
    """
    metrics = validation.metrics
    out = metrics[VALIDATION_COLUMNS].copy()
    out["within (90%)"] = _intervals(metrics, "within")
    out["between (90%)"] = _intervals(metrics, "between")
    return out


def drivers_view(drivers: pd.DataFrame, population: bool = False) -> pd.DataFrame:
    """Return the drivers table to show.

    Parameters
    ----------
    drivers : pandas.DataFrame
        The ``"drivers"`` table of :func:`nsm_sim.models.inference.summarise`.
    population : bool, default False
        Only the population rows, without the (empty) segment column.

    Returns
    -------
    pandas.DataFrame
        The rows asked for; the ``calibrated_by`` column only when an experiment calibrates
        an edge.
    """
    view = drivers
    if population:
        view = drivers[drivers["segment"].isna()].drop(columns="segment")
    if "calibrated_by" in view and not view["calibrated_by"].astype(bool).any():
        view = view.drop(columns="calibrated_by")
    return view


def simulation_summary(result: Any) -> pd.DataFrame:
    """Return a simulation's summary with its last row named :data:`ALL_TOGETHER`.

    Parameters
    ----------
    result : nsm_sim.simulate.SimulationResult

    Returns
    -------
    pandas.DataFrame
        :meth:`~nsm_sim.simulate.SimulationResult.summary`, whose row of every initiative
        projected together is named for what it is: not a portfolio that fits the capacity.
    """
    summary = result.summary()
    summary.loc[summary.index[-1], "name"] = ALL_TOGETHER
    return summary


def simulation_table(result: Any, *, together: bool = False) -> pd.DataFrame:
    """Return the headline columns of a simulation summary, renamed for people.

    Parameters
    ----------
    result : nsm_sim.simulate.SimulationResult
    together : bool, default False
        Return the row of every initiative projected together instead of one row per
        initiative.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`SIMULATION_COLUMNS`.
    """
    summary = simulation_summary(result)
    rows = summary.iloc[-1:] if together else summary.iloc[:-1]
    names = with_currency(SIMULATION_COLUMNS, currency_of(result))
    return rows[list(names)].rename(columns=names)


def currency_of(result: Any) -> str | None:
    """Return the currency the result's tree names for its value column, if any.

    Parameters
    ----------
    result : nsm_sim.simulate.SimulationResult

    Returns
    -------
    str or None
    """
    scenario = getattr(result, "scenario", None)
    return getattr(getattr(scenario, "tree", None), "currency", None)


def with_currency(names: dict[str, str], currency: str | None) -> dict[str, str]:
    """Return column names with the money columns in ``currency``.

    Parameters
    ----------
    names : dict
        Column to its name for people (``"value (mean)"``, ``"value / effort"``...).
    currency : str or None
        ``EUR``, ``USD``...; ``None`` leaves the names as they are.

    Returns
    -------
    dict

    Examples
    --------
    >>> with_currency({"value_mean": "value (mean)", "value_per_effort": "value / effort"}, "EUR")
    {'value_mean': 'value (EUR, mean)', 'value_per_effort': 'EUR / effort'}
    """
    if not currency:
        return dict(names)
    money = {
        "value (mean)": f"value ({currency}, mean)",
        "value / effort": f"{currency} / effort",
        "expected value": f"expected value ({currency})",
    }
    return {column: money.get(name, name) for column, name in names.items()}


def fan_frame(result: Any, plan: Any = None, origin: Any = None) -> pd.DataFrame:
    """Return the North Star trajectory in the fan chart's columns.

    Parameters
    ----------
    result : nsm_sim.simulate.SimulationResult
    plan : nsm_sim.prioritise.Prioritisation, optional
        With a portfolio that is not every initiative, its joint path is a third series.
    origin : date-like, optional
        Start of the last observed period (a fit's ``panel["periods"]["last"]``): the
        periods are then the projected periods' start dates on the tree's calendar.

    Returns
    -------
    pandas.DataFrame
        ``period`` (0 = the first projected period, or its start date), ``scenario`` (no
        initiative, all initiatives together and possibly chosen portfolio), ``p5``,
        ``p25``, ``p50``, ``p75``, ``p95``.
    """
    extra = {}
    chosen = None if plan is None else plan.portfolio.joint_outcomes
    if chosen is not None and chosen.north_star_path is not None:
        if set(plan.portfolio.selected) != set(result.names):
            extra["chosen portfolio"] = chosen.north_star_path
    trajectory = result.trajectory(extra=extra)
    trajectory["series"] = trajectory["series"].replace(FAN_SERIES)
    if origin is not None:
        from nsm_sim.forecast import period_dates

        steps = trajectory["period"].to_numpy()
        dates = period_dates(origin, result.scenario.tree.period, int(steps.max()) + 1)
        trajectory["period"] = dates[steps]
    return trajectory.rename(columns=FAN_COLUMNS)


def ranking_view(plan: Any, currency: str | None = None) -> pd.DataFrame:
    """Return the ranking's headline columns and its P(top k) columns, named for people.

    Parameters
    ----------
    plan : nsm_sim.prioritise.Prioritisation
    currency : str, optional
        The value's currency, shown in the money columns when the plan ranks by value.

    Returns
    -------
    pandas.DataFrame
    """
    top = [c for c in plan.ranking.columns if c.startswith("p_top")]
    names = {**RANKING_COLUMNS, **{c: f"P(top {c.removeprefix('p_top')})" for c in top}}
    if plan.quantity == "value":
        names = with_currency(names, currency)
    return plan.ranking[list(names)].rename(columns=names)


def comparison_view(comparison: Any) -> pd.DataFrame:
    """Return two scenarios side by side: each mean with its 90% interval, A - B, P(A beats B).

    Parameters
    ----------
    comparison : nsm_sim.prioritise.Comparison

    Returns
    -------
    pandas.DataFrame
    """
    frame = comparison.table

    def side(prefix: str) -> list[str]:
        return [
            spread_text(mean, low, high)
            for mean, low, high in zip(
                frame[f"{prefix}_mean"], frame[f"{prefix}_p5"], frame[f"{prefix}_p95"], strict=True
            )
        ]

    return pd.DataFrame(
        {
            "quantity": frame["quantity"],
            "A: mean (90%)": side("a"),
            "B: mean (90%)": side("b"),
            "A - B": frame["diff_mean"],
            "P(A beats B)": frame["p_a_beats_b"],
        }
    )


def scenario_facts(scenario: Any) -> dict[str, Any]:
    """Return what ``check`` says of a scenario: its name, tree, size, capacity and horizon.

    Parameters
    ----------
    scenario : nsm_sim.spec.Scenario

    Returns
    -------
    dict
    """
    return {
        "scenario": scenario.name,
        "tree": scenario.tree.name,
        "initiatives": len(scenario.initiatives),
        "total_effort": sum(i.effort for i in scenario.initiatives),
        "capacity": scenario.capacity,
        "horizon": scenario.horizon,
    }


def tree_facts(tree: Any) -> dict[str, Any]:
    """Return what ``check`` says of a metric tree: its name, North Star, nodes, candidates.

    Parameters
    ----------
    tree : nsm_sim.spec.MetricTree

    Returns
    -------
    dict
    """
    return {
        "tree": tree.name,
        "north_star": tree.north_star,
        "nodes": list(tree.nodes),
        "candidates": list(tree.candidates),
    }


def panel_facts(description: Mapping[str, Any]) -> pd.DataFrame:
    """Return a panel's description as ``what``/``value`` rows (metric ranges left out).

    Parameters
    ----------
    description : mapping
        :func:`nsm_sim.data.describe` of a panel.

    Returns
    -------
    pandas.DataFrame
    """
    rows = [(k, v) for k, v in description.items() if not isinstance(v, dict | list)]
    for key, value in description.items():
        if isinstance(value, dict) and key != "metrics":
            rows += [(f"{key}: {name}", item) for name, item in value.items()]
    return pd.DataFrame(rows, columns=["what", "value"]).astype({"value": "object"})


def metric_definitions(metrics: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Return one row per metric definition: the metric, its definition in words, its owner.

    Parameters
    ----------
    metrics : mapping
        The ``"metrics"`` part of :func:`nsm_sim.events.command.check_events`.

    Returns
    -------
    pandas.DataFrame
    """
    return pd.DataFrame(
        [
            {"metric": name, "definition": facts.get("definition"), "owner": facts.get("owner")}
            for name, facts in metrics.items()
        ],
        columns=["metric", "definition", "owner"],
    )


def metric_ranges(metrics: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Return one row per metric of a panel's description.

    Parameters
    ----------
    metrics : mapping
        The ``"metrics"`` part of :func:`nsm_sim.data.describe`.

    Returns
    -------
    pandas.DataFrame
    """
    return pd.DataFrame([{"metric": name, **facts} for name, facts in metrics.items()])


def worst_status(checks: pd.DataFrame) -> str:
    """Return the worst trust-gate status of a fit's checks: FAIL, REVIEW or PASS.

    Parameters
    ----------
    checks : pandas.DataFrame
        The fit's diagnostics, with a ``status`` column.

    Returns
    -------
    str
    """
    present = set(checks["status"])
    return next((s for s in reversed(STATUS_ORDER) if s in present), "PASS")


def threshold_for_plot(threshold: Mapping[str, Any] | None) -> dict[str, float] | None:
    """Return a validation's threshold in the form the retention figure takes.

    Parameters
    ----------
    threshold : mapping or None
        ``Validation.threshold``.

    Returns
    -------
    dict or None
        ``tau``, ``low``, ``high``, ``retention_above``, ``retention_below`` (means), or
        None when no threshold is supported.
    """
    if not threshold or not threshold.get("supported"):
        return None
    return {
        "tau": threshold["tau"]["mean"],
        "low": threshold["tau"]["low"],
        "high": threshold["tau"]["high"],
        "retention_above": threshold["retention_above"]["mean"],
        "retention_below": threshold["retention_below"]["mean"],
    }
