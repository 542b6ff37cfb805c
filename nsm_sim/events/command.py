"""The commands on events: ``nsm-sim build``, the events of ``generate --events``, checks.

Plain functions with typed arguments (Typer reads the annotations), so the command line
registers them as they are and tests call them directly. Bad input raises
:class:`~nsm_sim.errors.InputError` (exit code 2 at the command line) and writes nothing.
DuckDB is imported only when a command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nsm_sim.errors import InputError
from nsm_sim.files import dumps, write_file, write_parquet

if TYPE_CHECKING:
    from nsm_sim.data import Panel, Reduction
    from nsm_sim.events.engine import Build

#: Panel file formats ``build`` writes, by suffix.
PANEL_SUFFIXES = (".parquet", ".csv")


def _panel_writer(build: Build, suffix: str):
    frame = build.frame
    if suffix == ".csv":
        return lambda p: frame.to_csv(p, index=False, date_format="%Y-%m-%d")
    return lambda p: write_parquet(frame, p)


def summary_line(summary: dict[str, Any]) -> str:
    """Say in one line what a build made (for ``build`` and ``check``).

    Parameters
    ----------
    summary : dict
        :attr:`nsm_sim.events.engine.Build.summary`.

    Returns
    -------
    str
    """
    events, periods = summary["events"], summary["periods"]
    return (
        f"{summary['rows']:,} account-periods of {summary['accounts']:,} accounts x "
        f"{periods['count']} {periods['kind']}s ({periods['first']} to {periods['last']}, "
        f"{summary['timezone']}) from {events['observed']:,} events ({events['read']:,} read, "
        f"{events['read'] - events['kept']:,} excluded); churn by {summary['churn_rule']}: "
        f"{summary['churned']:,} churned, {summary['censored']:,} censored at the end of the "
        f"data ({summary['observed_until']})"
    )


def build(
    tree: Annotated[
        Path, typer.Argument(help="Tree file with metric definitions (source, metrics).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Panel file to write: .parquet or .csv.")
    ] = None,
    show_sql: Annotated[
        bool, typer.Option("--show-sql", help="Print every SQL statement that runs.")
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine", help="Query engine: duckdb (embedded, no server) or spark (the extra)."
        ),
    ] = "duckdb",
    json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Build the panel from a tree file's event log and metric definitions."""
    from nsm_sim.events.engine import build_panel, check_engine

    check_engine(engine)
    if out is None and not show_sql:
        raise InputError(
            "--out", ["required: the panel file to write (.parquet or .csv), or --show-sql"]
        )
    if out is not None and out.suffix.lower() not in PANEL_SUFFIXES:
        raise InputError(
            "--out", [f"expected a .parquet or .csv file, got {out.suffix or 'no suffix'!r}"]
        )
    result = build_panel(tree, engine=engine)
    if out is not None:
        write_file(out, _panel_writer(result, out.suffix.lower()))
    if json:
        payload: dict[str, Any] = {"out": str(out) if out else None, **result.summary}
        if show_sql:
            payload["sql"] = list(result.statements)
        sys.stdout.write(dumps(payload) + "\n")
        return
    if show_sql:
        sys.stdout.write("".join(f"{s};\n\n" for s in result.statements))
    from nsm_sim.output import terminal

    where = f" to {out}" if out is not None else ""
    terminal.console(stderr=show_sql).print(
        f"Built{where}: {summary_line(result.summary)}", soft_wrap=True
    )


def write_events(
    out_dir: Path, accounts: int, periods: int, seed: int, fmt: str = "csv"
) -> dict[str, Path]:
    """Write the synthetic world as events (``nsm-sim generate --events``).

    Parameters
    ----------
    out_dir : Path
        Folder to write into (created if missing).
    accounts, periods, seed : int
        The world's size and seed.
    fmt : {"csv", "parquet"}
        Format of the world's own panel, written beside the events.

    Returns
    -------
    dict
        The paths written: ``events``, ``accounts``, ``tree``, ``panel``, ``truth``.
    """
    from nsm_sim.events.synthetic import write_synthetic_events

    return write_synthetic_events(out_dir, accounts=accounts, periods=periods, seed=seed, fmt=fmt)


def panel_for(tree: Path, data: Path | None, engine: str = "duckdb") -> Panel:
    """Return the panel of ``fit``, ``validate`` and ``report``: read, or built from events.

    Parameters
    ----------
    tree : Path
        A tree file, with or without metric definitions.
    data : Path or None
        A panel file; without it the tree file must define its metrics from events.
    engine : {"duckdb", "spark"}, default "duckdb"
        The query engine that builds the panel from events (its rows then come back).

    Returns
    -------
    Panel

    Raises
    ------
    InputError
        When neither a panel nor definitions are given, or either does not check.
    """
    from nsm_sim.data import load_panel
    from nsm_sim.events.engine import check_engine

    check_engine(engine)
    if data is not None:
        return load_panel(data, _tree_of(tree))
    _require_definitions(tree)
    return panel_from_tree(tree, engine)


def reduction_for(
    tree: Path, data: Path | None, *, engine: str | None = None, within: bool = True
) -> Reduction:
    """Return the reduction ``fit`` reads: of the panel in memory, or in a query engine.

    Parameters
    ----------
    tree : Path
        A tree file, with or without metric definitions.
    data : Path or None
        A panel file (Parquet or CSV, or a glob of them); without it the tree file must
        define its metrics from events.
    engine : {"duckdb", "spark"} or None, default None
        None: the panel's rows are read into memory and reduced there
        (:func:`nsm_sim.data.reduce_panel`). An engine: the panel is built (from events) or
        read (the file) and reduced inside it, and only the reduction comes back
        (:mod:`nsm_sim.events.reduction`); equal to the reduction in memory to about 1e-12
        relative, at any size.
    within : bool, default True
        Driver statistics within accounts with period effects; ``False``: pooled.

    Returns
    -------
    Reduction

    Raises
    ------
    InputError
        When neither a panel nor definitions are given, or the engine is unknown.
    """
    if engine is None:
        from nsm_sim.data import reduce_panel

        return reduce_panel(panel_for(tree, data), within=within)
    from nsm_sim.events.engine import check_engine
    from nsm_sim.events.reduction import reduce_events, reduce_panel_file

    check_engine(engine)
    if data is not None:
        return reduce_panel_file(data, _tree_of(tree), within=within, engine=engine)
    _require_definitions(tree)
    return reduce_events(tree, within=within, engine=engine)


def _tree_of(tree: Path):
    from nsm_sim.events.load import has_definitions, load_definitions
    from nsm_sim.spec import load_tree

    return load_definitions(tree).tree if has_definitions(tree) else load_tree(tree)


def _require_definitions(tree: Path) -> None:
    from nsm_sim.events.load import has_definitions

    if not has_definitions(tree):
        raise InputError(
            "--data",
            [
                f"required: {tree} defines no metrics from events (no `source`); give a panel "
                "with --data, or add source and metrics to the tree file"
            ],
        )


def panel_from_tree(tree: Path, engine: str = "duckdb") -> Panel:
    """Build the panel of a tree file with metric definitions (``nsm-sim build`` in memory).

    Parameters
    ----------
    tree : Path
        A tree file with ``source`` and ``metrics``.
    engine : {"duckdb", "spark"}, default "duckdb"

    Returns
    -------
    Panel
    """
    from nsm_sim.events.engine import build_panel

    return build_panel(tree, engine=engine).panel


def check_events(tree: Path, engine: str = "duckdb") -> dict[str, Any]:
    """Check a tree file's metric definitions against its source (``nsm-sim check``).

    Runs the whole build without writing anything, so every problem is found: missing
    columns, unknown event names, definitions matching no event, events outside the
    accounts' lifetimes, and the rest (see :func:`nsm_sim.events.engine.build_panel`).

    Parameters
    ----------
    tree : Path
        A tree file with ``source`` and ``metrics``.
    engine : {"duckdb", "spark"}, default "duckdb"

    Returns
    -------
    dict
        The build's summary and ``metrics``: per metric its ``definition`` (in words),
        ``owner`` and ``description``.
    """
    from nsm_sim.events.engine import build_panel
    from nsm_sim.events.load import load_definitions

    td = load_definitions(tree)
    result = build_panel(td, engine=engine)
    return {**result.summary, "metrics": definition_rows(td)}


def definition_rows(td) -> dict[str, dict[str, str | None]]:
    """Describe each metric definition in words (for ``check`` and the README).

    Parameters
    ----------
    td : TreeDefinitions

    Returns
    -------
    dict
        Metric to ``definition``, ``owner``, ``description``.
    """
    out = {}
    for name, metric in td.definitions.metrics.items():
        parts = {role: _measure_words(m) for role, m in metric.measures.items()}
        text = parts.get("value") or f"{parts['numerator']} / {parts['denominator']}"
        if metric.window is not None:
            text += f" over {metric.window} days"
        if metric.at_least is not None:
            text = f"1 if {text} >= {metric.at_least:g}, else 0"
        out[name] = {"definition": text, "owner": metric.owner, "description": metric.description}
    return out


def _measure_words(measure) -> str:
    what = {"count": "count", "unique_users": "unique users", "sum": f"sum of {measure.column}"}
    where = f" where {measure.where}" if measure.where else ""
    return f"{what[measure.aggregate]} of {' or '.join(measure.event)}{where}"
