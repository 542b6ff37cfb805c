"""Numbers and values as text, the same way in the terminal, the tables and the HTML report."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def fmt(value: Any, digits: int = 3) -> str:
    """Format a number for a table: significant digits, thousands separators, '-' for missing.

    Parameters
    ----------
    value : Any
        A number, a boolean, None or anything else (shown with ``str``).
    digits : int, default 3
        Significant digits of a float between 0.001 and 100.

    Returns
    -------
    str

    Examples
    --------
    >>> fmt(0.123456), fmt(123456.7), fmt(12), fmt(float("nan")), fmt(True)
    ('0.123', '123,457', '12', '-', 'yes')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return "-"
        if number != 0 and abs(number) < 1e-3:
            return f"{number:,.{digits}g}"
        if abs(number) >= 100:
            return f"{number:,.0f}"
        return f"{number:.{digits}g}"
    return str(value)


def format_cell(value: Any) -> str:
    """Format one table cell as text: numbers to 3 significant digits, '-' when missing.

    Parameters
    ----------
    value : Any
        A cell of a DataFrame: a number, a string, a time stamp, a missing value or a
        sequence (joined with commas).

    Returns
    -------
    str

    Examples
    --------
    >>> format_cell(0.123456), format_cell(float("nan")), format_cell(12)
    ('0.123', '-', '12')
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return "-"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        return ", ".join(format_cell(v) for v in value)
    return fmt(value)


def interval_text(mean: Any, low: Any, high: Any) -> str:
    """Return a mean and its interval as ``"mean [low, high]"``.

    Examples
    --------
    >>> interval_text(0.5, 0.25, 0.75)
    '0.5 [0.25, 0.75]'
    """
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def spread_text(mean: Any, low: Any, high: Any) -> str:
    """Return a mean and its interval as ``"mean (low to high)"``.

    Examples
    --------
    >>> spread_text(3.0, 1.0, 5.0)
    '3 (1 to 5)'
    """
    return f"{fmt(mean)} ({fmt(low)} to {fmt(high)})"


__all__ = ["fmt", "format_cell", "interval_text", "spread_text"]
