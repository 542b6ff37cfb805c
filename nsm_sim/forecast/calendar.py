"""The forecast's calendar: the projected periods' dates and the period a target is judged in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nsm_sim.errors import SpecError
from nsm_sim.spec import Target


def period_dates(last: Any, period: str, horizon: int) -> pd.DatetimeIndex:
    """Start dates of the ``horizon`` periods after the period starting on ``last``.

    Parameters
    ----------
    last : date-like
        Start of the last observed period.
    period : {"week", "month"}
    horizon : int

    Returns
    -------
    pandas.DatetimeIndex

    Examples
    --------
    >>> [f"{d:%Y-%m-%d}" for d in period_dates("2025-12-29", "week", 2)]
    ['2026-01-05', '2026-01-12']
    >>> [f"{d:%Y-%m-%d}" for d in period_dates("2025-11-01", "month", 2)]
    ['2025-12-01', '2026-01-01']
    """
    last = pd.Timestamp(last)
    if period == "week":
        return pd.DatetimeIndex([last + pd.Timedelta(days=7 * (h + 1)) for h in range(horizon)])
    return pd.DatetimeIndex([last + pd.DateOffset(months=h + 1) for h in range(horizon)])


def target_period(target: Target, dates: pd.DatetimeIndex, last: Any, source: str) -> int:
    """Return the projected period a target is judged in: the last starting by its date.

    Parameters
    ----------
    target : Target
    dates : pandas.DatetimeIndex
        The projected periods' start dates (long enough to reach the target).
    last : date-like
        Start of the last observed period.
    source : str
        Named in the error (the scenario or tree file).

    Returns
    -------
    int

    Raises
    ------
    SpecError
        The date is before the first projected period.
    """
    by = pd.Timestamp(target.by)
    k = int(np.searchsorted(dates.values, by.to_datetime64(), side="right")) - 1
    if k < 0:
        raise SpecError(
            source,
            [
                f"target.by: {by:%Y-%m-%d} is before the first projected period "
                f"({dates[0]:%Y-%m-%d}; the data end with the period of "
                f"{pd.Timestamp(last):%Y-%m-%d}); expected a later date"
            ],
        )
    if k >= len(dates):
        raise SpecError(source, [f"target.by: {by:%Y-%m-%d} is beyond the projected periods"])
    return k


def periods_to(target: Target, last: Any, period: str) -> int:
    """Projected periods needed to reach a target's date (0 when it is before the first)."""
    by = pd.Timestamp(target.by)
    last = pd.Timestamp(last)
    if period == "week":
        return max(int((by - last).days // 7), 0)
    months = (by.year - last.year) * 12 + (by.month - last.month)
    return max(months - (1 if by.day < last.day else 0), 0)
