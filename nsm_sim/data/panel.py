"""The panel: load, check against a metric tree, derive tenure, reduce to sufficient statistics.

The models never see rows. A parent node and its children reduce to per-segment sufficient
statistics of a Gaussian linear model (:class:`DriverStats`); churn reduces to Binomial cells
(:class:`ChurnCells`); the projection starts from a table of cells of the last period
(:class:`Population`).

The data contract checked by :func:`check_frame` (every problem of a file is reported at
once, each with its column, the count and up to five offending ``(account, period)`` rows):

* columns: ``account_id``, ``period``, ``churned``, the tree's segment column (if it names
  one), every metric of the tree and every candidate, the value column; nothing else;
* metric and value columns: numbers, finite, not missing, ``>= 0``;
* ``churned``: 0 or 1, and 1 only on an account's last row (no rows after a churn);
* ``period``: an ISO 8601 date (``2025-01-06``); one row per account and period;
* the grid: weekly periods lie a multiple of 7 days from the first period of the panel;
  monthly periods fall on the same day of the month as the first period (use the 1st, or
  any day up to the 28th); an account's rows are consecutive periods (no gaps);
* at least 50 accounts and 8 periods, enough to fit.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from nsm_sim.errors import DataError
from nsm_sim.spec import MetricTree

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
    """

    frame: pd.DataFrame
    tree: MetricTree
    source: str
    segments: tuple[str, ...]
    periods: pd.DatetimeIndex
    fingerprint: str


@dataclass(frozen=True)
class DriverStats:
    """Per-segment sufficient statistics of ``y = log1p(parent)`` on ``X = log1p(children)``.

    With ``within=True`` ``y`` and ``X`` are residualised on account and period effects
    (two-way within transformation) before the sums are taken, so the model has no
    intercept; otherwise they are raw and the model has an intercept per segment.

    Attributes
    ----------
    parent : str
    children : tuple of str
    segments : tuple of str
    within : bool
    n : ndarray, shape (S,)
        Rows per segment.
    n_absorbed : ndarray, shape (S,)
        Fixed effects absorbed by the within transformation (0 when pooled), for degrees of
        freedom.
    sum_y, sum_y2 : ndarray, shape (S,)
    sum_x : ndarray, shape (S, K)
    XtX : ndarray, shape (S, K, K)
    Xty : ndarray, shape (S, K)
    """

    parent: str
    children: tuple[str, ...]
    segments: tuple[str, ...]
    within: bool
    n: np.ndarray
    n_absorbed: np.ndarray
    sum_y: np.ndarray
    sum_y2: np.ndarray
    sum_x: np.ndarray
    XtX: np.ndarray
    Xty: np.ndarray


@dataclass(frozen=True)
class ChurnCells:
    """Binomial cells of the churn model: segment x tenure band x metric level.

    Attributes
    ----------
    metric : str
        The metric whose level defines the cells.
    segments : tuple of str
    frame : pandas.DataFrame
        One row per non-empty cell: ``segment`` (str), ``segment_idx`` (int, into
        ``segments``), ``tenure_band`` (int, index of the band in ``tenure_bands``),
        ``log_tenure`` (mean of ``log1p(tenure)`` in the
        cell), ``level`` (mean metric value), ``x`` (mean of ``log1p(metric)``), ``at_risk``
        (rows) and ``churned`` (churn events).
    """

    metric: str
    segments: tuple[str, ...]
    frame: pd.DataFrame


@dataclass(frozen=True)
class Population:
    """The accounts alive at the end of the panel, grouped into cells for the projection.

    Attributes
    ----------
    segments : tuple of str
    frame : pandas.DataFrame
        One row per cell (segment x North Star level): ``segment`` (str), ``segment_idx``
        (int), ``accounts`` (alive at the last period), ``north_star`` (mean North Star per
        account per period), ``tenure`` (mean tenure, periods) and ``value`` (mean value per
        account per period; 0 when the tree names no value column).
    """

    segments: tuple[str, ...]
    frame: pd.DataFrame


#: Smallest panel that can be fitted.
MIN_ACCOUNTS = 50
MIN_PERIODS = 8
#: Offending rows named per problem.
MAX_EXAMPLES = 5
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
    try:
        if suffix == ".csv":
            text_columns = {"account_id": "str", **({tree.segment: "str"} if tree.segment else {})}
            frame = pd.read_csv(path, dtype=text_columns)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise DataError(source, [f"expected a .csv or .parquet file, got {suffix or 'none'!r}"])
    except DataError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        kind = "CSV" if suffix == ".csv" else "Parquet"
        raise DataError(source, [f"not a readable {kind} file: {exc}"]) from None
    return check_frame(frame, tree, source=source)


def _hint(word: str, options: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


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


def _format_period(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "<missing>"
    if isinstance(value, pd.Timestamp | np.datetime64):
        stamp = pd.Timestamp(value)
        return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.isoformat()
    return str(value)


def _format_account(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "<missing>"
    return str(value)


class _Reporter:
    """Collects problems, naming offending rows by (account, period) as written in the file."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.problems: list[str] = []

    def row(self, i: int) -> str:
        f = self.frame
        acct = _format_account(f["account_id"].iat[i]) if "account_id" in f else f"row {i}"
        per = _format_period(f["period"].iat[i]) if "period" in f else "?"
        return f"({acct}, {per})"

    def rows(self, column: str, what: str, where: np.ndarray, expected: str) -> None:
        idx = np.flatnonzero(where) if where.dtype == bool else np.asarray(where)
        if idx.size == 0:
            return
        shown = ", ".join(self.row(int(i)) for i in idx[:MAX_EXAMPLES])
        first = f", first {MAX_EXAMPLES}" if idx.size > MAX_EXAMPLES else ""
        self.problems.append(
            f"{column}: {what} in {idx.size} row(s){first} (account, period): {shown}; "
            f"expected {expected}"
        )

    def add(self, text: str) -> None:
        self.problems.append(text)


def _numeric(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return float values (NaN where missing or not a number) and the non-numeric mask."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        return values, np.zeros(len(col), dtype=bool)
    coerced = pd.to_numeric(col, errors="coerce")
    values = coerced.to_numpy(dtype=float, na_value=np.nan)
    non_numeric = np.isnan(values) & col.notna().to_numpy()
    return values, non_numeric


def _parse_periods(col: pd.Series) -> np.ndarray:
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
    stamps = np.append(parsed.as_unit("us").asi8, np.iinfo(np.int64).min)
    return stamps[codes]  # code -1 (missing) picks the trailing NaT


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
        Sorted by account then period; see :class:`Panel`.

    Raises
    ------
    DataError
        With one line per problem: the column, what is wrong, the number of rows and up to
        five of them as ``(account, period)``, and what was expected.
    """
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    report = _Reporter(frame)
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
            report.add(f"{c}: missing column{_hint(c, unknown)}; expected {what}")
    for c in unknown:
        report.add(
            f"{c}: unknown column{_hint(c, list(expected))}; "
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
        periods_us = _parse_periods(frame["period"])
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
        v, non_numeric = _numeric(frame[m])
        values[m] = v
        want = "a number >= 0 in every row"
        report.rows(m, "value is not a number", non_numeric, want)
        report.rows(m, "missing value", np.isnan(v) & ~non_numeric, want)
        report.rows(m, "infinite value", np.isinf(v), want)
        report.rows(m, "negative value", v < 0, want)
    churned = np.zeros(n)
    churn_ok = np.zeros(n, dtype=bool)
    if "churned" in frame:
        churned, _ = _numeric(frame["churned"])
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
    periods = pd.DatetimeIndex([], dtype="datetime64[us]")
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
        if tree.period == "week":
            periods = pd.DatetimeIndex(
                first_stamp + pd.to_timedelta(7 * np.arange(n_periods), unit="D")
            ).as_unit("us")
        else:
            periods = pd.DatetimeIndex(
                [first_stamp + pd.DateOffset(months=k) for k in range(n_periods)]
            ).as_unit("us")
    # size, judged on the rows whose key is readable (unreadable keys are reported above)
    n_accounts = int(accounts[acct_ok].nunique()) if "account_id" in frame else 0
    if has_keys and (acct_ok.any() or n == 0) and n_accounts < MIN_ACCOUNTS:
        report.add(
            f"account_id: only {n_accounts} account(s); expected at least {MIN_ACCOUNTS} "
            "accounts to fit"
        )
    if has_keys and (ok.any() or n == 0) and len(periods) < MIN_PERIODS:
        span = f" ({periods[0]:%Y-%m-%d} to {periods[-1]:%Y-%m-%d})" if len(periods) else ""
        report.add(
            f"period: only {len(periods)} period(s){span}; expected at least {MIN_PERIODS} "
            f"{tree.period}ly periods to fit"
        )
    if report.problems:
        raise DataError(source, report.problems)

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
    )


def _fingerprint(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    digest.update("|".join(f"{c}:{frame[c].dtype}" for c in frame.columns).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- reductions


def _segment_codes(panel: Panel) -> np.ndarray:
    return pd.Categorical(panel.frame["segment"], categories=list(panel.segments)).codes


def demean_two_way(
    Z: np.ndarray,
    accounts: np.ndarray,
    periods: np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> np.ndarray:
    """Remove account and period effects from the columns of ``Z`` (two-way within transform).

    Alternating projections: subtract account means, then period means, until no value
    changes by more than ``tol``. The limit is the residual of a regression on account and
    period dummies, exact for unbalanced panels.

    Parameters
    ----------
    Z : ndarray, shape (n,) or (n, K)
        Values to transform.
    accounts, periods : ndarray of int, shape (n,)
        Codes ``0..A-1`` and ``0..P-1`` of each row's account and period.
    tol : float, default 1e-10
        Largest change of any value in the last sweep when it stops.
    max_iter : int, default 100000
        Sweeps before giving up.

    Returns
    -------
    ndarray
        The residuals, the shape of ``Z``.

    Examples
    --------
    >>> Z = np.array([1.0, 2.0, 3.0, 5.0])
    >>> demean_two_way(Z, np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])).round(12) + 0.0
    array([ 0.25, -0.25, -0.25,  0.25])
    """
    Z = np.asarray(Z, dtype=float)
    out = Z.reshape(len(Z), -1).copy()
    n_a, n_p = int(accounts.max()) + 1, int(periods.max()) + 1
    count_a = np.bincount(accounts, minlength=n_a)
    count_p = np.bincount(periods, minlength=n_p)
    for j in range(out.shape[1]):
        v = out[:, j]
        v -= (np.bincount(accounts, v, n_a) / count_a)[accounts]
        for _ in range(max_iter):
            step_p = (np.bincount(periods, v, n_p) / count_p)[periods]
            v -= step_p
            step_a = (np.bincount(accounts, v, n_a) / count_a)[accounts]
            v -= step_a
            if max(np.abs(step_p).max(), np.abs(step_a).max()) < tol:
                break
        else:
            raise RuntimeError(f"two-way demeaning did not converge in {max_iter} sweeps")
        out[:, j] = v
    return out.reshape(Z.shape)


def _absorbed(accounts: np.ndarray, periods: np.ndarray) -> int:
    """Degrees of freedom taken by account and period effects: A + P - connected components."""
    n_a, n_p = int(accounts.max()) + 1, int(periods.max()) + 1
    graph = coo_matrix(
        (np.ones(len(accounts)), (accounts, n_a + periods)), shape=(n_a + n_p, n_a + n_p)
    )
    n_components = connected_components(graph, directed=False)[0]
    return n_a + n_p - n_components


def driver_stats(panel: Panel, parent: str, *, within: bool = True) -> DriverStats:
    """Reduce a parent node and its children to per-segment sufficient statistics.

    ``y = log1p(parent)`` and ``X = log1p(children)`` (children from
    ``panel.tree.children[parent]``, in tree order).

    Parameters
    ----------
    panel : Panel
        A checked panel.
    parent : str
        A parent node of the tree (the North Star or an input with inputs of its own).
    within : bool, default True
        Remove account and period effects within each segment (:func:`demean_two_way`), so
        that account size and shocks common to all accounts do not bias the elasticities;
        ``n_absorbed`` counts the effects removed (accounts + periods - 1 for a connected
        panel). ``False`` gives the raw (pooled) sums.

    Returns
    -------
    DriverStats

    Examples
    --------
    >>> from nsm_sim.synth import generate_world
    >>> world = generate_world(accounts=300, periods=12, seed=3)
    >>> stats = driver_stats(check_frame(world.panel, world.tree), "active_seats")
    >>> stats.children, stats.XtX.shape
    (('invites_sent', 'seats_activated'), (3, 2, 2))
    """
    children = panel.tree.children.get(parent)
    if not children:
        parents = ", ".join(panel.tree.children)
        raise ValueError(f"{parent!r} is not a parent node of the tree; parents: {parents}")
    f = panel.frame
    y = np.log1p(f[parent].to_numpy(dtype=float))
    X = np.log1p(f[list(children)].to_numpy(dtype=float))
    seg = _segment_codes(panel)
    S, K = len(panel.segments), len(children)
    n = np.zeros(S, dtype=np.int64)
    n_absorbed = np.zeros(S, dtype=np.int64)
    sum_y, sum_y2 = np.zeros(S), np.zeros(S)
    sum_x, XtX, Xty = np.zeros((S, K)), np.zeros((S, K, K)), np.zeros((S, K))
    account_codes = pd.factorize(f["account_id"])[0]
    t = f["t"].to_numpy()
    for s in range(S):
        rows = seg == s
        if not rows.any():
            continue
        Z = np.column_stack([y[rows], X[rows]])
        if within:
            a = pd.factorize(account_codes[rows])[0]
            p = pd.factorize(t[rows])[0]
            Z = demean_two_way(Z, a, p)
            n_absorbed[s] = _absorbed(a, p)
        ys, Xs = Z[:, 0], Z[:, 1:]
        n[s] = rows.sum()
        sum_y[s], sum_y2[s] = ys.sum(), ys @ ys
        sum_x[s] = Xs.sum(axis=0)
        XtX[s] = Xs.T @ Xs
        Xty[s] = Xs.T @ ys
    return DriverStats(
        parent=parent,
        children=tuple(children),
        segments=panel.segments,
        within=within,
        n=n,
        n_absorbed=n_absorbed,
        sum_y=sum_y,
        sum_y2=sum_y2,
        sum_x=sum_x,
        XtX=XtX,
        Xty=Xty,
    )


def _level_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin index per value: exact levels when there are at most ``bins``, else quantile bins."""
    levels = np.unique(values)
    if levels.size <= bins:
        return np.searchsorted(levels, values)
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right")


def churn_cells(
    panel: Panel,
    metric: str | None = None,
    *,
    rows: np.ndarray | pd.Series | None = None,
    bins: int = 30,
    tenure_bands: tuple[int, ...] = (0, 4, 13, 26, 52),
) -> ChurnCells:
    """Reduce account-periods to Binomial cells: segment x tenure band x metric level.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    metric : str, optional
        The metric whose level defines the cells; the North Star by default.
    rows : array_like of bool, optional
        Rows of ``panel.frame`` to use (e.g. the earlier periods only, for fitting before
        scoring on later ones); all rows by default.
    bins : int, default 30
        Levels of the metric: each distinct value when there are at most ``bins`` of them
        (exact), else ``bins`` quantile bins of the selected rows.
    tenure_bands : tuple of int, default (0, 4, 13, 26, 52)
        Left edges of the tenure bands, in periods, increasing from 0; the last band is
        open-ended.

    Returns
    -------
    ChurnCells
        One row per non-empty cell; ``at_risk`` sums to the selected rows and ``churned`` to
        their churn events.

    Examples
    --------
    >>> from nsm_sim.synth import generate_world
    >>> world = generate_world(accounts=300, periods=12, seed=3)
    >>> panel = check_frame(world.panel, world.tree)
    >>> int(churn_cells(panel).frame["at_risk"].sum()) == len(panel.frame)
    True
    """
    metric = metric or panel.tree.north_star
    f = panel.frame
    if metric not in f:
        raise ValueError(f"{metric!r} is not a metric of the panel{_hint(metric, f.columns)}")
    bands = np.asarray(tenure_bands)
    if bands.size == 0 or bands[0] != 0 or np.any(np.diff(bands) <= 0):
        raise ValueError(f"tenure_bands must increase from 0, got {tuple(tenure_bands)}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    mask = np.ones(len(f), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    if mask.shape != (len(f),):
        raise ValueError(f"rows must be a boolean mask of length {len(f)}, got {mask.shape}")
    values = f[metric].to_numpy(dtype=float)[mask]
    tenure = f["tenure"].to_numpy()[mask]
    cells = pd.DataFrame(
        {
            "segment_idx": _segment_codes(panel)[mask].astype(np.int64),
            "tenure_band": np.searchsorted(bands, tenure, side="right") - 1,
            "level_bin": _level_bins(values, bins) if values.size else np.zeros(0, np.int64),
            "log_tenure": np.log1p(tenure),
            "level": values,
            "x": np.log1p(values),
            "churned": f["churned"].to_numpy()[mask],
        }
    )
    out = (
        cells.groupby(["segment_idx", "tenure_band", "level_bin"], sort=True)
        .agg(
            log_tenure=("log_tenure", "mean"),
            level=("level", "mean"),
            x=("x", "mean"),
            at_risk=("churned", "size"),
            churned=("churned", "sum"),
        )
        .reset_index()
        .drop(columns="level_bin")
    )
    out.insert(0, "segment", np.asarray(panel.segments, dtype=object)[out["segment_idx"]])
    out["segment"] = out["segment"].astype(str)
    out = out.astype({"at_risk": np.int64, "churned": np.int64})
    return ChurnCells(metric=metric, segments=panel.segments, frame=out)


def starting_population(panel: Panel, *, bins: int = 20) -> Population:
    """Group the accounts alive at the last period into cells for the projection.

    Alive accounts are the rows of the last period with ``churned == 0``. Within each
    segment they are grouped by the North Star: each distinct level when there are at most
    ``bins``, else ``bins`` quantile bins.

    Parameters
    ----------
    panel : Panel
        A checked panel.
    bins : int, default 20
        North Star cells per segment.

    Returns
    -------
    Population
        ``accounts`` sums to the accounts alive at the last period.

    Examples
    --------
    >>> from nsm_sim.synth import generate_world
    >>> world = generate_world(accounts=300, periods=12, seed=3)
    >>> pop = starting_population(check_frame(world.panel, world.tree))
    >>> list(pop.frame.columns)
    ['segment', 'segment_idx', 'accounts', 'north_star', 'tenure', 'value']
    """
    f = panel.frame
    alive = (f["period"] == panel.periods[-1]).to_numpy() & (f["churned"] == 0).to_numpy()
    seg = _segment_codes(panel)[alive].astype(np.int64)
    north_star = f[panel.tree.north_star].to_numpy(dtype=float)[alive]
    value_col = panel.tree.value
    value = f[value_col].to_numpy(dtype=float)[alive] if value_col else np.zeros(alive.sum())
    level = np.zeros(seg.size, dtype=np.int64)
    for s in np.unique(seg):
        in_s = seg == s
        level[in_s] = _level_bins(north_star[in_s], bins)
    cells = pd.DataFrame(
        {
            "segment_idx": seg,
            "level_bin": level,
            "north_star": north_star,
            "tenure": f["tenure"].to_numpy(dtype=float)[alive],
            "value": value,
        }
    )
    out = (
        cells.groupby(["segment_idx", "level_bin"], sort=True)
        .agg(
            accounts=("north_star", "size"),
            north_star=("north_star", "mean"),
            tenure=("tenure", "mean"),
            value=("value", "mean"),
        )
        .reset_index()
        .drop(columns="level_bin")
    )
    out.insert(0, "segment", np.asarray(panel.segments, dtype=object)[out["segment_idx"]])
    out["segment"] = out["segment"].astype(str)
    out["accounts"] = out["accounts"].astype(np.int64)
    return Population(segments=panel.segments, frame=out)


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
        ``share_of_accounts_churned``, ``accounts_alive_at_end``) and ``metrics`` (``min``,
        ``median``, ``max`` per metric, and ``role``: north_star, input, candidate or value).
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
    }
