"""Metric definitions: where the events are, how each metric is computed from them.

The definitions sit beside the metric tree in the tree file (or in a file it names with
``metrics: FILE``), under the keys ``source``, ``calendar``, ``metrics``, ``exclude`` and
``churn``. Every model is closed (an unknown key is an error with a did-you-mean), and a
metric reads like the North Star articles write it: "[accounts] completing [an action]
[how often] within [a period]"::

    source:
      events: events/*.parquet          # Parquet or CSV files, globs, or {database, table}
      columns: {timestamp: ts, account_id: team_id, user_id: user_id, event: name}
      accounts: accounts.csv
      account_columns: {account_id: team_id, segment: plan, churned_at: cancelled_at}
    calendar: {timezone: Europe/Berlin, week_start: monday}
    metrics:
      projects_completed: {event: project_completed, owner: growth}
      active_builders: {event: project_completed, at_least: 3, window: 30 days}
      completion_rate:
        numerator: {event: project_completed}
        denominator: {event: project_created}
    exclude: {accounts_where: "internal"}
    churn: {rule: end_date}
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from nsm_sim.events.filters import parse_filter
from nsm_sim.spec.base import _NAME, _Closed

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WINDOW = re.compile(r"^\s*(\d+)\s*(d|days?|w|weeks?)\s*$", re.IGNORECASE)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _window_days(value: Any) -> Any:
    """Read ``"30 days"``, ``"30d"``, ``"4 weeks"`` or ``30`` (days) as a number of days."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _WINDOW.match(value)
        if match is None:
            raise ValueError(f"expected a length such as '30 days' or '4 weeks', got {value!r}")
        days = int(match.group(1))
        return days * 7 if match.group(2).lower().startswith("w") else days
    return value


def _parsed_filter(where: str | None) -> str | None:
    """Check that a SQL condition parses (:func:`parse_filter`); return it unchanged."""
    if where is not None:
        parse_filter(where)
    return where


Names = Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)]
#: An optional SQL condition (``where``), refused when it does not parse.
Filter = Annotated[str | None, AfterValidator(_parsed_filter)]
WindowDays = Annotated[int, BeforeValidator(_window_days), Field(ge=1, le=3660)]


class DatabaseTable(_Closed):
    """A table of a DuckDB database file.

    Attributes
    ----------
    database : str
        The database file, relative to the file that names it.
    table : str
        The table (or view) in it.
    """

    database: str
    table: str


#: Files (one path, a glob or a list) or a table of a DuckDB database.
Table = str | list[str] | DatabaseTable


class EventColumns(_Closed):
    """The event log's column for each role.

    Attributes
    ----------
    timestamp : str
        When the event happened: a timestamp (with or without a time zone) or ISO 8601
        text; one without a zone is a local time of ``calendar.timezone``.
    account_id : str
        The account (team, workspace, company) the event belongs to.
    user_id : str
        The person who did it; needed by ``unique_users`` only.
    event : str
        The event's name.
    """

    timestamp: str = "timestamp"
    account_id: str = "account_id"
    user_id: str = "user_id"
    event: str = "event"


class AccountColumns(_Closed):
    """The accounts table's column for each role.

    Attributes
    ----------
    account_id : str
        The account, as in the event log.
    segment : str or None
        The segment label; defaults to the tree's segment column.
    started_at : str or None
        When the account became a customer; without it (or where it is empty) an account
        starts at its first event, or at the first period when it has none.
    churned_at : str or None
        When it stopped being one (empty while it still is); needed by ``churn.rule: end_date``.
    """

    account_id: str = "account_id"
    segment: str | None = None
    started_at: str | None = None
    churned_at: str | None = None


class Source(_Closed):
    """Where the events (and the accounts) are.

    Attributes
    ----------
    events : Table
        Parquet or CSV files (paths or globs, relative to the tree file) or a table of a
        DuckDB database file.
    columns : EventColumns
        The event log's column for each role; other columns are properties that filters
        and ``sum`` can use.
    accounts : Table or None
        The accounts table: one row per account.
    account_columns : AccountColumns
        Its column for each role.
    """

    events: Table
    columns: EventColumns = Field(default_factory=EventColumns)
    accounts: Table | None = None
    account_columns: AccountColumns = Field(default_factory=AccountColumns)


class Calendar(_Closed):
    """How time is cut into periods (the tree's ``period``: week or month).

    Attributes
    ----------
    timezone : str
        IANA zone the periods are cut in; timestamps without a zone are local times of it.
    week_start : str
        Day weekly periods start on (monthly periods start on the 1st).
    start : datetime.date or None
        First period (a ``week_start`` day, or the 1st of a month); default: the period of
        the first event.
    end : datetime.date or None
        Last day observed; later events are left out, and an account still a customer at
        its end is censored (not churned). Default: the last event's period.
    """

    timezone: str = "UTC"
    week_start: Literal[WEEKDAYS] = "monday"  # type: ignore[valid-type]
    start: dt.date | None = None
    end: dt.date | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{zone!r} is not a time zone; expected e.g. 'UTC'") from None
        return zone

    @model_validator(mode="after")
    def _ordered(self) -> Calendar:
        if self.start and self.end and self.end < self.start:
            raise ValueError("end: expected a day on or after start")
        return self


class Measure(_Closed):
    """One aggregate of events per account and period.

    Attributes
    ----------
    event : list of str
        The event name(s) counted (one name or a list).
    aggregate : {"count", "unique_users", "sum"}
        Events, distinct users, or the sum of ``column``.
    column : str or None
        The numeric property summed (``aggregate: sum`` only).
    where : str or None
        A SQL condition on the event's columns (see :mod:`nsm_sim.events.filters`).
    """

    event: Names
    aggregate: Literal["count", "unique_users", "sum"] = "count"
    column: str | None = None
    where: Filter = None

    @model_validator(mode="after")
    def _column_with_sum(self) -> Measure:
        if self.aggregate == "sum" and self.column is None:
            raise ValueError("column: required with aggregate: sum (the property summed)")
        if self.aggregate != "sum" and self.column is not None:
            raise ValueError(f"column: only aggregate: sum reads a column, not {self.aggregate}")
        return self


class MetricDefinition(_Closed):
    """A metric of the tree: an aggregate, a ratio of two, or a threshold on one.

    Attributes
    ----------
    description : str or None
        What the metric means, in a sentence.
    owner : str or None
        The team that owns it.
    event, aggregate, column, where
        The aggregate (see :class:`Measure`); or ``numerator`` and ``denominator``.
    numerator, denominator : Measure or None
        A ratio of two aggregates, per account and period.
    zero_denominator : {"error", "zero"}
        What a zero denominator gives: an error naming the rows, or 0.
    at_least : float or None
        1 when the aggregate reaches this value within the period (or ``window``), else 0.
    window : int or None
        Days, ending on the period's last day, over which the aggregate runs (``"30 days"``,
        ``"4 weeks"``); ``count`` and ``sum`` only.
    """

    description: str | None = None
    owner: str | None = None
    event: Names | None = None
    aggregate: Literal["count", "unique_users", "sum"] = "count"
    column: str | None = None
    where: Filter = None
    numerator: Measure | None = None
    denominator: Measure | None = None
    zero_denominator: Literal["error", "zero"] = "error"
    at_least: float | None = Field(default=None, gt=0)
    window: WindowDays | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> MetricDefinition:
        ratio = self.numerator is not None or self.denominator is not None
        if ratio:
            if self.numerator is None or self.denominator is None:
                raise ValueError("a ratio needs both numerator and denominator")
            own = [k for k in ("event", "column", "where") if getattr(self, k) is not None]
            if own or "aggregate" in self.model_fields_set:
                raise ValueError(
                    f"{(own or ['aggregate'])[0]}: a ratio defines its events in numerator "
                    "and denominator"
                )
            if self.at_least is not None or self.window is not None:
                raise ValueError("at_least and window apply to an aggregate, not to a ratio")
            return self
        if self.event is None:
            raise ValueError("event: required (or numerator and denominator for a ratio)")
        Measure(event=self.event, aggregate=self.aggregate, column=self.column)
        if self.window is not None and self.aggregate == "unique_users":
            raise ValueError("window: a rolling window counts events or sums; not unique_users")
        return self

    @property
    def measure(self) -> Measure | None:
        """The aggregate of a metric that is not a ratio."""
        if self.event is None:
            return None
        return Measure(
            event=self.event, aggregate=self.aggregate, column=self.column, where=self.where
        )

    @property
    def measures(self) -> dict[str, Measure]:
        """Its aggregates by role: ``value``, or ``numerator`` and ``denominator``."""
        if self.measure is not None:
            return {"value": self.measure}
        return {"numerator": self.numerator, "denominator": self.denominator}


class Exclusions(_Closed):
    """Accounts and events left out of every metric.

    Attributes
    ----------
    accounts : list of str
        Account ids (internal, test).
    accounts_where : str or None
        A SQL condition on the accounts table (``"internal OR plan = 'test'"``).
    events_where : str or None
        A SQL condition on the event log (``"event = 'heartbeat'"``).
    """

    accounts: list[str] = Field(default_factory=list)
    accounts_where: Filter = None
    events_where: Filter = None


class EndDateChurn(_Closed):
    """Churn at the accounts table's end date (``churned_at``).

    An account churns in the period holding the last moment before ``churned_at``; its rows
    end there, with ``churned = 1``. One whose ``churned_at`` is empty or after the end of
    the data is censored: its rows run to the last period, ``churned = 0``.
    """

    rule: Literal["end_date"]


class InactivityChurn(_Closed):
    """Churn after ``periods`` periods without a named activity.

    An account churns in its last period with the activity when at least ``periods``
    periods follow it before the end of the data; its rows end there, with ``churned = 1``.
    One whose last activity is nearer the end is censored: its rows run to the last period,
    ``churned = 0``. Activity after a long pause counts (the account came back).

    Attributes
    ----------
    periods : int
        Periods without the activity that make a churn.
    event : list of str
        The activity's event name(s).
    where : str or None
        A SQL condition on the activity's events.
    """

    rule: Literal["inactivity"]
    periods: int = Field(ge=1)
    event: Names
    where: Filter = None


Churn = Annotated[EndDateChurn | InactivityChurn, Field(discriminator="rule")]


class Definitions(_Closed):
    """The metric definitions of a tree file.

    Attributes
    ----------
    source : Source
    calendar : Calendar
    metrics : dict of str to MetricDefinition
        One definition per metric of the tree, per candidate and for the value column.
    exclude : Exclusions
    churn : EndDateChurn or InactivityChurn
    """

    source: Source
    calendar: Calendar = Field(default_factory=Calendar)
    metrics: dict[str, MetricDefinition]
    exclude: Exclusions = Field(default_factory=Exclusions)
    churn: Churn

    @field_validator("metrics")
    @classmethod
    def _names(cls, metrics: dict[str, MetricDefinition]) -> dict[str, MetricDefinition]:
        bad = [name for name in metrics if not _NAME.match(name)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a valid metric (column) name")
        return metrics


#: Every field name of the definitions, for did-you-mean hints.
FIELD_NAMES = sorted(
    {
        name
        for model in (
            DatabaseTable,
            EventColumns,
            AccountColumns,
            Source,
            Calendar,
            Measure,
            MetricDefinition,
            Exclusions,
            EndDateChurn,
            InactivityChurn,
            Definitions,
        )
        for name in model.model_fields
    }
)
