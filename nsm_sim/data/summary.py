"""What ``nsm-sim check`` shows of a checked panel: sizes, periods, segments, churn, ranges."""

from __future__ import annotations

from typing import Any

import numpy as np

from nsm_sim.data.panel import Panel


def describe(panel: Panel) -> dict[str, Any]:
    """Summarise a checked panel (what ``nsm-sim check`` shows); JSON-serialisable.

    Parameters
    ----------
    panel : Panel
        A checked panel.

    Returns
    -------
    dict
        ``source``, ``fingerprint``, ``rows``, ``accounts``, ``periods`` (``first``,
        ``last``, ``count``, ``kind``), ``segments`` (accounts per segment), ``churn``
        (``events``, ``account_periods``, ``rate_per_period``, ``accounts_churned``,
        ``share_of_accounts_churned``, ``accounts_alive_at_end``), ``metrics`` (``min``,
        ``median``, ``max`` per metric, and ``role``: north_star, input, candidate or value)
        and ``warnings`` (:attr:`Panel.warnings`).
    """
    f = panel.frame
    tree = panel.tree
    last = f.drop_duplicates("account_id", keep="last")
    events = int(f["churned"].sum())
    accounts = int(len(last))
    per_segment = last.groupby("segment", sort=True).size()
    metrics: dict[str, dict[str, Any]] = {}
    for m in (*tree.metrics, *tree.value_columns):
        v = f[m].to_numpy(dtype=float)
        if m == tree.north_star:
            role = "north_star"
        elif m in tree.nodes:
            role = "input"
        elif m in tree.candidates:
            role = "candidate"
        else:
            role = "value"
        metrics[m] = {
            "role": role,
            "min": float(v.min()),
            "median": float(np.median(v)),
            "max": float(v.max()),
        }
    alive_end = int(((f["period"] == panel.periods[-1]) & (f["churned"] == 0)).sum())
    return {
        "source": panel.source,
        "fingerprint": panel.fingerprint,
        "rows": int(len(f)),
        "accounts": accounts,
        "periods": {
            "first": f"{panel.periods[0]:%Y-%m-%d}",
            "last": f"{panel.periods[-1]:%Y-%m-%d}",
            "count": int(len(panel.periods)),
            "kind": tree.period,
        },
        "segments": {str(k): int(v) for k, v in per_segment.items()},
        "churn": {
            "events": events,
            "account_periods": int(len(f)),
            "rate_per_period": events / len(f),
            "accounts_churned": events,
            "share_of_accounts_churned": events / accounts,
            "accounts_alive_at_end": alive_end,
        },
        "metrics": metrics,
        "warnings": list(panel.warnings),
    }
