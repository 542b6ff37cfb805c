"""Running the same queries on Apache Spark (``pip install "nsm-sim[spark]"``).

:class:`SparkSession` has the interface of the DuckDB session
(:class:`nsm_sim.events.engine.Session`): it runs the SQLGlot expressions of
:mod:`nsm_sim.events.query` and :mod:`nsm_sim.events.panel_query`, :mod:`nsm_sim.events.checks` and
:mod:`nsm_sim.events.reduce_sql`, transpiled to Spark SQL, and returns their rows. The few
DuckDB functions they use become Spark's (:func:`to_spark`); the source files are read by
Spark itself (Parquet or CSV, local or on a lake: ``s3a://``, ``abfss://``, ``gs://``,
``hdfs://``), and a table kept by the build is a cached temporary view.

Where it runs: in the Spark session already active in the process (a notebook, a job
started by ``spark-submit``), else in a new one whose master is ``$NSM_SIM_SPARK_MASTER``
(default ``local[*]``; ``spark://host:7077``, ``yarn`` or ``k8s://...`` for a cluster), or
a Spark Connect server when ``$SPARK_REMOTE`` is set (``sc://host:15002``).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from sqlglot import exp

from nsm_sim.errors import DataError, InputError
from nsm_sim.events.schema import DatabaseTable, Table
from nsm_sim.events.sql import resolve_files

DIALECT = "spark"
#: Master of a new Spark session (when none is active and ``SPARK_REMOTE`` is unset).
MASTER_VARIABLE = "NSM_SIM_SPARK_MASTER"
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "timestamp_ntz": "TIMESTAMP",
    "date": "DATE",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
}


def duckdb_type(spark_type: str) -> str:
    """Name a Spark column type as DuckDB does (the column checks read DuckDB's names).

    Examples
    --------
    >>> duckdb_type("decimal(18,3)"), duckdb_type("timestamp"), duckdb_type("string")
    ('DECIMAL(18,3)', 'TIMESTAMP WITH TIME ZONE', 'VARCHAR')
    """
    return _TYPES.get(spark_type, spark_type.upper())


def _active_or_new():
    """Return the active Spark session, or start one (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pyspark on pandas >= 3
        try:
            from pyspark.sql import SparkSession as Spark
        except ImportError:
            raise InputError(
                "--engine",
                ['spark needs pyspark: pip install "nsm-sim[spark]" (and Java 17 or later)'],
            ) from None
        active = Spark.getActiveSession()
        if active is not None:
            return active
        builder = Spark.builder.appName("nsm-sim")
        if os.environ.get("SPARK_REMOTE"):
            builder = builder.remote(os.environ["SPARK_REMOTE"])
        else:
            builder = (
                builder.master(os.environ.get(MASTER_VARIABLE, "local[*]"))
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.shuffle.partitions", "8")
            )
        spark = builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    if not os.environ.get("SPARK_REMOTE"):
        spark.sparkContext.setLogLevel("FATAL")
    return spark


def _micros(value: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this="unix_micros", expressions=[value])


def _from_micros(value: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this="timestamp_micros", expressions=[value])


def _date_bin(node: exp.DateBin) -> exp.Expression:
    """``DATE_BIN(width, value, origin)`` as micro-second arithmetic (Spark has no DATE_BIN)."""
    width = int(node.this.this.name) * 86_400_000_000
    origin = _micros(node.args["unit"])
    width_lit = exp.Literal.number(width)
    offset = exp.paren(exp.Sub(this=_micros(node.expression), expression=origin))
    steps = exp.Floor(this=exp.Div(this=offset, expression=width_lit))
    start = exp.Add(
        this=origin,
        expression=exp.Mul(this=exp.cast(steps, exp.DataType.Type.BIGINT), expression=width_lit),
    )
    return _from_micros(start)


def to_spark(node: exp.Expression) -> exp.Expression:
    """Rewrite the DuckDB functions the queries use into Spark's.

    Timestamps without a zone are Spark's ``TIMESTAMP`` read in the session's zone (UTC),
    so local times compare and add as wall-clock times on both engines.
    """
    new = _rewritten(node)
    if new is node:
        return node
    for child in list(new.iter_expressions()):
        child.replace(child.transform(to_spark))
    return new


def _rewritten(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.TIMESTAMP:
        return exp.DataType.build("TIMESTAMPLTZ")
    if isinstance(node, exp.DateBin):
        return _date_bin(node)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        args = node.expressions
        if name == "epoch_us":
            return _micros(args[0])
        if name == "make_timestamp":
            return _from_micros(args[0])
        if name == "timezone":
            return exp.Anonymous(this="from_utc_timestamp", expressions=[args[1], args[0]])
        if name == "hash":
            return exp.Anonymous(this="xxhash64", expressions=args)
    return node


class SparkSession:
    """Run SQLGlot statements on Spark, keeping their SQL: DuckDB's session's interface.

    Parameters
    ----------
    source : str
        What the queries read (named when Spark refuses one).
    """

    def __init__(self, source: str):
        self.source = source
        self.spark = _active_or_new()
        self.statements: list[str] = []
        self._views: list[str] = []
        self._cached: list[str] = []

    def _sql(self, statement: exp.Expression) -> str:
        return statement.transform(to_spark).sql(dialect=DIALECT)

    def _execute(self, text: str):
        from pyspark.errors import PySparkException

        self.statements.append(text)
        try:
            return self.spark.sql(text)
        except PySparkException as err:
            reason = str(err).strip().splitlines()[0]
            raise DataError(
                self.source,
                [f"the query engine refused a query: {reason} (--show-sql prints the queries)"],
            ) from None

    def run(self, statement: exp.Expression):
        """Run one statement; a ``CREATE ... TABLE`` becomes a cached temporary view.

        Raises
        ------
        DataError
            When Spark refuses it.
        """
        if isinstance(statement, exp.Create):
            name = statement.this.name
            kept = statement.args.get("kind") == "TABLE"
            view = statement.copy()
            view.set("kind", "VIEW")
            self._execute(self._sql(view))
            self._views.append(name)
            if kept:
                self._execute(f"CACHE TABLE {name}")
                self._cached.append(name)
            return None
        return self._execute(self._sql(statement))

    def _arrow(self, statement: exp.Expression):
        frame = self.run(statement)
        try:
            return frame.toArrow()
        except Exception as err:  # Spark's errors surface when the rows are computed
            from pyspark.errors import PySparkException

            if not isinstance(err, PySparkException):
                raise
            reason = str(err).strip().splitlines()[0]
            raise DataError(self.source, [f"the query engine refused a query: {reason}"]) from None

    def rows(self, statement: exp.Expression) -> list[tuple[Any, ...]]:
        """Run a query and return its rows (timestamps as local times, without a zone)."""
        table = self._arrow(statement)
        columns = [_naive(c) for c in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def frame(self, statement: exp.Expression) -> pd.DataFrame:
        """Run a query and return its rows as a data frame."""
        frame = self._arrow(statement).to_pandas()
        for name in frame.columns:
            if isinstance(frame[name].dtype, pd.DatetimeTZDtype):
                frame[name] = frame[name].dt.tz_localize(None)
        return frame

    def table(
        self, ref: Table, base: Path, field: str, alias: str
    ) -> tuple[exp.Expression, dict[str, str]]:
        """Read a source's files as a temporary view; return it and its columns with types.

        Parameters
        ----------
        ref : str, list of str or DatabaseTable
            Files or globs (relative to ``base``), or URIs Spark reads itself.
        base : Path
        field : str
            The tree file's field naming it (for messages).
        alias : str
            Name of the view.
        """
        if isinstance(ref, DatabaseTable):
            raise DataError(
                self.source,
                [
                    f"{field}: a DuckDB database file is read by --engine duckdb only; on Spark "
                    "give Parquet or CSV files (local, or URIs such as s3a://bucket/events/)"
                ],
            )
        patterns = [ref] if isinstance(ref, str) else list(ref)
        if all(_URI.match(p) for p in patterns):
            files = patterns
            kind = "csv" if all(p.lower().endswith(".csv") for p in patterns) else "parquet"
        else:
            files, kind = resolve_files(ref, base, field, self.source)
        reader = self.spark.read
        try:
            if kind == "csv":
                frame = reader.csv(files, header=True, inferSchema=True)
            else:
                frame = reader.parquet(*files)
        except Exception as err:
            problem = f"{field}: not readable: {err}"
            if "TIMESTAMP(NANOS" in str(err):
                problem = (
                    f"{field}: Spark reads Parquet timestamps to the micro-second, and these are "
                    "in nanoseconds; write them in micro-seconds (pandas: "
                    "to_parquet(..., coerce_timestamps='us'); pyarrow: "
                    "write_table(..., coerce_timestamps='us')) or use --engine duckdb"
                )
            raise DataError(self.source, [problem]) from None
        frame.createOrReplaceTempView(alias)
        self._views.append(alias)
        types = {f.name: duckdb_type(f.dataType.simpleString()) for f in frame.schema.fields}
        return exp.to_table(alias), types

    def close(self) -> None:
        """Drop the views and cached tables this session made (Spark itself stays up)."""
        catalog = self.spark.catalog
        for name in self._cached:
            self.spark.sql(f"UNCACHE TABLE IF EXISTS {name}")
        for name in dict.fromkeys(self._views):
            catalog.dropTempView(name)

    def __enter__(self) -> SparkSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _naive(column) -> list[Any]:
    """Return a column's values, timestamps in the session's zone (UTC) without the zone."""
    values = column.to_pylist()
    return [v.replace(tzinfo=None) if getattr(v, "tzinfo", None) else v for v in values]
