"""DuckDB sessions: a connection that keeps the SQL it runs, on a reused in-memory database.

:class:`Session` runs SQLGlot statements on DuckDB (embedded, no server) and keeps each
one's text (``--show-sql``); :mod:`nsm_sim.events.engine` builds panels with it and
:mod:`nsm_sim.events.reduction` reduces them. Opening a DuckDB database takes about 25 ms, a
connection to an open one microseconds, so a session borrows an idle database
(:class:`_Database`) and gives it back when it closes.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from typing import Any

import duckdb
import pandas as pd
from sqlglot import exp

from nsm_sim.errors import DataError
from nsm_sim.events.filters import DIALECT

#: DuckDB's memory budget; beyond it, it spills to a temporary folder.
MEMORY_LIMIT = "3GB"


class _Database:
    """An in-memory DuckDB database with its spill folder, lent to one session at a time.

    Opening a database takes about 25 ms; a connection to an open one, microseconds. A
    session's temporary tables and views, and the frames it registers, belong to its
    connection and go with it; the databases it attached are detached before the database
    is lent again (:meth:`Session.close`).
    """

    def __init__(self, memory_limit: str, threads: int | None):
        self.pid = os.getpid()
        self.spill = tempfile.mkdtemp(prefix="nsm-sim-duckdb-")
        config: dict[str, Any] = {
            "memory_limit": memory_limit,
            "temp_directory": self.spill,
            "preserve_insertion_order": False,
        }
        if threads:
            config["threads"] = threads
        self.con = duckdb.connect(":memory:", config=config)

    def close(self) -> None:
        """Close the database and remove its spill folder."""
        self.con.close()
        shutil.rmtree(self.spill, ignore_errors=True)


#: Databases no session uses, by memory budget and threads.
_IDLE: dict[tuple[str, int | None], list[_Database]] = {}
_IDLE_LOCK = threading.Lock()


@atexit.register
def _close_idle() -> None:
    """Close this process's idle databases (not those a fork inherited)."""
    with _IDLE_LOCK:
        for databases in _IDLE.values():
            for database in databases:
                if database.pid == os.getpid():
                    database.close()
        _IDLE.clear()


def _borrow(memory_limit: str, threads: int | None) -> _Database:
    with _IDLE_LOCK:
        idle = _IDLE.get((memory_limit, threads), [])
        while idle:
            database = idle.pop()
            if database.pid == os.getpid():  # never a parent's database after a fork
                return database
    return _Database(memory_limit, threads)


def _give_back(database: _Database, memory_limit: str, threads: int | None) -> None:
    with _IDLE_LOCK:
        _IDLE.setdefault((memory_limit, threads), []).append(database)


class Session:
    """A DuckDB connection that keeps the SQL of every statement it runs.

    Its database is in memory and its own while the session is open (one opened before,
    and idle, is reused: see :class:`_Database`).

    Parameters
    ----------
    source : str
        What the queries read (named when the engine refuses one).
    memory_limit : str
        DuckDB's memory budget.
    threads : int or None
        Threads (default: all cores).
    """

    def __init__(self, source: str, memory_limit: str = MEMORY_LIMIT, threads: int | None = None):
        self.source = source
        self._key = (memory_limit, threads)
        self._database = _borrow(memory_limit, threads)
        self.con = self._database.con.cursor()
        self.statements: list[str] = []

    def run(self, statement: exp.Expression) -> duckdb.DuckDBPyConnection:
        """Run one statement, keeping its SQL (formatted).

        Raises
        ------
        DataError
            When DuckDB refuses it (a filter comparing text with a number, say).
        """
        # rendered once: DuckDB runs the formatted text kept for --show-sql (the layout is
        # whitespace only). Not copied first: DuckDB's generator rewrites only what these
        # statements never hold (CONNECT BY, SEQ functions, nested CTEs), so the copy (as
        # long as the rendering itself) protected nothing.
        text = statement.sql(dialect=DIALECT, pretty=True, copy=False)
        self.statements.append(text)
        try:
            return self.con.execute(text)
        except duckdb.Error as err:
            reason = str(err).splitlines()[0]
            raise DataError(
                self.source,
                [f"the query engine refused a query: {reason} (--show-sql prints the queries)"],
            ) from None

    def rows(self, statement: exp.Expression) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""
        return self.run(statement).fetchall()

    def frame(self, statement: exp.Expression) -> pd.DataFrame:
        """Run a query and return its rows as a data frame."""
        return self.run(statement).df()

    def close(self) -> None:
        """Close the connection (its temporary tables go), detach what it attached.

        The database is then lent to the next session; when detaching fails, it is closed
        and its spill folder removed instead.
        """
        database, self._database = self._database, None
        if database is None:
            return
        try:
            attached = self.con.execute(
                "SELECT database_name FROM duckdb_databases() "
                "WHERE NOT internal AND database_name <> current_database()"
            ).fetchall()
            for (name,) in attached:
                self.con.execute(f"DETACH {exp.to_identifier(name, quoted=True).sql(DIALECT)}")
            self.con.close()
        except duckdb.Error:
            self.con.close()
            database.close()
            return
        _give_back(database, *self._key)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
