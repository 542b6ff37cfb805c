"""DuckDB sessions: a connection of its own that keeps the SQL it runs.

:class:`Session` runs SQLGlot statements on DuckDB (embedded, no server) and keeps each
one's text (``--show-sql``); :mod:`nsm_sim.events.engine` builds panels with it and
:mod:`nsm_sim.events.reduction` reduces them.
"""

from __future__ import annotations

import tempfile
from typing import Any

import duckdb
import pandas as pd
from sqlglot import exp

from nsm_sim.errors import DataError
from nsm_sim.events.filters import DIALECT

#: DuckDB's memory budget; beyond it, it spills to a temporary folder.
MEMORY_LIMIT = "3GB"


class Session:
    """A DuckDB connection that keeps the SQL of every statement it runs.

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
        self._spill = tempfile.TemporaryDirectory(prefix="nsm-sim-duckdb-")
        config: dict[str, Any] = {
            "memory_limit": memory_limit,
            "temp_directory": self._spill.name,
            "preserve_insertion_order": False,
        }
        if threads:
            config["threads"] = threads
        self.con = duckdb.connect(":memory:", config=config)
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
        """Close the connection and remove the spill folder."""
        self.con.close()
        self._spill.cleanup()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
