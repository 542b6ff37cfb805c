"""The panel: load, check against a metric tree, derive tenure, describe.

Reductions of a checked panel live in :mod:`nsm_sim.data.reduce` (sufficient statistics,
the starting population) and :mod:`nsm_sim.data.cells` (churn cells).

The data contract checked by :func:`check_frame` (every problem of a file is reported at
once, each with its column, the count and up to five offending ``(account, period)`` rows):

* columns: ``account_id``, ``period``, ``churned``, the tree's segment column (if it names
  one), every metric of the tree and every candidate, the value column; nothing else;
* metric and value columns: numbers, finite, not missing, ``>= 0`` and below ``1e15``;
* ``churned``: 0 or 1, and 1 only on an account's last row (no rows after a churn);
* ``period``: an ISO 8601 date (``2025-01-06``); one row per account and period;
* the grid: weekly periods lie a multiple of 7 days from the first period of the panel;
  monthly periods fall on the same day of the month as the first period (use the 1st, or
  any day up to the 28th); an account's rows are consecutive periods (no gaps);
* coverage: every period from the first to the last holds rows (a stray date far from the
  others is named);
* enough to fit: at least 50 accounts and 8 periods; some accounts churn and some are still
  customers in the last period; every metric of the tree and every candidate varies; every
  node of the tree moves within accounts (:func:`within_share` at least
  :data:`STATIC_SHARE`).

An account whose rows stop before the last period without ``churned = 1`` is not refused
(it is taken as lost to follow-up, censored) but named in :attr:`Panel.warnings`, which
:func:`describe` passes on to the fit's card and from there to every use of the fit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nsm_sim.data.rows import MAX_EXAMPLES as MAX_EXAMPLES  # offending rows named per problem
from nsm_sim.data.rows import (
    Reporter,
    check_coverage,
    numeric_column,
    parse_periods,
    period_date,
    period_index,
)
from nsm_sim.errors import DataError, hint
from nsm_sim.numeric import demean_two_way
from nsm_sim.spec import MetricTree, edge_label

#: Segment label used when the tree names no segment column.
ALL_SEGMENTS = "all"


@dataclass(frozen=True)
class Panel:
    """A checked panel: one row per account per period while the account is a customer.

    Attributes
    ----------
    frame : pandas.DataFrame
        Sorted by ``account_id`` then ``period``. Columns: ``account_id``, ``period``
        (Timestamp), ``segment`` (str; ``"all"`` when the tree has no segment column), one
        column per metric of the tree and per candidate, ``churned`` (0/1), the value column
        if any, ``t`` (period index, 0 for the first period of the panel) and ``tenure``
        (periods since the account's first row, 0 on that row).
    tree : MetricTree
        The tree the panel was checked against.
    source : str
        The file it came from.
    segments : tuple of str
        Segment labels, sorted.
    periods : pandas.DatetimeIndex
        The period grid, first to last.
    fingerprint : str
        A hash of the panel's content.
    warnings : tuple of str
        What the check found doubtful without refusing it (accounts that vanish before the
        last period without churning), one line each with its rows.
    """

    frame: pd.DataFrame
    tree: MetricTree
    source: str
    segments: tuple[str, ...]
    periods: pd.DatetimeIndex
    fingerprint: str
    warnings: tuple[str, ...] = ()


#: Smallest panel that can be fitted.
MIN_ACCOUNTS = 50
MIN_PERIODS = 8
#: Metric and value columns hold numbers below this (their sums must stay finite).
MAX_VALUE = 1e15
#: A metric whose :func:`within_share` is below this never moves within an account.
STATIC_SHARE = 1e-6
#: Columns the checked frame derives; no metric may use these names.
_DERIVED = ("segment", "t", "tenure")
_US_PER_DAY = 86_400_000_000


# --------------------------------------------------------------------------- load and check


def load_panel(path: str | Path, tree: MetricTree) -> Panel:
    """Read a panel file (CSV or Parquet) and check it against a metric tree.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.parquet`` file, one row per account per period.
    tree : MetricTree
        The tree whose metrics the panel must hold.

    Returns
    -------
    Panel

    Raises
    ------
    DataError
        When the file is missing or unreadable, or with every problem of its content (see
        :func:`check_frame`).
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DataError(source, ["file not found"])
    suffix = path.suffix.lower()
    if path.is_dir():
        raise DataError(source, ["is a folder; expected a .csv or .parquet file"])
    if suffix not in (".csv", ".parquet", ".pq"):
        raise DataError(source, [f"expected a .csv or .parquet file, got {suffix or 'none'!r}"])
    kind = "CSV" if suffix == ".csv" else "Parquet"
    try:
        if suffix == ".csv":
            text_columns = {"account_id": "str", **({tree.segment: "str"} if tree.segment else {})}
            frame = pd.read_csv(path, dtype=text_columns, encoding="utf-8")
        else:
            frame = pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise DataError(
            source,
            [
                f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x}: another encoding, or a "
                "binary file); expected a CSV file saved as UTF-8"
            ],
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(
            source,
            [
                "not a readable CSV file (it is empty); expected a header row and one row per "
                "account-period"
            ],
        ) from None
    except MemoryError:
        raise DataError(source, ["too large to read into the memory available"]) from None
    except Exception as exc:  # noqa: BLE001 - the readers raise many kinds; all mean the same
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(source, [f"not a readable {kind} file ({first})"]) from None
    if not isinstance(frame.columns, pd.Index) or frame.columns.nlevels != 1:
        raise DataError(source, ["not a flat table; expected one header row of column names"])
    return check_frame(frame, tree, source=source)


def _expected_columns(tree: MetricTree) -> dict[str, str]:
    """Map each required column to what it must hold."""
    out = {
        "account_id": "the account (string or integer)",
        "period": "the start date of the period",
    }
    if tree.segment:
        out[tree.segment] = "the segment of the account (the tree's segment column)"
    for m in tree.metrics:
        out[m] = "a metric of the tree" if m in tree.nodes else "a candidate metric"
    for v in tree.value_columns:
        out[v] = "the value column (value per account per period)"
    out["churned"] = "1 on an account's last row if it churned after it, else 0"
    return out


def _reserved_names(tree: MetricTree) -> list[str]:
    taken = [*tree.metrics, *tree.value_columns]
    return [
        name
        for name in taken
        if name in _DERIVED and not (name == "segment" and tree.segment == "segment")
    ]


def check_frame(frame: pd.DataFrame, tree: MetricTree, source: str = "<frame>") -> Panel:
    """Check a panel frame against a metric tree and derive ``segment``, ``t`` and ``tenure``.

    Every rule of the data contract (see the module docstring) is checked and all problems
    are reported together.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per account per period, as read from a file.
    tree : MetricTree
        The tree whose metrics the panel must hold.
    source : str, default "<frame>"
        Name of the file, used in messages and kept on the panel.

    Returns
    -------
    Panel
        Sorted by account then period, with the check's warnings; see :class:`Panel`.

    Raises
    ------
    DataError
        With one line per problem: the column, what is wrong, the number of rows and up to
        five of them as ``(account, period)``, and what was expected.
    """
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    report = Reporter(frame)
    n = len(frame)

    # columns
    expected = _expected_columns(tree)
    present = list(frame.columns)
    twice = sorted({c for c in present if present.count(c) > 1})
    for c in twice:
        report.add(f"{c}: the column appears more than once; expected each column once")
    if twice:
        raise DataError(source, report.problems)
    for c in _reserved_names(tree):
        report.add(f"{c}: metric name is reserved for a derived column; rename the metric")
    unknown = [c for c in present if c not in expected]
    for c, what in expected.items():
        if c not in frame:
            report.add(f"{c}: missing column{hint(c, unknown)}; expected {what}")
    for c in unknown:
        report.add(
            f"{c}: unknown column{hint(c, list(expected))}; "
            f"expected only the columns {', '.join(expected)}"
        )

    # values, column by column
    acct_ok = np.ones(n, dtype=bool)
    if "account_id" in frame:
        acct_ok = frame["account_id"].notna().to_numpy()
        report.rows("account_id", "missing account", ~acct_ok, "an account id in every row")
    periods_us = np.full(n, np.iinfo(np.int64).min)
    period_ok = np.zeros(n, dtype=bool)
    if "period" in frame:
        periods_us = parse_periods(frame["period"])
        period_ok = periods_us != np.iinfo(np.int64).min
        report.rows(
            "period",
            "missing or unreadable date",
            ~period_ok,
            "an ISO 8601 date such as 2025-01-06",
        )
    if tree.segment and tree.segment in frame:
        report.rows(
            tree.segment,
            "missing segment",
            frame[tree.segment].isna().to_numpy(),
            "a segment label in every row",
        )
    values: dict[str, np.ndarray] = {}
    for m in (*tree.metrics, *tree.value_columns):
        if m not in frame:
            continue
        v, non_numeric = numeric_column(frame[m])
        values[m] = v
        want = "a number >= 0 in every row"
        report.rows(m, "value is not a number", non_numeric, want)
        report.rows(m, "missing value", np.isnan(v) & ~non_numeric, want)
        report.rows(m, "infinite value", np.isinf(v), want)
        report.rows(m, "negative value", v < 0, want)
        report.rows(
            m,
            f"value of {MAX_VALUE:.0e} or more",
            np.isfinite(v) & (v >= MAX_VALUE),
            f"a number below {MAX_VALUE:.0e} (a count or an amount per account and period)",
        )
    churned = np.zeros(n)
    churn_ok = np.zeros(n, dtype=bool)
    if "churned" in frame:
        churned, _ = numeric_column(frame["churned"])
        churn_ok = (churned == 0) | (churned == 1)
        report.rows(
            "churned",
            "value other than 0 or 1 (or missing)",
            ~churn_ok,
            "0, or 1 on an account's last row if it churned after that period",
        )

    # rows: duplicates, grid, gaps, churn order, size
    has_keys = "account_id" in frame and "period" in frame
    ok = acct_ok & period_ok if has_keys else np.zeros(n, dtype=bool)
    accounts = frame["account_id"] if "account_id" in frame else pd.Series(np.zeros(n))
    if accounts.dtype.kind not in "iu":
        accounts = accounts.astype(str)
    codes = np.full(n, -1, dtype=np.int64)
    codes[ok] = pd.factorize(accounts[ok], sort=True)[0]
    t = np.full(n, -1, dtype=np.int64)
    n_periods = 0
    first_stamp = pd.Timestamp(0)
    unique_key = ok.copy()
    if ok.any():
        key = pd.DataFrame({"a": codes[ok], "p": periods_us[ok]})
        dup = np.zeros(n, dtype=bool)
        dup[ok] = key.duplicated(keep=False).to_numpy()
        report.rows("account_id, period", "duplicate row", dup, "one row per account and period")
        unique_key &= ~dup

        first = int(periods_us[ok].min())
        first_stamp = pd.Timestamp(first, unit="us")
        if tree.period == "week":
            offset = periods_us - first
            on_grid = ok & (offset % (7 * _US_PER_DAY) == 0)
            t[on_grid] = offset[on_grid] // (7 * _US_PER_DAY)
            grid_rule = (
                f"weekly periods: dates a multiple of 7 days from the first period "
                f"{first_stamp:%Y-%m-%d} (a {first_stamp:%A})"
            )
        else:
            stamps = pd.DatetimeIndex(np.where(ok, periods_us, first).astype("datetime64[us]"))
            same_day = (stamps.day == first_stamp.day) & ((periods_us - first) % _US_PER_DAY == 0)
            on_grid = ok & np.asarray(same_day)
            months = (stamps.year - first_stamp.year) * 12 + (stamps.month - first_stamp.month)
            t[on_grid] = np.asarray(months)[on_grid]
            grid_rule = (
                f"monthly periods: day {first_stamp.day} of each month, as the first period "
                f"{first_stamp:%Y-%m-%d}"
            )
            if first_stamp.day > 28:
                report.add(
                    f"period: the first period {first_stamp:%Y-%m-%d} falls on day "
                    f"{first_stamp.day}, which some months lack; expected monthly periods on "
                    "the same day of each month, at most the 28th (the 1st is usual)"
                )
        report.rows("period", "date off the period grid", ok & ~on_grid, grid_rule)

        # gaps inside an account, among on-grid unique rows
        sel = np.flatnonzero(on_grid & unique_key)
        order = sel[np.lexsort((t[sel], codes[sel]))]
        same = codes[order][1:] == codes[order][:-1]
        gap = same & (np.diff(t[order]) > 1)
        report.rows(
            "period",
            "gap inside an account's rows (periods missing just before this row)",
            order[1:][gap],
            f"consecutive periods while the account is a customer ({grid_rule})",
        )

        # churned = 1 only on an account's last row
        sel = np.flatnonzero(unique_key & churn_ok)
        order = sel[np.lexsort((periods_us[sel], codes[sel]))]
        last = np.ones(order.size, dtype=bool)
        last[:-1] = codes[order][1:] != codes[order][:-1]
        report.rows(
            "churned",
            "churned=1 with later rows of the same account (rows after it churned)",
            order[(churned[order] == 1) & ~last],
            "churned=1 only on an account's last row, and no rows after it",
        )

        n_periods = int(t[on_grid].max()) + 1 if on_grid.any() else 0
        sound = not (dup.any() or (ok & ~on_grid).any() or gap.any() or not churn_ok[ok].all())
        if sound:
            check_coverage(report, t, churned, order, last, (first_stamp, tree.period, n_periods))
    n_accounts = int(accounts[acct_ok].nunique()) if "account_id" in frame else 0
    # size, judged on the rows whose key is readable (unreadable keys are reported above)
    if has_keys and (acct_ok.any() or n == 0) and n_accounts < MIN_ACCOUNTS:
        report.add(
            f"account_id: only {n_accounts} account(s); expected at least {MIN_ACCOUNTS} "
            "accounts to fit"
        )
    if has_keys and (ok.any() or n == 0) and n_periods < MIN_PERIODS:
        span = (
            f" ({first_stamp:%Y-%m-%d} to {period_date(first_stamp, tree.period, n_periods - 1)})"
            if n_periods
            else ""
        )
        report.add(
            f"period: only {n_periods} period(s){span}; expected at least {MIN_PERIODS} "
            f"{tree.period}ly periods to fit"
        )
    for m in tree.metrics:
        v = values.get(m)
        if v is not None and n and not np.isnan(v).any() and v.min() == v.max():
            report.add(
                f"{m}: the same value ({v[0]:g}) in all {n:,} rows; a metric that never changes "
                "carries no information (its elasticity and its effect on churn cannot be "
                "estimated); expected values that vary"
            )
    if not report.problems:
        _check_nodes_move(report, tree, values, codes)
    if report.problems:
        raise DataError(source, report.problems)
    periods = period_index(first_stamp, tree.period, n_periods)

    # the checked panel
    order = np.lexsort((periods_us, codes))
    codes_sorted = codes[order]
    t_sorted = t[order]
    starts = np.flatnonzero(np.r_[True, codes_sorted[1:] != codes_sorted[:-1]])
    counts = np.diff(np.r_[starts, n])
    tenure = t_sorted - np.repeat(t_sorted[starts], counts)
    segment = (
        frame[tree.segment].astype(str).to_numpy()[order]
        if tree.segment
        else np.full(n, ALL_SEGMENTS)
    )
    columns: dict[str, Any] = {
        "account_id": accounts.to_numpy()[order],
        "period": pd.DatetimeIndex(periods_us[order].astype("datetime64[us]")),
        "segment": segment,
    }
    for m in (*tree.metrics, *tree.value_columns):
        columns[m] = values[m][order]
    columns["churned"] = churned[order].astype(np.int64)
    columns["t"] = t_sorted
    columns["tenure"] = tenure
    out = pd.DataFrame(columns)
    return Panel(
        frame=out,
        tree=tree,
        source=source,
        segments=tuple(sorted(str(s) for s in pd.unique(segment))),
        periods=periods,
        fingerprint=_fingerprint(out),
        warnings=tuple(report.warnings),
    )


def within_share(Z: np.ndarray, accounts: np.ndarray, periods: np.ndarray | None = None):
    """Share of each column's variance within accounts (beyond shocks common to all accounts).

    The sum of squares left after removing account (and period) effects
    (:func:`nsm_sim.numeric.demean_two_way`) over the sum of squares around the column's mean:
    0 for a column constant within every account (or constant). Scale-free; below
    :data:`STATIC_SHARE` the column is *static*: no effect of its changes within accounts can
    be estimated.

    Parameters
    ----------
    Z : ndarray, shape (n,) or (n, K)
        Values (``log1p`` of a metric).
    accounts : ndarray of int, shape (n,)
        Account codes.
    periods : ndarray of int, shape (n,), optional
        Period codes; without them only account means are removed.

    Returns
    -------
    ndarray, shape (K,)

    Examples
    --------
    >>> acc = np.array([0, 0, 1, 1])
    >>> within_share(np.array([[1.0, 1.0], [1.0, 2.0], [3.0, 3.0], [3.0, 4.0]]), acc)
    array([0. , 0.2])
    """
    Z = np.asarray(Z, dtype=float).reshape(len(Z), -1)
    total = ((Z - Z.mean(axis=0)) ** 2).sum(axis=0)
    within = (demean_two_way(Z, accounts, periods) ** 2).sum(axis=0)
    return np.where(total > 0, within / np.where(total > 0, total, 1.0), 0.0)


def _check_nodes_move(report: Reporter, tree: MetricTree, values, codes) -> None:
    """Report each node of the tree (that varies at all) constant within accounts."""
    nodes = [m for m in tree.nodes if values[m].min() < values[m].max()]
    if not nodes:
        return
    shares = within_share(np.log1p(np.column_stack([values[m] for m in nodes])), codes)
    for m, share in zip(nodes, shares, strict=True):
        if share >= STATIC_SHARE:
            continue
        where = (
            "the North Star (its elasticities to its inputs come from its changes)"
            if m == tree.north_star
            else f"an input of the tree (edge {edge_label(tree.parent[m], m)})"
        )
        report.add(
            f"{m}: never moves within an account (within-account share of its log1p variance "
            f"{share:.1e}, below {STATIC_SHARE:.0e}); it is {where}, and an input that never "
            "moves within an account cannot have an estimated elasticity; expected a metric "
            "that changes within accounts (a fixed trait such as plan size at signup belongs "
            "in the segment column or among the candidates)"
        )


def _fingerprint(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    digest.update("|".join(f"{c}:{frame[c].dtype}" for c in frame.columns).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
