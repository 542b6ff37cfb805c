"""Checks of the definitions against the source: every problem with its field and rows.

Each check names the definition's field (``metrics.revenue.column``) or the source's column,
what is wrong, how many events (or accounts, or account-periods) and up to five of them,
and what was expected. The queries are SQLGlot expressions run by the caller's session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlglot import exp

from nsm_sim.data import MAX_EXAMPLES
from nsm_sim.errors import hint
from nsm_sim.events.columns import account_roles, event_roles
from nsm_sim.events.load import TreeDefinitions
from nsm_sim.events.panel_query import PANEL
from nsm_sim.events.query import ACTIVITY, FIRST_EVENT, LAST_EVENT, match_counts
from nsm_sim.events.schema import EndDateChurn, InactivityChurn
from nsm_sim.events.sql import col, count_where, has_offset, raw

#: Runs a query and returns its rows.
Rows = Callable[[exp.Expression], list[tuple[Any, ...]]]


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "<missing>"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}" if value == value.normalize() else value.isoformat()
    return str(value)


def _examples(rows: Sequence[Sequence[Any]]) -> str:
    return ", ".join("(" + ", ".join(_show(v) for v in row) + ")" for row in rows)


def _count_text(count: int, noun: str) -> str:
    first = f", first {MAX_EXAMPLES}" if count > MAX_EXAMPLES else ""
    return f"{count:,} {noun}(s){first}"


@dataclass(frozen=True)
class _Check:
    """A condition no row should meet, and how to say that one does."""

    field: str
    condition: exp.Expression
    issue: str
    expected: str


def _run_checks(
    rows: Rows,
    source: exp.Select,
    shown: dict[str, exp.Expression],
    noun: str,
    found: list[_Check],
) -> list[str]:
    """Count every check's rows of ``source`` in one scan; fetch examples of those that fail."""
    if not found:
        return []
    counts = rows(source.select(*[count_where(c.condition) for c in found], append=False))[0]
    problems = []
    for check, count in zip(found, counts, strict=True):
        if not count:
            continue
        examples = rows(
            source.select(*shown.values(), append=False).where(check.condition).limit(MAX_EXAMPLES)
        )
        problems.append(
            f"{check.field}: {check.issue} in {_count_text(int(count), noun)} "
            f"({', '.join(shown)}): {_examples(examples)}; expected {check.expected}"
        )
    return problems


def _table(name: str) -> exp.Select:
    return exp.select("*").from_(name)


def _missing(column: exp.Expression) -> exp.Expression:
    return column.is_(exp.null())


def _present(column: exp.Expression) -> exp.Expression:
    return exp.not_(column.is_(exp.null()))


def row_problems(
    rows: Rows, td: TreeDefinitions, types: dict[str, str], accounts: bool
) -> list[str]:
    """Check the events (and the accounts) row by row, one scan of each table.

    Unreadable or mixed time zones, missing timestamps, accounts or names; accounts listed
    twice, without a segment, with unreadable dates or ending before they start.

    Parameters
    ----------
    rows : callable
        Runs a SQLGlot query and returns its rows.
    td : TreeDefinitions
    types : dict
        The event log's columns and their DuckDB types.
    accounts : bool
        Whether there is an accounts table (views ``accounts_all`` and ``accounts_kept``).

    Returns
    -------
    list of str
    """
    named = td.definitions.source.columns
    stamp = raw("timestamp")
    shown = {"account": col("account_id"), "timestamp": col(stamp), "event": col("event")}
    found = [
        _Check(
            f"source.columns.timestamp (column {named.timestamp!r})",
            exp.and_(_present(col(stamp)), _missing(col("timestamp"))),
            "unreadable timestamp",
            "an ISO 8601 timestamp such as 2025-01-06T09:30:00 (a zone offset is optional)",
        )
    ]
    for role, column in (("timestamp", stamp), ("account_id", "account_id"), ("event", "event")):
        found.append(
            _Check(
                f"source.columns.{role} (column {getattr(named, role)!r})",
                _missing(col(column)),
                f"missing {role}",
                f"a {role} in every event",
            )
        )
    if types.get(named.timestamp) == "VARCHAR":
        found += _zone_checks(rows, named.timestamp)
    problems = _run_checks(rows, _table("events_all"), shown, "event", found)
    if accounts:
        problems += _account_problems(rows, td)
    return problems


def _zone_checks(rows: Rows, column: str) -> list[_Check]:
    """Text timestamps: all with a zone offset, or none."""
    offset = has_offset(col(raw("timestamp")))
    with_zone, without = rows(
        exp.select(count_where(offset), count_where(exp.not_(offset))).from_("events_all")
    )[0]
    if not (with_zone and without):
        return []
    return [
        _Check(
            f"source.columns.timestamp (column {column!r})",
            offset if with_zone <= without else exp.not_(offset),
            f"mixed time zones: {with_zone:,} timestamps carry a zone offset and {without:,} "
            "do not; the fewer kind is",
            "every timestamp with its offset, or none (then calendar.timezone applies)",
        )
    ]


def _account_problems(rows: Rows, td: TreeDefinitions) -> list[str]:
    a_roles = account_roles(td)
    shown = {"account": col("account_id")}
    shown.update({r: col(raw(r)) for r in ("started_at", "churned_at") if a_roles[r]})
    column = f"source.account_columns.account_id (column {a_roles['account_id']!r})"
    twice = (
        exp.select(col("account_id"))
        .from_("accounts_all")
        .group_by(col("account_id"))
        .having(exp.Count(this=exp.Star()) > exp.Literal.number(1))
    )
    found = [
        _Check(column, _missing(col("account_id")), "missing account id", "an id in every row"),
        _Check(
            column,
            col("account_id").isin(query=twice),
            "account listed more than once",
            "one row per account",
        ),
    ]
    if a_roles["segment"] is not None:
        found.append(
            _Check(
                f"source.account_columns.segment (column {a_roles['segment']!r})",
                _missing(col("segment")),
                "missing segment",
                "a segment label for every account",
            )
        )
    for role in ("started_at", "churned_at"):
        if a_roles[role] is not None:
            found.append(
                _Check(
                    f"source.account_columns.{role} (column {a_roles[role]!r})",
                    exp.and_(_present(col(raw(role))), _missing(col(role))),
                    "unreadable date",
                    "an ISO 8601 date or timestamp, or empty",
                )
            )
    if a_roles["started_at"] is not None and a_roles["churned_at"] is not None:
        found.append(
            _Check(
                f"source.account_columns.churned_at (column {a_roles['churned_at']!r})",
                col("churned_at") <= col("started_at"),
                "end on or before the start",
                "churned_at after started_at",
            )
        )
    return _run_checks(rows, _table("accounts_all"), shown, "account", found)


def lifetime_problems(rows: Rows, td: TreeDefinitions) -> list[str]:
    """Check the observed events' accounts: in the accounts table, and customers then.

    Read first from the table ``measures`` (each account-period's first and last event);
    only when something is wrong are the events themselves scanned, to count and show them.

    Parameters
    ----------
    rows : callable
        Runs a SQLGlot query and returns its rows.
    td : TreeDefinitions

    Returns
    -------
    list of str
    """
    a_roles = account_roles(td)
    quick = [_missing(col("account_id", "a"))]
    if a_roles["started_at"] is not None:
        quick.append(col(FIRST_EVENT, "m") < col("started_at", "a"))
    if isinstance(td.definitions.churn, EndDateChurn) and a_roles["churned_at"] is not None:
        quick.append(col(LAST_EVENT, "m") >= col("churned_at", "a"))
    seen = (
        exp.select(*[count_where(c) for c in quick])
        .from_(exp.to_table("measures").as_("m"))
        .join(
            exp.to_table("accounts_all").as_("a"),
            on=col("account_id", "m").eq(col("account_id", "a")),
            join_type="left",
        )
    )
    if not any(rows(seen)[0]):
        return []
    return _events_outside_lifetimes(rows, td)


def _events_outside_lifetimes(rows: Rows, td: TreeDefinitions) -> list[str]:
    """Events of accounts the accounts table lacks, or outside an account's lifetime."""
    a_roles = account_roles(td)
    named = td.definitions.source.columns
    shown = {
        "account": col("account_id", "e"),
        "timestamp": col(raw("timestamp"), "e"),
        "event": col("event", "e"),
    }
    found = [
        _Check(
            f"source.columns.account_id (column {named.account_id!r})",
            exp.and_(_present(col("account_id", "e")), _missing(col("account_id", "a"))),
            "account missing from the accounts table",
            "every account of the event log in the accounts table",
        )
    ]
    fix = "events only while the account is a customer (fix the dates, or exclude the events)"
    if a_roles["started_at"] is not None:
        shown["started_at"] = col(raw("started_at"), "a")
        found.append(
            _Check(
                f"source.account_columns.started_at (column {a_roles['started_at']!r})",
                col("timestamp", "e") < col("started_at", "a"),
                "event before the account's started_at",
                fix,
            )
        )
    if isinstance(td.definitions.churn, EndDateChurn) and a_roles["churned_at"] is not None:
        shown["churned_at"] = col(raw("churned_at"), "a")
        found.append(
            _Check(
                f"source.account_columns.churned_at (column {a_roles['churned_at']!r})",
                col("timestamp", "e") >= col("churned_at", "a"),
                "event at or after the account's churned_at",
                fix,
            )
        )
    joined = (
        exp.select("*")
        .from_(exp.to_table("events").as_("e"))
        .join(
            exp.to_table("accounts_all").as_("a"),
            on=col("account_id", "e").eq(col("account_id", "a")),
            join_type="left",
        )
    )
    return _run_checks(rows, joined, shown, "event", found)


def duplicate_problems(rows: Rows, types: dict[str, str], td: TreeDefinitions) -> list[str]:
    """Check that no event appears twice: identical in every column of the source.

    The rows of the whole log are hashed (all their columns) and the hashes counted (without
    the cost of the exclusions); only when one comes twice are the kept rows with that hash
    compared column by column, so neither a hash collision nor an excluded event is
    reported. Counting is a hash aggregate, which the engine partitions and spills by part
    when the hashes outgrow its memory; a sort of every hash (a window over them) costs about
    as much in memory and grows worse once it spills (at a tenth of the memory on 100M
    events: 35-41 s against 26 s, ``benchmarks/RESULTS.md``).

    Parameters
    ----------
    rows : callable
        Runs a SQLGlot query and returns its rows.
    types : dict
        The event log's columns and their DuckDB types.
    td : TreeDefinitions

    Returns
    -------
    list of str
    """
    stored = _kept_columns(types, td)
    row_hash = exp.alias_(exp.func("hash", *[col(c) for c in stored]), "row_hash", quoted=True)
    twice = (
        exp.select(col("row_hash"))
        .from_(exp.select(row_hash).from_("events_all").subquery("hashed"))
        .group_by(col("row_hash"))
        .having(exp.Count(this=exp.Star()) > exp.Literal.number(1))
    )
    (candidates,) = rows(exp.select(exp.Count(this=exp.Star())).from_(twice.subquery("t")))[0]
    if not candidates:
        return []
    hashed = exp.select("*", row_hash).from_("events_kept").subquery("h")
    same = (
        exp.select(
            *[col(c) for c in stored],
            exp.alias_(exp.Count(this=exp.Star()), "copies", quoted=True),
        )
        .from_(hashed)
        .where(col("row_hash").isin(query=twice))
        .group_by(*[col(c) for c in stored])
        .having(exp.Count(this=exp.Star()) > exp.Literal.number(1))
    )
    found = rows(
        exp.select(exp.Count(this=exp.Star()), exp.func("sum", col("copies"))).from_(
            same.subquery("d")
        )
    )[0]
    if not found[0]:
        return []
    examples = rows(
        exp.select(col("account_id"), col(raw("timestamp")), col("event"), col("copies"))
        .from_(same.subquery("d"))
        .order_by(col("account_id"), col(raw("timestamp")))
        .limit(MAX_EXAMPLES)
    )
    return [
        f"source.events: duplicate events: {_count_text(int(found[0]), 'event')} appear more "
        f"than once ({int(found[1]):,} rows) (account, timestamp, event, copies): "
        f"{_examples(examples)}; expected each event once (remove the copies at the source)"
    ]


def _kept_columns(types: dict[str, str], td: TreeDefinitions) -> list[str]:
    """Return the columns of ``events_kept`` that hold the source's values as read."""
    roles = event_roles(td, types)
    out = [raw("timestamp")]
    out += [r for r, c in roles.items() if c is not None and r != "timestamp"]
    out += [c for c in types if c not in roles.values() and c not in roles]
    return out


def metric_problems(rows: Rows, td: TreeDefinitions, names: dict[str, int]) -> list[str]:
    """Check that every metric (and the churn rule's activity) matches events.

    Parameters
    ----------
    rows : callable
        Runs a SQLGlot query and returns its rows (over the table ``measures``, when every
        event name is known).
    td : TreeDefinitions
    names : dict
        Every event name of the kept events and its count.

    Returns
    -------
    list of str
    """
    defs = td.definitions
    problems: list[str] = []
    counts = match_counts(defs.metrics)
    targets: dict[str, tuple[Any, str]] = {
        f"metrics.{name}" + (f".{role}" if role != "value" else ""): (
            measure,
            counts[f"{name}__{role}"],
        )
        for name, metric in defs.metrics.items()
        for role, measure in metric.measures.items()
    }
    if isinstance(defs.churn, InactivityChurn):
        targets["churn"] = (defs.churn, ACTIVITY)
    unknown = set()
    for field, (measure, _) in targets.items():
        for e in measure.event:
            if e not in names:
                unknown.add(field)
                problems.append(
                    f"{field}.event: {e!r} is not an event of the source{hint(e, names)}; "
                    f"its events: {', '.join(sorted(names)[:20])}"
                )
    totals = rows(
        exp.select(*[exp.func("sum", col(column)) for _, column in targets.values()]).from_(
            "measures"
        )
    )[0]
    for (field, (measure, _)), total in zip(targets.items(), totals, strict=True):
        if total or field in unknown:
            continue
        named = sum(names[e] for e in measure.event)
        condition = f" with {measure.where!r}" if measure.where else ""
        problems.append(
            f"{field}: the definition matches no event in the observed span "
            f"(events {', '.join(measure.event)}{condition}: 0 of {named:,}); expected a "
            "definition that matches events (check its where and the calendar)"
        )
    return problems


def zero_denominator_problems(rows: Rows, td: TreeDefinitions) -> list[str]:
    """Ratios whose denominator is 0 in some account-periods (``zero_denominator: error``).

    Parameters
    ----------
    rows : callable
        Runs a SQLGlot query and returns its rows (over the built panel, which holds NULL
        where a ratio's denominator was 0).
    td : TreeDefinitions

    Returns
    -------
    list of str
    """
    problems = []
    for name, metric in td.definitions.metrics.items():
        if metric.measure is not None or metric.zero_denominator != "error":
            continue
        if name not in (*td.tree.metrics, *td.tree.value_columns):
            continue
        zero = col(name).is_(exp.null())
        (count,) = rows(exp.select(exp.Count(this=exp.Star())).from_(PANEL).where(zero))[0]
        if not count:
            continue
        shown = rows(
            exp.select(col("account_id"), exp.cast(col("period"), exp.DataType.Type.DATE))
            .from_(PANEL)
            .where(zero)
            .order_by(col("account_id"), col("period"))
            .limit(MAX_EXAMPLES)
        )
        den = metric.denominator
        problems.append(
            f"metrics.{name}.denominator: zero ({den.aggregate} of {', '.join(den.event)}) in "
            f"{_count_text(int(count), 'account-period')} (account, period): "
            f"{_examples(shown)}; expected a denominator above 0 in "
            "every account-period, or zero_denominator: zero"
        )
    return problems


__all__ = [
    "duplicate_problems",
    "lifetime_problems",
    "metric_problems",
    "row_problems",
    "zero_denominator_problems",
]
