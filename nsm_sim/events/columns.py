"""The columns the definitions name: each role's column, and whether the source has it.

Checked before any row is read: every column a role, a ``sum`` or a filter names must exist
in the event log (or the accounts table), with a did-you-mean, and hold the right type.
"""

from __future__ import annotations

from nsm_sim.errors import hint
from nsm_sim.events.filters import filter_columns, parse_filter
from nsm_sim.events.load import TreeDefinitions
from nsm_sim.events.schema import InactivityChurn

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_UNSIGNED = ("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")
_TIME_TYPES = ("TIMESTAMP", "DATE", "VARCHAR")


def is_numeric(dtype: str) -> bool:
    """Tell whether a DuckDB type holds numbers."""
    return dtype.startswith(_NUMERIC) or dtype in _UNSIGNED


def event_roles(td: TreeDefinitions, columns: dict[str, str]) -> dict[str, str | None]:
    """Map each role of the event log to its column (``user_id`` None when absent)."""
    named = td.definitions.source.columns
    user = named.user_id if named.user_id in columns else None
    return {
        "timestamp": named.timestamp,
        "account_id": named.account_id,
        "user_id": user,
        "event": named.event,
    }


def account_roles(td: TreeDefinitions) -> dict[str, str | None]:
    """Map each role of the accounts table to its column."""
    named = td.definitions.source.account_columns
    return {
        "account_id": named.account_id,
        "segment": (named.segment or td.tree.segment) if td.tree.segment else None,
        "started_at": named.started_at,
        "churned_at": named.churned_at,
    }


def column_problems(
    td: TreeDefinitions, events: dict[str, str], accounts: dict[str, str] | None
) -> list[str]:
    """Check that every column the definitions name exists, with the right type.

    Parameters
    ----------
    td : TreeDefinitions
    events : dict
        The event log's columns and their DuckDB types.
    accounts : dict or None
        The accounts table's, when there is one.

    Returns
    -------
    list of str
        One line per problem.
    """
    defs = td.definitions
    problems: list[str] = []
    roles = event_roles(td, events)
    for role, column in roles.items():
        if column is not None and column not in events:
            problems.append(
                f"source.columns.{role}: the event log has no column {column!r}"
                f"{hint(column, events)}; its columns: {', '.join(events)}"
            )
    stamp = roles["timestamp"]
    if stamp in events and not events[stamp].startswith(_TIME_TYPES):
        problems.append(
            f"source.columns.timestamp: column {stamp!r} holds {events[stamp]}; expected "
            "timestamps or ISO 8601 text"
        )
    visible = [r for r, c in roles.items() if c in events]
    visible += [c for c in events if c not in roles]
    for name, metric in defs.metrics.items():
        for role, measure in metric.measures.items():
            where = f"metrics.{name}" + (f".{role}" if role != "value" else "")
            if measure.aggregate == "unique_users" and roles["user_id"] is None:
                problems.append(
                    f"{where}.aggregate: unique_users needs the user column; the event log "
                    f"has no column {defs.source.columns.user_id!r} (source.columns.user_id)"
                )
            if measure.column is not None:
                if measure.column not in visible:
                    problems.append(
                        f"{where}.column: the event log has no column {measure.column!r}"
                        f"{hint(measure.column, visible)}"
                    )
                elif not is_numeric(events.get(measure.column, "")):
                    problems.append(
                        f"{where}.column: column {measure.column!r} holds "
                        f"{events.get(measure.column)}; expected numbers to sum"
                    )
            problems += _filter_problems(f"{where}.where", measure.where, visible)
    if isinstance(defs.churn, InactivityChurn):
        problems += _filter_problems("churn.where", defs.churn.where, visible)
    problems += _filter_problems("exclude.events_where", defs.exclude.events_where, visible)
    if accounts is not None:
        a_roles = account_roles(td)
        for role, column in a_roles.items():
            if column is not None and column not in accounts:
                problems.append(
                    f"source.account_columns.{role}: the accounts table has no column "
                    f"{column!r}{hint(column, accounts)}; its columns: {', '.join(accounts)}"
                )
        a_visible = [r for r, c in a_roles.items() if c in accounts]
        a_visible += [c for c in accounts if c not in a_roles]
        where = defs.exclude.accounts_where
        problems += _filter_problems("exclude.accounts_where", where, a_visible)
    return problems


def _filter_problems(field: str, where: str | None, columns: list[str]) -> list[str]:
    if where is None:
        return []
    return [
        f"{field}: no column {name!r}{hint(name, columns)}; the filter can read "
        f"{', '.join(columns)}"
        for name in filter_columns(parse_filter(where))
        if name not in columns
    ]
