"""Rows of a panel: values and dates as read, the offending rows named, the grid's coverage.

The pieces :func:`nsm_sim.data.check_frame` is made of: reading a column's numbers and dates
whatever their type, a :class:`Reporter` that names up to :data:`MAX_EXAMPLES` offending
``(account, period)`` rows per problem, the dates of the period grid, and
:func:`check_coverage` (stray dates, accounts that vanish without churn, panels without churn
or without survivors).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Offending rows named per problem.
MAX_EXAMPLES = 5


def format_period(value: Any) -> str:
    """Return a period as the user wrote it (a date as ``YYYY-MM-DD``; ``<missing>``)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "<missing>"
    if isinstance(value, pd.Timestamp | np.datetime64):
        stamp = pd.Timestamp(value)
        return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.isoformat()
    return str(value)


def format_account(value: Any) -> str:
    """Return an account id as the user wrote it (``<missing>`` when there is none)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "<missing>"
    return str(value)


class Reporter:
    """Collects problems, naming offending rows by (account, period) as written in the file."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def row(self, i: int) -> str:
        """Return row ``i`` as ``(account, period)``."""
        f = self.frame
        acct = format_account(f["account_id"].iat[i]) if "account_id" in f else f"row {i}"
        per = format_period(f["period"].iat[i]) if "period" in f else "?"
        return f"({acct}, {per})"

    def text(self, column: str, what: str, where: np.ndarray, expected: str) -> str | None:
        """Say what is wrong in the rows ``where`` (a mask or indices): None when none is."""
        idx = np.flatnonzero(where) if where.dtype == bool else np.asarray(where)
        if idx.size == 0:
            return None
        shown = ", ".join(self.row(int(i)) for i in idx[:MAX_EXAMPLES])
        first = f", first {MAX_EXAMPLES}" if idx.size > MAX_EXAMPLES else ""
        return (
            f"{column}: {what} in {idx.size} row(s){first} (account, period): {shown}; "
            f"expected {expected}"
        )

    def rows(self, column: str, what: str, where: np.ndarray, expected: str) -> None:
        """Add a problem naming the rows ``where``, if there are any (see :meth:`text`)."""
        text = self.text(column, what, where, expected)
        if text:
            self.problems.append(text)

    def add(self, text: str) -> None:
        """Add a problem that names no row."""
        self.problems.append(text)


def numeric_column(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return float values (NaN where missing or not a number) and the non-numeric mask."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        return values, np.zeros(len(col), dtype=bool)
    coerced = pd.to_numeric(col, errors="coerce")
    values = coerced.to_numpy(dtype=float, na_value=np.nan)
    non_numeric = np.isnan(values) & col.notna().to_numpy()
    return values, non_numeric


def parse_periods(col: pd.Series) -> np.ndarray:
    """Return periods as int64 microseconds since the epoch; ``iNaT`` where unparseable."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert(None)
    if pd.api.types.is_datetime64_any_dtype(col):
        return col.astype("datetime64[us]").to_numpy().view(np.int64).copy()
    codes, uniques = pd.factorize(col)
    text = pd.Index(uniques).astype(str)
    try:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except (ValueError, TypeError):
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    if parsed.tz is not None:
        parsed = parsed.tz_convert(None)
    # ISO 8601 admits signed and expanded years ("-1" is the year -1); a period is a calendar
    # date of years 1 to 9999, which every date library can also print
    parsed = parsed.where((parsed.year >= 1) & (parsed.year <= 9999))
    stamps = np.append(parsed.as_unit("us").asi8, np.iinfo(np.int64).min)
    return stamps[codes]  # code -1 (missing) picks the trailing NaT


def period_date(first: pd.Timestamp, kind: str, k: int) -> str:
    """Return the date of period ``k`` of the grid starting at ``first`` (``YYYY-MM-DD``)."""
    if kind == "week":
        return str(np.datetime64(first.date(), "D") + 7 * int(k))
    months = first.month - 1 + int(k)
    return f"{first.year + months // 12:04d}-{months % 12 + 1:02d}-{first.day:02d}"


def period_index(first: pd.Timestamp, kind: str, n_periods: int) -> pd.DatetimeIndex:
    """Return the grid of ``n_periods`` weekly or monthly periods from ``first``."""
    if kind == "week":
        return pd.DatetimeIndex(
            first + pd.to_timedelta(7 * np.arange(n_periods), unit="D")
        ).as_unit("us")
    return pd.DatetimeIndex([first + pd.DateOffset(months=k) for k in range(n_periods)]).as_unit(
        "us"
    )


def check_coverage(
    report: Reporter,
    t: np.ndarray,
    churned: np.ndarray,
    order: np.ndarray,
    last: np.ndarray,
    grid: tuple[pd.Timestamp, str, int],
) -> None:
    """Stray dates, accounts that vanish without churn, and panels with no churn or no survivor.

    ``order`` holds every row sorted by account then period (a sound grid: no duplicate, no
    gap, every date on the grid) and ``last`` marks each account's last row in it.
    """
    first, kind, n_periods = grid
    rows_t = t[order]
    empty = np.flatnonzero(np.bincount(rows_t, minlength=n_periods) == 0)
    if empty.size:
        breaks = np.flatnonzero(np.diff(empty) > 1)
        starts = np.r_[empty[0], empty[breaks + 1]]
        ends = np.r_[empty[breaks], empty[-1]]
        k = int(np.argmax(ends - starts))
        before, after = order[rows_t < starts[k]], order[rows_t > ends[k]]
        report.rows(
            "period",
            f"date cut off from the other rows by {empty.size:,} period(s) without any row "
            f"({period_date(first, kind, starts[k])} to {period_date(first, kind, ends[k])}"
            f"{' and others' if starts.size > 1 else ''})",
            after if after.size <= before.size else before,
            "rows in every period from the first to the last (a date typed wrong, or rows "
            "from another export?)",
        )
        return
    last_rows = order[last]
    end = period_date(first, kind, n_periods - 1)
    vanished = report.text(
        "churned",
        f"last row of an account that stops before the last period {end} with churned = 0",
        last_rows[(t[last_rows] < n_periods - 1) & (churned[last_rows] == 0)],
        "rows up to the last period while an account is a customer, and churned = 1 on its "
        "last row if it left; these accounts are taken as lost to follow-up (censored), not "
        "as churn",
    )
    if vanished:
        report.warnings.append(vanished)
    if not churned[last_rows].any():
        report.add(
            f"churned: no account churns (churned = 1 on none of the {last_rows.size:,} "
            "accounts' last rows); the churn model needs churn to estimate retention; expected "
            "churned = 1 on the last row of each account that left"
        )
    at_end = t[last_rows] == n_periods - 1
    if at_end.any() and churned[last_rows[at_end]].all():
        report.add(
            f"churned: every account of the last period {end} churns, so none is still a "
            "customer and there is no population to project; expected the accounts still "
            "customers to have churned = 0 in the last period"
        )
