"""Plan against actual: the periods that arrived since a forecast, against its bands.

A forecast is made at the end of the fitted data (its *origin*, the fit's last period). When
newer periods arrive, :func:`track` compares them with it on three levels:

- **The North Star's aggregate** (as the tree defines it: sum, mean or the accounts at or
  above a level), computed exactly from the newer panel's rows, against the forecast's band
  for the same calendar period: the share of simulations below the actual value (its
  position in the band, 0.5 is the median) and whether it is below, inside or above the
  90 % band.
- **Each segment and each input metric**, on the same accounts (the accounts present at the
  origin and in the period, so that arrivals and churn do not move the comparison): the
  change of the mean of ``log1p`` of the metric since the origin, against what the plan
  expected (the drift the history shows, plus the expected effect of the scenario's
  initiatives on that node and its children) in units of the band the history gives. The
  history's one-period same-store changes give the drift (their mean) and the band (their
  standard deviation times ``sqrt(h)`` after ``h`` periods, as for a random walk); a
  metric's band is therefore only as good as that approximation, and the report says
  ``z``, not a probability.
- **Attribution**: the North Star's own same-store deviation from plan is split among its
  inputs by the tree's elasticities (the posterior mean of each edge, per segment, weighted
  by the segment's accounts): ``contribution = elasticity x deviation of the input``; what
  the inputs do not explain is left as ``unexplained``. The input that **moved off plan
  first** is the first, in calendar order, whose deviation left its 90 % band
  (``|z| >= 1.645``); among several in that period the largest ``|z|``.

The Python API is :func:`track` on a :class:`~nsm_sim.forecast.Forecast` and a newer
:class:`~nsm_sim.data.Panel`; ``nsm-sim track`` is its command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nsm_sim.data import Panel
from nsm_sim.errors import DataError
from nsm_sim.numeric import Z_90
from nsm_sim.simulate import PosteriorDraws
from nsm_sim.simulate.changes import ramp_share
from nsm_sim.simulate.lifts import sample_lift
from nsm_sim.spec import AtLeast, Scenario

#: ``|z|`` beyond which a deviation is outside the 90 % band (two-sided normal).
Z90 = Z_90
#: Fewest one-period changes in the history to estimate a band from.
MIN_HISTORY = 4
#: Draws of each lift to take its expected log-change.
LIFT_DRAWS = 4000


@dataclass(frozen=True)
class Tracking:
    """Plan against actual (see the module).

    Attributes
    ----------
    origin : pandas.Timestamp
        The forecast's origin: the start of the last fitted period.
    series : str
        The forecast's series tracked (``"portfolio"``: the scenario's initiatives, or
        ``"baseline"``).
    aggregate : pandas.DataFrame
        One row per tracked period: ``period``, ``actual``, ``mean``, ``p5``, ``p50``,
        ``p95`` (the forecast), ``position`` (share of simulations below the actual) and
        ``status`` (``below``, ``inside`` or ``above`` the 90 % band).
    segments : pandas.DataFrame
        One row per tracked period and segment: ``period``, ``segment``, ``accounts`` (the
        same accounts as at the origin), ``change``, ``expected``, ``deviation``, ``band``
        (the 90 % half-width), ``z`` and ``status``, for the North Star.
    inputs : pandas.DataFrame
        One row per tracked period and node of the tree: ``period``, ``node``, ``change``,
        ``expected``, ``deviation``, ``band``, ``z``, ``status`` and ``contribution`` (to
        the North Star's ``log1p``, for the North Star's direct inputs; NaN otherwise); the
        North Star's own row carries ``unexplained`` in ``contribution``.
    first_off_plan : dict or None
        ``{"node", "period", "z", "deviation"}`` of the input that left its band first.
    """

    origin: pd.Timestamp
    series: str
    aggregate: pd.DataFrame
    segments: pd.DataFrame
    inputs: pd.DataFrame
    first_off_plan: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data.

        Returns
        -------
        dict
            ``{"origin", "series", "aggregate": [...], "segments": [...], "inputs": [...],
            "first_off_plan"}``, periods as ``YYYY-MM-DD``.
        """

        def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
            out = frame.copy()
            out["period"] = out["period"].dt.strftime("%Y-%m-%d")
            out = out.astype(object).where(out.notna(), None)
            return out.to_dict(orient="records")

        first = self.first_off_plan
        if first is not None:
            first = {**first, "period": f"{first['period']:%Y-%m-%d}"}
        return {
            "origin": f"{self.origin:%Y-%m-%d}",
            "series": self.series,
            "aggregate": rows(self.aggregate),
            "segments": rows(self.segments),
            "inputs": rows(self.inputs),
            "first_off_plan": first,
        }


def observed_aggregate(frame: pd.DataFrame, north_star: str, aggregate: Any) -> pd.Series:
    """Return the North Star's aggregate per period, exactly, from a panel's rows.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``period`` and the North Star's column.
    north_star : str
    aggregate : "sum", "mean" or AtLeast

    Returns
    -------
    pandas.Series
        Indexed by period.

    Examples
    --------
    >>> f = pd.DataFrame({"period": [1, 1, 2], "n": [1.0, 4.0, 2.0]})
    >>> observed_aggregate(f, "n", "sum").tolist(), observed_aggregate(f, "n", "mean").tolist()
    ([5.0, 2.0], [2.5, 2.0])
    """
    by = frame.groupby("period", sort=True)[north_star]
    if isinstance(aggregate, AtLeast):
        return by.apply(lambda x: float((x >= aggregate.at_least).sum()))
    return by.sum() if aggregate == "sum" else by.mean()


def _same_store_changes(frame: pd.DataFrame, column: str, origin: pd.Timestamp) -> pd.DataFrame:
    """Return the mean change of ``log1p(column)`` since the origin, per period and segment.

    Over the accounts present at the origin and in the period; ``segment`` ``"all"`` holds
    every segment together.
    """
    base = frame.loc[frame["period"] == origin, ["account_id", column]]
    base = base.assign(**{column: np.log1p(base[column].to_numpy(dtype=float))})
    later = frame.loc[frame["period"] > origin, ["account_id", "period", "segment", column]]
    joined = later.merge(base, on="account_id", suffixes=("", "_origin"))
    joined["d"] = np.log1p(joined[column].to_numpy(dtype=float)) - joined[f"{column}_origin"]
    per = joined.groupby(["period", "segment"], sort=True)["d"].agg(["mean", "size"])
    total = joined.groupby("period", sort=True)["d"].agg(["mean", "size"])
    total["segment"] = "all"
    total = total.set_index("segment", append=True)
    return pd.concat([per, total]).rename(columns={"mean": "change", "size": "accounts"})


def _history_steps(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return the one-period same-store changes of the mean ``log1p(column)``.

    Returns a frame indexed by period (the later of each pair) with one column per segment
    and ``"all"``.
    """
    x = frame[["account_id", "period", "t", "segment", column]].copy()
    x["y"] = np.log1p(x[column].to_numpy(dtype=float))
    x = x.sort_values(["account_id", "t"])
    previous = x.groupby("account_id")["y"].shift(1)
    # consecutive periods of the grid (``t`` counts them, whatever a month's length)
    step = x["t"] - x.groupby("account_id")["t"].shift(1) == 1
    x["d"] = (x["y"] - previous).where(step)
    x = x.dropna(subset=["d"])
    per = x.pivot_table(index="period", columns="segment", values="d", aggfunc="mean")
    per["all"] = x.groupby("period")["d"].mean()
    return per


def _expected_log_change(
    scenario: Scenario, node: str, horizon: int, share: float, segment_share: dict[str, float]
) -> np.ndarray:
    """Return the expected change of a node's mean ``log1p`` from its own initiatives.

    Each initiative on ``node`` contributes ``confidence x reach x ramp(t) x share x
    E[log(1 + lift)]``: the expected change of ``log1p(x)`` for a lift ``l`` is about ``s
    log(1 + l)`` with ``s = x / (1 + x)`` the node's mean share; an initiative on listed
    segments reaches their share of the accounts.
    """
    out = np.zeros(horizon)
    for k, ini in enumerate(scenario.initiatives):
        if ini.target != node:
            continue
        rng = np.random.default_rng([0, k])
        g = float(np.mean(np.log1p(sample_lift(ini.lift, LIFT_DRAWS, rng))))
        if ini.segments is not None:
            reach = sum(segment_share.get(s, 0.0) for s in ini.segments)
        else:
            reach = 1.0 if ini.reach is None else ini.reach
        ramp = ramp_share(ini.start, ini.ramp, np.arange(horizon))
        out += ini.confidence * reach * share * g * ramp
    return out


def _mean_elasticities(
    posterior: PosteriorDraws, weights: np.ndarray
) -> dict[tuple[str, str], float]:
    """Return each edge's posterior mean elasticity, weighted over segments by accounts."""
    mean = posterior.elasticity.mean(axis=0)  # (E, S)
    w = weights / weights.sum()
    return {edge: float(mean[k] @ w) for k, edge in enumerate(posterior.edges)}


def track(
    forecast: Any,
    panel: Panel,
    *,
    series: str = "portfolio",
) -> Tracking:
    """Compare the periods of a newer panel that follow a forecast's origin with the forecast.

    Parameters
    ----------
    forecast : nsm_sim.forecast.Forecast
        Made from the fit whose last period is the origin (:func:`nsm_sim.forecast.forecast_fit`).
    panel : Panel
        The panel as it stands now: the periods up to the origin (for the bands of the
        segments and inputs) and the periods after it, on the same calendar.
    series : {"portfolio", "baseline"}, default "portfolio"
        The forecast's series taken as the plan.

    Returns
    -------
    Tracking

    Raises
    ------
    DataError
        The panel has no period after the origin, its later periods are not the forecast's
        calendar periods, or it lacks the origin period.
    """
    if series not in forecast.paths:
        raise ValueError(f"series: expected one of {sorted(forecast.paths)}, got {series!r}")
    scenario = forecast.scenario
    tree = scenario.tree
    origin = _origin(forecast, tree.period)
    frame = panel.frame
    later = sorted(p for p in panel.periods if p > origin)
    source = panel.source
    if origin not in set(panel.periods):
        raise DataError(
            source,
            [
                f"period: the panel has no rows in {origin:%Y-%m-%d}, the last period of the fit; "
                "expected the panel as it stands now (the fitted periods and the newer ones)"
            ],
        )
    if not later:
        raise DataError(
            source,
            [f"period: no period after {origin:%Y-%m-%d} (the fit's last); nothing to track"],
        )
    known = {d: t for t, d in enumerate(forecast.dates)}
    off_grid = [p for p in later if p not in known]
    if off_grid:
        shown = ", ".join(f"{p:%Y-%m-%d}" for p in off_grid[:5])
        raise DataError(
            source,
            [
                f"period: {shown} not among the forecast's periods "
                f"({forecast.dates[0]:%Y-%m-%d} to {forecast.dates[-1]:%Y-%m-%d}, every "
                f"{tree.period}); expected the same calendar, within the forecast's horizon"
            ],
        )
    index = [known[p] for p in later]

    actual = observed_aggregate(frame, tree.north_star, tree.north_star_aggregate)
    path = forecast.paths[series][:, index]
    p5, p50, p95 = np.quantile(path, [0.05, 0.5, 0.95], axis=0)
    values = actual.loc[later].to_numpy(dtype=float)
    aggregate = pd.DataFrame(
        {
            "period": pd.DatetimeIndex(later),
            "actual": values,
            "mean": path.mean(axis=0),
            "p5": p5,
            "p50": p50,
            "p95": p95,
            "position": (path < values[None, :]).mean(axis=0),
        }
    )
    aggregate["status"] = np.select(
        [values < p5, values > p95], ["below", "above"], default="inside"
    )

    before = frame[frame["period"] <= origin]
    at_origin = before[before["period"] == origin]
    weights = np.array(
        [(at_origin["segment"] == s).sum() for s in forecast.posterior.segments], dtype=float
    )
    elasticity = _mean_elasticities(forecast.posterior, np.maximum(weights, 1.0))
    plans = _planned_changes(forecast, series, at_origin, elasticity, max(index) + 1)
    nodes = list(tree.nodes)
    segments_rows, input_rows = [], []
    for node in nodes:
        changes = _same_store_changes(frame, node, origin)
        steps = _history_steps(before, node)
        for (period, segment), row in changes.iterrows():
            h = known[period] + 1
            column = steps[segment].dropna() if segment in steps else pd.Series(dtype=float)
            enough = len(column) >= MIN_HISTORY
            drift = float(column.mean()) * h if enough else np.nan
            band = Z90 * float(column.std(ddof=1)) * np.sqrt(h) if enough else np.nan
            expected = drift + plans[node][h - 1]
            deviation = float(row["change"]) - expected
            z = deviation / (band / Z90) if enough and band > 0 else np.nan
            record = {
                "period": period,
                "change": float(row["change"]),
                "expected": expected,
                "deviation": deviation,
                "band": band,
                "z": z,
                "status": _status(z),
            }
            if node == tree.north_star and segment != "all":
                segments_rows.append(
                    {"segment": segment, "accounts": int(row["accounts"]), **record}
                )
            elif segment == "all":
                input_rows.append({"node": node, **record})
    inputs = pd.DataFrame(input_rows)
    inputs["contribution"] = np.nan
    direct = {child: b for (parent, child), b in elasticity.items() if parent == tree.north_star}
    for period in later:
        at = inputs["period"] == period
        explained = 0.0
        for child, b in direct.items():
            row = at & inputs["node"].eq(child)
            inputs.loc[row, "contribution"] = b * inputs.loc[row, "deviation"]
            explained += float(b * inputs.loc[row, "deviation"].sum())
        own = at & inputs["node"].eq(tree.north_star)
        inputs.loc[own, "contribution"] = inputs.loc[own, "deviation"] - explained
    return Tracking(
        origin=origin,
        series=series,
        aggregate=aggregate,
        segments=pd.DataFrame(segments_rows),
        inputs=inputs,
        first_off_plan=_first_off_plan(inputs, tree.north_star),
    )


def _origin(forecast: Any, period: str) -> pd.Timestamp:
    first = pd.Timestamp(forecast.dates[0])
    if period == "week":
        return first - pd.Timedelta(days=7)
    return first - pd.DateOffset(months=1)


def _status(z: float) -> str:
    if not np.isfinite(z):
        return "no band"
    return "below" if z <= -Z90 else "above" if z >= Z90 else "inside"


def _planned_changes(
    forecast: Any,
    series: str,
    at_origin: pd.DataFrame,
    elasticity: dict[tuple[str, str], float],
    horizon: int,
) -> dict[str, np.ndarray]:
    """Return the plan's expected change of each node's mean ``log1p`` by period."""
    scenario = forecast.scenario
    tree = scenario.tree
    chosen = set(forecast.portfolio) if series == "portfolio" else set()
    planned = scenario.model_copy(
        update={"initiatives": [i for i in scenario.initiatives if i.name in chosen]}
    )
    counts = at_origin["segment"].value_counts()
    segment_share = (counts / max(counts.sum(), 1)).to_dict()
    out: dict[str, np.ndarray] = {}

    def plan(node: str) -> np.ndarray:
        if node in out:
            return out[node]
        x = at_origin[node].to_numpy(dtype=float)
        share = float(np.mean(x / (1.0 + x))) if len(x) else 1.0
        own = _expected_log_change(planned, node, horizon, share, segment_share)
        for child in tree.children.get(node, ()):
            own = own + elasticity[(node, child)] * plan(child)
        out[node] = own
        return own

    for node in tree.nodes:
        plan(node)
    return out


def _first_off_plan(inputs: pd.DataFrame, north_star: str) -> dict[str, Any] | None:
    off = inputs[(inputs["node"] != north_star) & inputs["status"].isin(["below", "above"])]
    if off.empty:
        return None
    first = off[off["period"] == off["period"].min()]
    row = first.loc[first["z"].abs().idxmax()]
    return {
        "node": str(row["node"]),
        "period": row["period"],
        "z": float(row["z"]),
        "deviation": float(row["deviation"]),
    }
