"""Plan against actual on the terminal and in files (``nsm-sim track``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console
from rich.text import Text

from nsm_sim.output.format import fmt
from nsm_sim.output.layout import print_table


def aggregate_view(tracking: Any) -> pd.DataFrame:
    """Return the North Star's actual aggregate against the forecast, for people.

    Parameters
    ----------
    tracking : nsm_sim.track.Tracking

    Returns
    -------
    pandas.DataFrame
    """
    a = tracking.aggregate
    return pd.DataFrame(
        {
            "period": a["period"].dt.strftime("%Y-%m-%d"),
            "actual": a["actual"],
            "forecast p5": a["p5"],
            "median": a["p50"],
            "p95": a["p95"],
            "position": a["position"],
            "status": a["status"],
        }
    )


def inputs_view(tracking: Any) -> pd.DataFrame:
    """Return each node's deviation from plan in its last tracked period, for people.

    Parameters
    ----------
    tracking : nsm_sim.track.Tracking

    Returns
    -------
    pandas.DataFrame
        ``node``, ``change``, ``expected``, ``deviation``, ``z``, ``status`` and
        ``to North Star`` (the contribution), all on the ``log1p`` scale.
    """
    rows = tracking.inputs
    last = rows[rows["period"] == rows["period"].max()]
    return pd.DataFrame(
        {
            "node": last["node"],
            "change": last["change"],
            "expected": last["expected"],
            "deviation": last["deviation"],
            "z": last["z"],
            "status": last["status"],
            "to North Star": last["contribution"],
        }
    )


def render_tracking(con: Console, tracking: Any, north_star: str) -> None:
    """Print plan against actual: the aggregate, the inputs and which moved off plan first.

    Parameters
    ----------
    con : rich.console.Console
    tracking : nsm_sim.track.Tracking
    north_star : str
    """
    print_table(
        con,
        aggregate_view(tracking),
        f"{north_star}: actual against the forecast made at {tracking.origin:%Y-%m-%d} "
        f"({tracking.series}, 90% band)",
    )
    last = tracking.inputs["period"].max()
    print_table(
        con,
        inputs_view(tracking),
        f"Each metric on the same accounts, {last:%Y-%m-%d} against plan (log1p change "
        "since the forecast)",
    )
    first = tracking.first_off_plan
    if first is None:
        con.print(Text("No input left its 90% band: the inputs are on plan."))
        return
    direction = "below" if first["z"] < 0 else "above"
    con.print(
        Text.assemble(
            ("First off plan: ", "bold"),
            f"{first['node']} in the period of {first['period']:%Y-%m-%d}, {direction} plan "
            f"(deviation {fmt(first['deviation'])} in log1p, z {fmt(first['z'])})",
        )
    )


def tracking_files(tracking: Any) -> dict[str, Any]:
    """Return the files of ``nsm-sim track --out``.

    Parameters
    ----------
    tracking : nsm_sim.track.Tracking

    Returns
    -------
    dict
        ``tracking.json``, ``tracking_aggregate.csv``, ``tracking_segments.csv`` and
        ``tracking_inputs.csv``.
    """
    return {
        "tracking.json": tracking.to_dict(),
        "tracking_aggregate.csv": tracking.aggregate,
        "tracking_segments.csv": tracking.segments,
        "tracking_inputs.csv": tracking.inputs,
    }
