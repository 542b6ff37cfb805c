"""SQL building blocks as SQLGlot expressions: columns, literals, time, views, readers.

Nothing here knows about metrics: these are the pieces :mod:`nsm_sim.events.query` builds
its views from, and the time arithmetic that puts an event into its local period.
"""

from __future__ import annotations

import datetime as dt
import glob
from pathlib import Path

import numpy as np
import pandas as pd
from sqlglot import exp

from nsm_sim.errors import DataError
from nsm_sim.events.schema import WEEKDAYS

#: Text timestamps that end with a zone offset (``Z``, ``+02``, ``+02:00``, ``-0500``).
OFFSET_PATTERN = r"(Z|[+-]\d\d(:?\d\d)?)$"
#: A Monday: weekly periods are counted from it (shifted to the calendar's week start).
_WEEK_ORIGIN = dt.datetime(2000, 1, 3)
TZ_TYPE = "TIMESTAMP WITH TIME ZONE"
#: Other names of timestamps with a zone (DuckDB reads Parquet's nanosecond ones as
#: ``TIMESTAMPTZ_NS``); they are read at micro-second precision, as ``TZ_TYPE``.
_OTHER_TZ_TYPES = ("TIMESTAMPTZ", "TIMESTAMPTZ_NS", "TIMESTAMP_NS WITH TIME ZONE")
_NAIVE_TYPES = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE")
#: The file kinds a reader takes, by suffix.
_KINDS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv", ".gz": "csv"}


def col(name: str, table: str | None = None) -> exp.Column:
    """Return a quoted column reference."""
    return exp.column(name, table=table, quoted=True)


def string(value: str) -> exp.Literal:
    """Return a string literal."""
    return exp.Literal.string(value)


def timestamp(value: dt.datetime) -> exp.Cast:
    """Return a ``TIMESTAMP`` literal."""
    return exp.cast(string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)


def days(n: int) -> exp.Interval:
    """Return the interval of ``n`` days."""
    return exp.Interval(this=string(str(n)), unit=exp.Var(this="DAY"))


def step(period: str, n: int = 1) -> exp.Interval:
    """Return the interval of ``n`` periods (weeks or months)."""
    if period == "week":
        return days(7 * n)
    return exp.Interval(this=string(str(n)), unit=exp.Var(this="MONTH"))


def week_origin(week_start: str) -> dt.datetime:
    """Return a day on which weekly periods start."""
    return _WEEK_ORIGIN + dt.timedelta(days=WEEKDAYS.index(week_start))


def period_of(value: exp.Expression, period: str, week_start: str) -> exp.Expression:
    """Return the start of the period holding a local timestamp."""
    if period == "week":
        return exp.DateBin(this=days(7), expression=value, unit=timestamp(week_origin(week_start)))
    return exp.TimestampTrunc(this=value, unit=exp.Var(this="MONTH"))


def zone_offsets(zone: str, first: dt.datetime, last: dt.datetime) -> list[tuple[int, int]]:
    """Return the UTC offsets of ``zone`` between two instants, from each change on.

    Parameters
    ----------
    zone : str
        An IANA time zone.
    first, last : datetime.datetime
        The earliest and latest instants (aware, or naive UTC).

    Returns
    -------
    list of tuple
        ``(from_us, offset_us)`` pairs: from the instant ``from_us`` (microseconds since the
        epoch, UTC; the first pair's is ignored) the offset is ``offset_us``.

    Examples
    --------
    >>> import datetime as dt
    >>> zone_offsets("Europe/Berlin", dt.datetime(2025, 3, 1), dt.datetime(2025, 4, 1))
    [(1740700800000000, 3600000000), (1743296400000000, 7200000000)]
    """
    day = pd.Timedelta(days=1)
    lo, hi = (_utc(t) for t in (first, last))
    minutes = pd.date_range(lo.floor("D") - day, hi.ceil("D") + day, freq="min", unit="us")
    offsets = (minutes.tz_localize("UTC").tz_convert(zone).tz_localize(None) - minutes).asi8
    changes = np.flatnonzero(np.r_[True, offsets[1:] != offsets[:-1]])
    return [(int(minutes.asi8[i]), int(offsets[i])) for i in changes]


def _utc(instant: dt.datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(instant)
    return stamp if stamp.tz is None else stamp.tz_convert("UTC").tz_localize(None)


def _instant_to_local(instant: exp.Expression, offsets: list[tuple[int, int]]) -> exp.Expression:
    """Return an instant as local time, adding its zone's offset (plain arithmetic)."""
    epoch = exp.Anonymous(this="epoch_us", expressions=[instant])
    offset: exp.Expression = exp.Literal.number(offsets[-1][1])
    if len(offsets) > 1:
        case = exp.case()
        for (_, before), (change, _) in zip(offsets, offsets[1:], strict=False):
            case = case.when(epoch < exp.Literal.number(change), exp.Literal.number(before))
        offset = case.else_(offset)
    return exp.Anonymous(
        this="make_timestamp", expressions=[exp.Add(this=epoch, expression=offset)]
    )


def local_time(
    column: exp.Expression, dtype: str, zone: str, offsets: list[tuple[int, int]] | None = None
) -> exp.Expression:
    """Return a column's timestamps as local times of ``zone`` (NULL where unreadable).

    Timestamps with a zone are converted (by ``offsets`` when given, see
    :func:`zone_offsets`: plain arithmetic, much faster than a time-zone library call);
    those without one are taken as local times; text is read as ISO 8601, converted when it
    ends with an offset.
    """
    naive = exp.DataType.Type.TIMESTAMP
    if dtype in _OTHER_TZ_TYPES:
        column, dtype = exp.cast(column, exp.DataType.build("TIMESTAMPTZ")), TZ_TYPE
    if dtype == TZ_TYPE:
        if offsets:
            return _instant_to_local(column, offsets)
        return exp.Anonymous(this="timezone", expressions=[string(zone), column])
    if dtype in _NAIVE_TYPES:
        return exp.cast(column, naive)
    aware = exp.TryCast(this=column, to=exp.DataType.build("TIMESTAMPTZ"))
    converted = exp.Anonymous(this="timezone", expressions=[string(zone), aware])
    return (
        exp.case()
        .when(has_offset(column), converted)
        .else_(exp.TryCast(this=column, to=exp.DataType.build(naive)))
    )


def has_zone(dtype: str) -> bool:
    """Return whether a column type (as the engine names it) holds timestamps with a zone."""
    return dtype == TZ_TYPE or dtype in _OTHER_TZ_TYPES


def has_offset(column: exp.Expression) -> exp.Expression:
    """Return the condition that a text timestamp ends with a zone offset."""
    return exp.RegexpLike(this=column, expression=string(OFFSET_PATTERN))


def view(name: str, select: exp.Expression, kind: str = "VIEW") -> exp.Create:
    """Return ``CREATE OR REPLACE TEMPORARY VIEW name AS select`` (or ``TABLE``)."""
    return exp.Create(
        this=exp.to_table(name),
        kind=kind,
        replace=True,
        expression=select,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )


def attach(path: str, alias: str) -> exp.Attach:
    """Return ``ATTACH 'path' AS alias (READ_ONLY)``."""
    return exp.Attach(
        this=exp.alias_(string(path), alias),
        expressions=[exp.AttachOption(this=exp.Var(this="READ_ONLY"))],
    )


def resolve_files(
    ref: str | list[str], base: Path, field: str, source: str
) -> tuple[list[str], str]:
    """Expand a file reference (paths or globs, relative to ``base``); return files and kind.

    Raises
    ------
    DataError
        When a pattern matches no file, or the files are not all Parquet or all CSV.
    """
    patterns = [ref] if isinstance(ref, str) else list(ref)
    files: list[str] = []
    for pattern in patterns:
        found = sorted(glob.glob(str(base / pattern), recursive=True))
        if not found:
            raise DataError(source, [f"{field}: no file matches {str(base / pattern)!r}"])
        files += [str(Path(f).resolve()) for f in found]
    kinds = {_KINDS.get(Path(f).suffix.lower()) for f in files}
    if None in kinds or len(kinds) > 1:
        raise DataError(
            source,
            [
                f"{field}: expected Parquet (.parquet) or CSV (.csv) files of one kind, got "
                f"{', '.join(sorted({Path(f).suffix or '(none)' for f in files}))}"
            ],
        )
    return files, str(kinds.pop())


def file_reader(paths: list[str], kind: str) -> exp.Expression:
    """Return ``read_parquet([...], union_by_name = TRUE)`` (or ``read_csv``) of files."""
    named = exp.EQ(this=exp.column("union_by_name"), expression=exp.true())
    files = exp.Array(expressions=[string(p) for p in paths])
    return exp.Anonymous(this=f"read_{kind}", expressions=[files, named])


def raw(role: str) -> str:
    """Return the name under which a time column is kept as the source wrote it."""
    return f"__raw_{role}"


def filtered(value: exp.Expression, condition: exp.Expression) -> exp.Filter:
    """Return ``value FILTER (WHERE condition)``."""
    return exp.Filter(this=value, expression=exp.Where(this=condition))


def count_where(condition: exp.Expression) -> exp.Filter:
    """Return ``COUNT(*) FILTER (WHERE condition)``."""
    return filtered(exp.Count(this=exp.Star()), condition)
