"""What the forecast reads of the files: how the North Star aggregates, and a target.

- :class:`AtLeast`: the North Star as the number of accounts at or above a level
  (``north_star_aggregate: {at_least: 3}``: "accounts completing at least 3 projects a
  week").
- :class:`Target`: a value of the aggregate to reach by a date (``target: {value: 15000, by:
  2026-03-30}``), in the tree (a standing target) or in a scenario (which wins).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from nsm_sim.spec.base import _Closed

#: Longest currency label (``EUR``, ``USD``, ``kr``...).
MAX_CURRENCY = 12


class AtLeast(_Closed):
    """The North Star as the number of accounts at or above a level in the period.

    Attributes
    ----------
    at_least : float
        The level, on the North Star's own scale (``> 0``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    at_least: float = Field(gt=0.0)


#: ``sum`` over accounts, ``mean`` per account, or the accounts at or above a level.
Aggregate = Literal["sum", "mean"] | AtLeast


class Target(_Closed):
    """A value of the North Star's aggregate to reach by a date.

    Attributes
    ----------
    value : float
        The aggregate to reach (as the tree aggregates it), finite and ``>= 0``.
    by : datetime.date
        The date by which to reach it: the aggregate of the last projected period starting on
        or before this date is compared with ``value``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    value: float = Field(ge=0.0)
    by: dt.date

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value


def aggregate_label(aggregate: Aggregate) -> str:
    """Describe an aggregate in words, for tables and figures.

    Parameters
    ----------
    aggregate : "sum", "mean" or AtLeast

    Returns
    -------
    str

    Examples
    --------
    >>> aggregate_label(AtLeast(at_least=3))
    'accounts at or above 3'
    >>> aggregate_label("sum")
    'total over accounts'
    """
    if isinstance(aggregate, AtLeast):
        return f"accounts at or above {aggregate.at_least:g}"
    return {"sum": "total over accounts", "mean": "mean per account"}[aggregate]


def currency_label(currency: str | None) -> str | None:
    """Check a currency label: short plain text, or None."""
    if currency is None:
        return None
    text = currency.strip()
    if not text or len(text) > MAX_CURRENCY or not text.isprintable():
        raise ValueError(f"expected a short currency label such as EUR, at most {MAX_CURRENCY}")
    return text
