"""What the forecast keeps of a panel: a small table per period, segment and tenure.

The forecast needs three things of the history, none of which grows with the accounts:

- **arrivals**: the accounts whose first row falls in each period after the first (the
  first period's accounts were there before the panel began), per segment;
- **the North Star by tenure**: per segment and tenure, the sums of the North Star, of its
  square and of ``log1p`` of it and its square (a new account's ramp, with its spread);
- **the common period shock**: the *same-store* growth of the North Star from each period to
  the next, ``log(sum N[i, t] / sum N[i, t - 1])`` over the accounts present in both periods
  (a chain index that composition, arrivals and churn do not move).

:func:`panel_history` builds the table from a checked panel; the fit bundle stores it
(``history.csv``) so that ``simulate`` can forecast without the panel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nsm_sim.data import Panel
from nsm_sim.errors import DataError

#: Tenures at or above this are pooled into one row (the ramp is flat long before).
MAX_TENURE = 104

#: Columns of the history table.
HISTORY_COLUMNS = (
    "period",
    "segment",
    "tenure",
    "accounts",
    "north_star_sum",
    "north_star_sumsq",
    "log_sum",
    "log_sumsq",
    "growth",
)


@dataclass(frozen=True)
class History:
    """The panel as the forecast reads it (see the module).

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per period x segment x tenure (tenure capped at :data:`MAX_TENURE`) with the
        :data:`HISTORY_COLUMNS`: ``accounts`` (rows), ``north_star_sum``,
        ``north_star_sumsq``, ``log_sum`` and ``log_sumsq`` (of ``log1p`` of the North Star)
        and ``growth``, the period's same-store log growth (NaN in the first period; the same
        on every row of a period).
    period : {"week", "month"}
        The calendar of the periods.
    """

    frame: pd.DataFrame
    period: str

    def __post_init__(self) -> None:
        missing = [c for c in HISTORY_COLUMNS if c not in self.frame.columns]
        if missing:
            raise DataError("forecast history", [f"column {c!r} is missing" for c in missing])
        if self.period not in ("week", "month"):
            raise DataError("forecast history", [f"period: {self.period!r} is not week or month"])
        frame = self.frame.copy()
        frame["period"] = pd.to_datetime(frame["period"])
        frame["segment"] = frame["segment"].astype(str)
        object.__setattr__(self, "frame", frame)

    @property
    def periods(self) -> pd.DatetimeIndex:
        """The observed periods' start dates, in order."""
        return pd.DatetimeIndex(np.sort(self.frame["period"].unique()))

    @property
    def segments(self) -> tuple[str, ...]:
        """The segments, sorted."""
        return tuple(sorted(self.frame["segment"].unique()))

    def arrivals(self) -> pd.DataFrame:
        """Count the new accounts per period (rows, after the first period) and segment (columns).

        Returns
        -------
        pandas.DataFrame
            Counts, indexed by period start date; a segment with no arrival in a period has 0.
        """
        f = self.frame
        new = f[(f["tenure"] == 0) & (f["period"] > self.periods[0])]
        table = new.pivot_table(
            index="period", columns="segment", values="accounts", aggfunc="sum", fill_value=0
        )
        return table.reindex(index=self.periods[1:], columns=list(self.segments), fill_value=0)

    def growth(self) -> np.ndarray:
        """Return the same-store log growth of the North Star into each period after the first."""
        per = self.frame.groupby("period", sort=True)["growth"].first()
        return per.to_numpy(dtype=float)[1:]

    def shock_index(self) -> np.ndarray:
        """Return the common shock's chain index per period: 0 first, then cumulated growth."""
        g = np.nan_to_num(self.growth(), nan=0.0)
        return np.concatenate([[0.0], np.cumsum(g)])

    def observed(self) -> pd.DataFrame:
        """Accounts, the North Star's sum and the moments of its log per period.

        Returns
        -------
        pandas.DataFrame
            Indexed by period: ``accounts``, ``north_star_sum``, ``log_sum``, ``log_sumsq``.
        """
        cols = ["accounts", "north_star_sum", "log_sum", "log_sumsq"]
        return self.frame.groupby("period", sort=True)[cols].sum()


def panel_history(panel: Panel) -> History:
    """Reduce a checked panel to the forecast's history table.

    Parameters
    ----------
    panel : Panel
        A checked panel (with ``segment``, ``t`` and ``tenure`` derived).

    Returns
    -------
    History

    Examples
    --------
    >>> from nsm_sim.data import check_frame
    >>> from nsm_sim.synth import generate_world
    >>> world = generate_world(accounts=300, periods=12, seed=3)
    >>> h = panel_history(check_frame(world.panel, world.tree))
    >>> int(h.frame["accounts"].sum()) == len(world.panel)
    True
    """
    f = panel.frame
    ns = f[panel.tree.north_star].to_numpy(dtype=float)
    y = np.log1p(ns)
    t = f["t"].to_numpy(dtype=np.int64)
    tenure = np.minimum(f["tenure"].to_numpy(dtype=np.int64), MAX_TENURE)
    rows = pd.DataFrame(
        {
            "t": t,
            "segment": f["segment"].astype(str).to_numpy(),
            "tenure": tenure,
            "accounts": 1,
            "north_star_sum": ns,
            "north_star_sumsq": ns * ns,
            "log_sum": y,
            "log_sumsq": y * y,
        }
    )
    table = rows.groupby(["t", "segment", "tenure"], sort=True).sum().reset_index()
    # same-store growth: rows whose account has a row in the period before
    account = pd.factorize(f["account_id"])[0]
    order = np.lexsort((t, account))
    a_s, t_s, n_s = account[order], t[order], ns[order]
    pair = (a_s[1:] == a_s[:-1]) & (t_s[1:] == t_s[:-1] + 1)
    n_periods = len(panel.periods)
    now = np.bincount(t_s[1:][pair], n_s[1:][pair], minlength=n_periods)
    before = np.bincount(t_s[1:][pair], n_s[:-1][pair], minlength=n_periods)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where((now > 0) & (before > 0), np.log(now / before), 0.0)
    growth[0] = np.nan
    table["growth"] = growth[table["t"].to_numpy()]
    table.insert(0, "period", np.asarray(panel.periods)[table["t"].to_numpy()])
    table = table.drop(columns="t")
    return History(frame=table[list(HISTORY_COLUMNS)], period=panel.tree.period)
