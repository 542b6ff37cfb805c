"""Running metric definitions in a query engine: check the source, build the panel.

:func:`prepare` resolves the source (files or a database table), checks every column the
definitions name, checks the events row by row and the metrics against them, and runs the
queries of :mod:`nsm_sim.events.query` and :mod:`nsm_sim.events.panel_query`, leaving the
panel as a table of the session;
:func:`build_panel` fetches it and checks it with :func:`nsm_sim.data.check_frame`
(:func:`nsm_sim.events.reduction.reduce_events` reduces it where it is instead). The engine
is DuckDB (embedded, no server; :class:`nsm_sim.events.session.Session`) or Spark
(:class:`nsm_sim.events.spark.SparkSession`), through :func:`open_session`. Every problem
is reported at once as a :class:`~nsm_sim.errors.DataError`; nothing is written here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlglot import exp

from nsm_sim.data import Panel, check_frame
from nsm_sim.errors import DataError, InputError, hint
from nsm_sim.events import checks, columns, panel_query, query, sql
from nsm_sim.events.load import TreeDefinitions, load_definitions
from nsm_sim.events.schema import DatabaseTable, InactivityChurn, Table
from nsm_sim.events.session import MEMORY_LIMIT, Session
from nsm_sim.events.sql import resolve_files

#: Engines a build can run on: DuckDB (embedded) and Spark (the optional extra).
ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class Build:
    """A panel built from events.

    Attributes
    ----------
    frame : pandas.DataFrame
        The panel as a file holds it: ``account_id``, ``period``, the segment column, the
        metrics, the value column and ``churned``.
    panel : Panel
        The same, checked.
    statements : tuple of str
        Every SQL statement run, in order, formatted (``--show-sql``).
    summary : dict
        ``events`` (read, kept, in the observed span), ``accounts``, ``rows``,
        ``periods`` (first, last, count, kind), ``churned`` and ``censored`` accounts,
        ``observed_until`` (the end of the data, where accounts still customers are
        censored).
    """

    frame: pd.DataFrame
    panel: Panel
    statements: tuple[str, ...]
    summary: dict[str, Any]


def reader_of(
    session: Session, ref: Table, base: Path, field: str, alias: str, source: str
) -> tuple[exp.Expression, dict[str, str]]:
    """Resolve a table reference; return what to read from and its columns with types.

    Parameters
    ----------
    session : Session
        DuckDB's, or Spark's (which reads the files itself).
    ref : str, list of str or DatabaseTable
        Files or globs relative to ``base``, or a table of a DuckDB database file.
    base : Path
    field : str
        The field naming it (for messages).
    alias : str
        Name under which a database is attached (Spark: of the view).
    source : str
        What is being read (for messages).
    """
    if not isinstance(session, Session):
        return session.table(ref, base, field, alias)
    if isinstance(ref, DatabaseTable):
        path = (base / ref.database).resolve()
        if not path.exists():
            raise DataError(source, [f"{field}.database: file {str(path)!r} not found"])
        session.run(sql.attach(str(path), alias))
        listed = (
            exp.select(sql.col("table_name"))
            .from_(exp.table_("tables", db="information_schema"))
            .where(sql.col("table_catalog").eq(exp.Literal.string(alias)))
        )
        tables = [name for (name,) in session.rows(listed)]
        if ref.table not in tables:
            raise DataError(
                source,
                [f"{field}.table: no table {ref.table!r} in {path.name}{hint(ref.table, tables)}"],
            )
        reader: exp.Expression = exp.table_(ref.table, db=alias, quoted=True)
    else:
        reader = sql.file_reader(*resolve_files(ref, base, field, source))
    try:
        described = session.rows(exp.Describe(this=exp.select("*").from_(reader)))
    except DataError as err:
        reason = err.problems[0].removeprefix("the query engine refused a query: ")
        raise DataError(source, [f"{field}: not readable: {reason}"]) from None
    return reader, {name: dtype for name, dtype, *_ in described}


def _bounds(session: Session, td: TreeDefinitions, names: dict[str, tuple]) -> query.Bounds:
    """Find the first and last period and the end of the data."""
    cal, period = td.definitions.calendar, td.tree.period
    first_seen = min(v[1] for v in names.values())
    last_seen = max(v[2] for v in names.values())
    starts = session.rows(
        exp.select(
            sql.period_of(sql.timestamp(first_seen), period, cal.week_start),
            sql.period_of(sql.timestamp(last_seen), period, cal.week_start),
        )
    )[0]
    first = dt.datetime.combine(cal.start, dt.time()) if cal.start else starts[0]
    if cal.end:
        end_day = dt.datetime.combine(cal.end, dt.time())
        last = session.rows(
            exp.select(sql.period_of(sql.timestamp(end_day), period, cal.week_start))
        )[0][0]
        until = end_day + dt.timedelta(days=1)
    else:
        last = starts[1]
        until = (pd.Timestamp(last) + _offset(period)).to_pydatetime()
    windows = [m.window for m in td.definitions.metrics.values() if m.window is not None]
    lookback = first - dt.timedelta(days=max(windows, default=0))
    return query.Bounds(
        first_period=first, last_period=last, observed_until=until, lookback=lookback
    )


def _zone_offsets(
    session: Session, source: exp.Expression, dtype: str, roles: dict, zone: str
) -> list[tuple[int, int]] | None:
    """Return the zone's offsets over the span of timestamps with a zone (else None)."""
    if not sql.has_zone(dtype):
        return None
    if zone == "UTC":
        return [(0, 0)]
    stamp = sql.col(roles["timestamp"])
    first, last = session.rows(exp.select(exp.Min(this=stamp), exp.Max(this=stamp)).from_(source))[
        0
    ]
    return None if first is None else sql.zone_offsets(zone, first, last)


def _offset(period: str) -> pd.DateOffset:
    return pd.DateOffset(weeks=1) if period == "week" else pd.DateOffset(months=1)


def open_session(
    engine: str, source: str, memory_limit: str = MEMORY_LIMIT, threads: int | None = None
):
    """Open a session of an engine: DuckDB's (:class:`Session`) or Spark's.

    Parameters
    ----------
    engine : {"duckdb", "spark"}
    source : str
        What its queries read (named in its messages).
    memory_limit, threads
        DuckDB's budget and threads (Spark's are its session's).

    Returns
    -------
    Session or nsm_sim.events.spark.SparkSession
    """
    check_engine(engine)
    if engine == "spark":
        from nsm_sim.events.spark import SparkSession

        return SparkSession(source)
    return Session(source, memory_limit=memory_limit, threads=threads)


def build_panel(
    tree: str | Path | TreeDefinitions,
    *,
    engine: str = "duckdb",
    memory_limit: str = MEMORY_LIMIT,
    threads: int | None = None,
) -> Build:
    """Build the panel of a tree file's metric definitions from its event log.

    Parameters
    ----------
    tree : str, Path or TreeDefinitions
        A tree file with ``source`` and ``metrics`` (see :mod:`nsm_sim.events.schema`).
    engine : {"duckdb", "spark"}, default "duckdb"
        The query engine (see :mod:`nsm_sim.events.spark`).
    memory_limit : str, default "3GB"
        DuckDB's memory budget (it spills to a temporary folder beyond it).
    threads : int, optional
        DuckDB's threads (default: all cores).

    Returns
    -------
    Build
        The panel, checked by :func:`nsm_sim.data.check_frame`, the SQL run and a summary.

    Raises
    ------
    SpecError
        When the tree file or its definitions do not validate.
    DataError
        With every problem of the source against the definitions: missing columns, unknown
        event names (with a did-you-mean), definitions matching no event, unreadable or
        mixed time zones, events of unknown accounts, duplicate events, events outside an
        account's lifetime, zero denominators; each with its field, column and example rows.
    """
    td = tree if isinstance(tree, TreeDefinitions) else load_definitions(tree)
    with open_session(engine, str(td.path), memory_limit, threads) as session:
        summary = prepare(session, td)
        frame = session.frame(panel_query.sorted_panel())
        statements = tuple(session.statements)
    panel = check_frame(frame, td.tree, source=built_source(td))
    return Build(frame=frame, panel=panel, statements=statements, summary=summary)


def built_source(td: TreeDefinitions) -> str:
    """Name a panel built from a tree file's events (the panel's ``source``)."""
    return f"{td.path} (built from events)"


def prepare(session: Session, td: TreeDefinitions) -> dict[str, Any]:
    """Check the source and build the panel into the table :data:`panel_query.PANEL` of a session.

    Parameters
    ----------
    session : Session
        DuckDB's, or :class:`nsm_sim.events.spark.SparkSession`.
    td : TreeDefinitions

    Returns
    -------
    dict
        The build's summary (see :attr:`Build.summary`).

    Raises
    ------
    DataError
        With every problem of the source against the definitions.
    """
    defs, source = td.definitions, str(td.path)
    zone = defs.calendar.timezone
    events_from, event_types = reader_of(
        session, defs.source.events, td.base, "source.events", "events_db", source
    )
    account_types = None
    if defs.source.accounts is not None:
        accounts_from, account_types = reader_of(
            session, defs.source.accounts, td.base, "source.accounts", "accounts_db", source
        )
    problems = columns.column_problems(td, event_types, account_types)
    if problems:
        raise DataError(source, problems)
    with_accounts = account_types is not None
    roles = columns.event_roles(td, event_types)
    a_roles = columns.account_roles(td)
    # account ids read as text on both sides when their types differ (text and numbers)
    as_text = with_accounts and (
        event_types[roles["account_id"]] != account_types[a_roles["account_id"]]
    )
    offsets = _zone_offsets(session, events_from, event_types[roles["timestamp"]], roles, zone)
    everything = query.events_all(events_from, event_types, roles, zone, offsets, as_text)
    session.run(sql.view("events_all", everything))
    if with_accounts:
        accounts = query.accounts_all(accounts_from, account_types, a_roles, zone, as_text)
        session.run(sql.view("accounts_all", accounts))
        session.run(sql.view("accounts_kept", query.accounts_kept(td)))
    session.run(sql.view("events_kept", query.events_kept(td, with_accounts)))
    problems = checks.row_problems(session.rows, td, event_types, with_accounts)
    names = {
        name: (count, first, last)
        for name, count, first, last in session.rows(
            exp.select(
                sql.col("event"),
                exp.Count(this=exp.Star()),
                exp.Min(this=sql.col("timestamp")),
                exp.Max(this=sql.col("timestamp")),
            )
            .from_("events_kept")
            .where(sql.col("timestamp").is_(exp.null()).not_())
            .where(sql.col("event").is_(exp.null()).not_())
            .group_by(sql.col("event"))
        )
    }
    if not names:
        raise DataError(source, [*problems, "source.events: no events left after exclusions"])
    bounds = _bounds(session, td, names)
    session.run(sql.view("events", query.events_in_span(td, bounds)))
    # every aggregate in one scan, kept as a table (one row per account-period)
    session.run(
        sql.view(
            "measures", query.measures(td, bounds, users=roles["user_id"] is not None), kind="TABLE"
        )
    )
    problems += checks.metric_problems(session.rows, td, {k: v[0] for k, v in names.items()})
    if with_accounts:
        problems += checks.lifetime_problems(session.rows, td)
    problems += checks.duplicate_problems(session.rows, event_types, td)
    if problems:
        raise DataError(source, problems)
    session.run(sql.view("lifetimes", panel_query.lifetimes(td, bounds, with_accounts)))
    session.run(sql.view("grid", panel_query.grid(td.tree.period), kind="TABLE"))
    if panel_query.windowed_metrics(td):
        session.run(sql.view("daily", panel_query.daily(td)))
        session.run(sql.view("windowed", panel_query.windowed(td), kind="TABLE"))
    session.run(sql.view(panel_query.PANEL, panel_query.panel(td), kind="TABLE"))
    problems = checks.zero_denominator_problems(session.rows, td)
    if problems:
        raise DataError(source, problems)
    return _summary(session, td, bounds, names)


def _summary(
    session: Session, td: TreeDefinitions, bounds: query.Bounds, names: dict[str, tuple]
) -> dict[str, Any]:
    read = session.rows(exp.select(exp.Count(this=exp.Star())).from_("events_all"))[0][0]
    in_span = session.rows(
        exp.select(exp.func("sum", sql.col(query.ALL_EVENTS))).from_("measures")
    )[0][0]
    last_period = exp.cast(sql.timestamp(bounds.last_period), exp.DataType.Type.DATE)
    at_end = exp.and_(sql.col("period").eq(last_period), sql.col("churned").eq(0))
    rows, accounts, churned, periods, censored = session.rows(
        exp.select(
            exp.Count(this=exp.Star()),
            exp.Count(this=exp.Distinct(expressions=[sql.col("account_id")])),
            exp.func("coalesce", exp.func("sum", sql.col("churned")), 0),
            exp.Count(this=exp.Distinct(expressions=[sql.col("period")])),
            sql.count_where(at_end),
        ).from_(panel_query.PANEL)
    )[0]
    churn = td.definitions.churn
    rule = (
        f"inactivity: {churn.periods} {td.tree.period}(s) without {', '.join(churn.event)}"
        if isinstance(churn, InactivityChurn)
        else "end_date: the accounts table's churned_at"
    )
    return {
        "events": {
            "read": int(read),
            "kept": int(sum(v[0] for v in names.values())),
            "observed": int(in_span),
        },
        "accounts": int(accounts),
        "rows": int(rows),
        "periods": {
            "first": f"{bounds.first_period:%Y-%m-%d}",
            "last": f"{bounds.last_period:%Y-%m-%d}",
            "count": int(periods),
            "kind": td.tree.period,
        },
        "churn_rule": rule,
        "churned": int(churned),
        "censored": int(censored),
        "observed_until": bounds.observed_until.isoformat(sep=" "),
        "timezone": td.definitions.calendar.timezone,
    }


def check_engine(engine: str) -> None:
    """Raise when ``engine`` is not one a build runs on.

    Parameters
    ----------
    engine : str
        The engine's name.

    Raises
    ------
    InputError
        Naming the engines there are.
    """
    if engine not in ENGINES:
        raise InputError(
            "--engine",
            [f"unknown engine {engine!r}{hint(engine, ENGINES)}; expected {', '.join(ENGINES)}"],
        )
