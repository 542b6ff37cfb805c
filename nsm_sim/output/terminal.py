"""The terminal: rich tables on stdout, messages and progress on stderr.

Every ``render_*`` function prints a result the pipeline has computed; none computes one.
Text is never read as console markup: names, paths and messages from a user's files print as
they are (styles are applied to :class:`rich.text.Text` parts only).
Tables fit the terminal's width (80 columns when piped): long text wraps at spaces, names
and numbers are never cut, and a table too wide even so is folded into several tables that
repeat its key column. ``--json`` and ``--out`` carry every column in full.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
)
from rich.table import Table
from rich.text import Text

from nsm_sim.output import tables
from nsm_sim.output.format import fmt

#: Text cells longer than this wrap at spaces; shorter ones, names and numbers stay whole.
WRAP_AFTER = 32

#: Spaces between two columns of a table.
COLUMN_GAP = 2


def console(stderr: bool = False) -> Console:
    """Return a console for tables (stdout) or for messages and progress (stderr).

    Parameters
    ----------
    stderr : bool, default False
        Print on standard error.

    Returns
    -------
    rich.console.Console
    """
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False)


@dataclass(frozen=True)
class _Column:
    """A column as shown: its header, cells, alignment and the narrowest width that cuts nothing."""

    header: str
    cells: list[str]
    numeric: bool
    natural: int
    narrowest: int


def _column(frame: pd.DataFrame, name: str, keep_whole: bool) -> _Column:
    cells = [fmt(value) for value in frame[name]]
    header = str(name).replace("_", " ")
    numeric = pd.api.types.is_numeric_dtype(frame[name])
    longest = max((len(cell) for cell in cells), default=0)
    whole = keep_whole or numeric or longest <= WRAP_AFTER
    pieces = cells if whole else [word for cell in cells for word in cell.split()]
    narrowest = max([len(word) for word in header.split()] + [len(p) for p in pieces] + [1])
    return _Column(header, cells, numeric, max(len(header), longest, 1), narrowest)


def _width(columns: Sequence[_Column], widths: Sequence[int]) -> int:
    return sum(widths) + COLUMN_GAP * (len(columns) - 1)


def _fit(columns: Sequence[_Column], width: int) -> list[int] | None:
    """Return content widths that fit ``width`` and cut nothing, or None if there are none.

    Columns start at their natural width; while the table is too wide, the column with the
    most room to give (down to its longest word, or its longest whole cell) gives one.
    """
    widths = [c.natural for c in columns]
    room = [c.natural - c.narrowest for c in columns]
    for _ in range(_width(columns, widths) - width):
        widest = max(range(len(columns)), key=lambda i: (room[i], widths[i]))
        if room[widest] <= 0:
            return None
        widths[widest] -= 1
        room[widest] -= 1
    return widths


def _folds(columns: Sequence[_Column], keys: int, width: int) -> list[list[int]]:
    """Split the columns after the first ``keys`` into groups that fit beside the keys."""
    groups: list[list[int]] = []
    current: list[int] = []
    key_columns = list(range(keys))
    for index in range(keys, len(columns)):
        trial = [columns[i] for i in [*key_columns, *current, index]]
        if current and _fit(trial, width) is None:
            groups.append([*key_columns, *current])
            current = []
        current.append(index)
    groups.append([*key_columns, *current])
    return groups


def _rich_table(columns: Sequence[_Column], widths: Sequence[int] | None) -> Table:
    tab = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        header_style="bold",
    )
    for k, column in enumerate(columns):
        tab.add_column(
            Text(column.header),
            justify="right" if column.numeric else "left",
            width=None if widths is None else widths[k],
            overflow="fold",
        )
    for row in zip(*(c.cells for c in columns), strict=True):
        tab.add_row(*(Text(cell) for cell in row))
    return tab


def print_table(
    con: Console,
    frame: pd.DataFrame,
    title: str | None = None,
    *,
    columns: Sequence[str] | None = None,
    keys: int = 1,
) -> None:
    """Print a DataFrame as a table that fits the console: numbers right-aligned, formatted.

    Parameters
    ----------
    con : rich.console.Console
    frame : pandas.DataFrame
    title : str, optional
        Printed above the table.
    columns : sequence of str, optional
        The columns to show, in order; all of them by default.
    keys : int, default 1
        The first ``keys`` columns name the rows: kept whole, and repeated in every part of
        a table folded to fit the width.
    """
    shown = list(columns or frame.columns)
    laid = [_column(frame, name, k < keys) for k, name in enumerate(shown)]
    if title:
        con.print(Text(title, style="bold"))
    widths = _fit(laid, con.width)
    if widths is not None or len(laid) <= keys + 1:
        con.print(_rich_table(laid, widths))
        return
    for group in _folds(laid, keys, con.width):
        part = [laid[i] for i in group]
        con.print(_rich_table(part, _fit(part, con.width)))


class _Seconds(ProgressColumn):
    """Seconds since the task started."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.elapsed or 0:.0f} s", style="progress.elapsed")


class _CountedBar(BarColumn):
    """A bar, only for a task that counts its steps."""

    def render(self, task: Task) -> Any:
        return super().render(task) if task.total else Text("")


class _Count(MofNCompleteColumn):
    """``done/total``, only for a task that counts its steps."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.total else Text("")


class Stages:
    """Progress of a command on stderr: a line per stage with the seconds it took.

    Use as a context manager; :meth:`start` begins a stage (and ends the one before it with
    a line saying how long it took), :meth:`advance` moves the running stage's bar. On a
    terminal the running stage is shown live with a spinner and its elapsed seconds.

    Parameters
    ----------
    err : rich.console.Console
        Standard error.
    quiet : bool
        Show nothing (``--json``).
    """

    def __init__(self, err: Console, quiet: bool = False):
        self._err = err
        self._quiet = quiet
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            _CountedBar(),
            _Count(),
            _Seconds(),
            console=err,
            transient=True,
            disable=quiet or not err.is_terminal,
        )
        self._task: Any = None
        self._label = ""
        self._started = 0.0

    def __enter__(self) -> Stages:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._end(done=kind is None)
        self._progress.stop()

    def _end(self, done: bool = True) -> None:
        if self._task is None:
            return
        self._progress.remove_task(self._task)
        self._task = None
        if done and not self._quiet:
            seconds = time.perf_counter() - self._started
            self._err.print(Text(f"{self._label} ({seconds:.0f} s)"))

    def start(self, label: str) -> None:
        """End the running stage, if any, and start ``label``."""
        self._end()
        self._label = label
        self._started = time.perf_counter()
        self._task = self._progress.add_task(escape(label), total=None)

    def advance(self, done: int, total: int) -> None:
        """Show that the running stage has done ``done`` of ``total`` steps."""
        if self._task is not None:
            self._progress.update(self._task, completed=done, total=total)


def announce_first_compile(err: Console, compiledir: Path, quiet: bool = False) -> None:
    """Say that the models are compiled once, if the compile cache holds no module yet.

    Parameters
    ----------
    err : rich.console.Console
        Standard error.
    compiledir : Path
        PyTensor's compile directory (``pytensor.config.compiledir``).
    quiet : bool
        Say nothing.
    """
    if quiet or any(compiledir.glob("tmp*/*.so")):
        return
    err.print(Text(f"compiling the models once; later runs reuse them from {compiledir}"))


def render_warnings(err: Console, warnings: Sequence[str]) -> None:
    """Print each warning on its own line, after ``warning:``.

    Parameters
    ----------
    err : rich.console.Console
        Standard error.
    warnings : sequence of str
        A fit's or a panel's warnings.
    """
    for text in warnings:
        err.print(Text.assemble(("warning:", "yellow"), f" {text}"), soft_wrap=True)


# --------------------------------------------------------------------------- check


def render_scenario_check(con: Console, facts: Mapping[str, Any]) -> None:
    """Print that a scenario file is valid, with its size and capacity."""
    con.print(
        Text.assemble(
            ("OK", "green"),
            f" scenario {facts['scenario']!r} on tree {facts['tree']!r}: "
            f"{facts['initiatives']} initiatives, total effort {facts['total_effort']:g} for "
            f"capacity {facts['capacity']:g}, horizon {facts['horizon']} periods",
        )
    )


def render_tree_check(con: Console, facts: Mapping[str, Any]) -> None:
    """Print that a metric tree is valid: its North Star, inputs and candidates."""
    candidates = ", ".join(facts["candidates"]) or "none"
    con.print(
        Text.assemble(
            ("OK", "green"),
            f" tree {facts['tree']!r}: North Star {facts['north_star']!r}, "
            f"{len(facts['nodes']) - 1} inputs, candidates: {candidates}",
        )
    )


def render_events_check(con: Console, facts: Mapping[str, Any]) -> None:
    """Print that a tree's metric definitions build a panel from its events, and how."""
    render_tree_check(con, facts)
    built = facts["events"]
    periods = built["periods"]
    con.print(
        Text(
            f"Its events build {built['rows']:,} account-periods of {built['accounts']:,} "
            f"accounts x {periods['count']} {periods['kind']}s ({periods['first']} to "
            f"{periods['last']}); churn by {built['churn_rule']}: {built['churned']:,} "
            f"churned, {built['censored']:,} censored at the end"
        )
    )
    print_table(con, tables.metric_definitions(built["metrics"]), "Metric definitions")


def render_panel_check(con: Console, source: Path, tree: str, facts: Mapping) -> None:
    """Print that a panel meets its tree's contract, and what it holds."""
    description = facts["data"]
    con.print(Text.assemble(("OK", "green"), f" {source} against tree {tree!r}"))
    print_table(con, tables.panel_facts(description), "Panel")
    if "metrics" in description:
        print_table(con, tables.metric_ranges(description["metrics"]), "Metric ranges")


# --------------------------------------------------------------------------- fit


def render_checks(con: Console, err: Console, checks: pd.DataFrame) -> None:
    """Print the trust gates, and a warning on ``err`` for each that did not pass."""
    print_table(con, checks, "Trust gates", columns=["check", "status", "detail"])
    for _, row in checks[checks["status"] != "PASS"].iterrows():
        err.print(
            Text.assemble(
                ("warning:", "yellow"),
                f" {row['check']}: {row['status']} — {row.get('detail', '')}",
            )
        )


def render_fit(
    con: Console, err: Console, fit: Any, summaries: Mapping[str, pd.DataFrame], out: Path
) -> None:
    """Print a fit: how it was estimated, elasticities, churn model, trust gates, bundle."""
    con.print(Text(str(fit.card.get("estimation", "")), style="bold"))
    drivers = tables.drivers_view(summaries["drivers"])
    print_table(con, drivers, "Elasticities (mean, 90% interval)", keys=3)
    print_table(con, summaries["retention"], "Churn model (mean, 90% interval)", keys=2)
    reason = (fit.card.get("hinge_choice") or {}).get("reason")
    if reason:  # older bundles do not say
        con.print(Text(f"{reason[0].upper()}{reason[1:]}."))
    render_checks(con, err, fit.diagnostics)
    con.print(Text(f"Fit bundle written to {out}/"))


# --------------------------------------------------------------------------- validation


def beyond_trained_tenure_line(validation: Any) -> str | None:
    """Return the line saying how many scored rows were older than every training row.

    Parameters
    ----------
    validation : nsm_sim.leading.Validation
        Its ``metrics`` with ``beyond_trained_tenure`` and ``trained_tenure_max`` (from
        :func:`nsm_sim.leading.predictive_power`).

    Returns
    -------
    str or None
        None when no scored row was beyond the trained tenure (or the table does not say).
    """
    m = validation.metrics
    if "beyond_trained_tenure" not in m or not len(m):
        return None
    share = float(m["beyond_trained_tenure"].iloc[0])
    if not share > 0:
        return None
    tenure = int(m["trained_tenure_max"].iloc[0])
    return (
        f"Out-of-time scores: {100 * share:.0f}% of the scored rows were beyond the trained "
        f"tenure ({tenure} periods); their tenure effect is held there, not extrapolated."
    )


def render_validation(
    con: Console, validation: Any, verbose: bool = False, err: Console | None = None
) -> None:
    """Print the verdicts, the reasons, the threshold and the trust gates of the fits.

    One row per fit (R-hat, ESS, divergences and the worst status) and, on ``err`` (standard
    error when omitted), one warning line for the fits that did not pass (with ``verbose``, one
    per check, and the lag convention).
    """
    print_table(con, tables.validation_table(validation), "Is the North Star leading?", keys=2)
    for _, row in validation.metrics.iterrows():
        con.print(
            Text.assemble("  ", (str(row["metric"]), "bold"), f": {row['verdict']} — {row['why']}")
        )
    beyond = beyond_trained_tenure_line(validation)
    if beyond:
        con.print(Text(beyond, style="dim"))
    sentence = (validation.threshold or {}).get("sentence")
    if sentence:
        con.print(Text(f"Threshold: {sentence}"))
    gates = validation.diagnostics() if hasattr(validation, "diagnostics") else None
    if gates is not None:  # a validation read back from its CSV files has no fits to grade
        shown = ["fit", "metric", "status", "max_rhat", "min_ess_bulk", "min_ess_tail"]
        frame = pd.DataFrame(gates["fits"])[[*shown, "divergences"]]
        print_table(con, frame, "Trust gates of the fits", keys=2)
        err = err or console(stderr=True)
        flagged = frame[frame["status"] != "PASS"]
        if verbose:
            for line in gates["warnings"]:
                err.print(Text.assemble(("warning:", "yellow"), f" {line}"))
        elif len(flagged):
            failed = int((flagged["status"] == "FAIL").sum())
            err.print(
                Text.assemble(
                    ("warning:", "yellow"),
                    f" {len(flagged)} of {len(frame)} validation fits did not pass "
                    f"({failed} FAIL, {len(flagged) - failed} REVIEW; "
                    f"{len(gates['warnings'])} checks; --verbose lists them, "
                    "validation_checks.csv has every one): read their verdicts with care",
                )
            )
    if verbose:
        con.print(Text(f"Timing: {validation.settings.get('lag_convention', '')}", style="dim"))


# --------------------------------------------------------------------------- simulation


def render_simulation(con: Console, result: Any) -> None:
    """Print the per-initiative outcomes of a simulation."""
    scenario = result.scenario
    print_table(
        con,
        tables.simulation_table(result),
        f"{scenario.name}: {result.simulations:,} simulations, horizon {scenario.horizon} "
        "periods (changes against no initiative)",
    )
    row = tables.simulation_summary(result).iloc[-1]
    effort, capacity = float(row["effort"]), float(scenario.capacity)
    currency = tables.currency_of(result)
    money = f" {currency}" if currency and result.has_value else ""
    fits = "within" if effort <= capacity else "over"
    con.print(
        Text.assemble(
            (f"All {len(result.names)} initiatives together", "bold"),
            f" (effort {effort:g}, {fits} the capacity of {capacity:g}; not a chosen "
            f"portfolio): {scenario.tree.north_star} "
            f"{fmt(row['north_star_change_pct_mean'])} % (90% interval "
            f"{fmt(row['north_star_change_pct_p5'])} to {fmt(row['north_star_change_pct_p95'])}), "
            f"retained accounts {fmt(row['retained_accounts_mean'])}, value "
            f"{fmt(row['value_mean'])}{money}",
        )
    )
    if not result.has_value:
        con.print(Text("No value column: value is retained accounts.", style="dim"))


def render_prioritisation(con: Console, result: Any, plan: Any) -> None:
    """Print the simulation, the ranking, the chosen portfolio and the value of information."""
    render_simulation(con, result)
    currency = tables.currency_of(result)
    ranking = tables.ranking_view(plan, currency)
    print_table(con, ranking, f"Ranking by {plan.quantity} per effort", keys=2)
    portfolio = plan.portfolio
    con.print(
        Text.assemble(
            ("Best portfolio", "bold"),
            f" (effort {portfolio.effort:g} of {portfolio.capacity:g}): "
            + ", ".join(portfolio.selected),
        )
    )
    joint = portfolio.joint or {}
    unit = f" ({currency})" if currency and plan.quantity == "value" else ""
    con.print(
        Text(
            f"  expected {plan.quantity}{unit} {fmt(portfolio.expected_value)} (sum of each "
            "alone); "
            f"together {fmt(joint.get('mean'))} (90% interval {fmt(joint.get('p5'))} to "
            f"{fmt(joint.get('p95'))}), P(>0) {fmt(joint.get('p_positive'))}"
        )
    )
    print_table(con, plan.evpi, "Value of perfect information: test the top one first")
    if plan.note:
        con.print(Text(str(plan.note), style="dim"))


def render_comparison(con: Console, comparison: Any) -> None:
    """Print two scenarios' portfolios side by side with P(A beats B)."""
    a, b = comparison.names
    basis = (
        "the portfolio each funds under its capacity"
        if comparison.funded
        else "each scenario's initiatives together"
    )
    print_table(con, tables.comparison_view(comparison), f"A = {a}  vs  B = {b} ({basis})")
    sides = zip("AB", comparison.selected, comparison.effort, comparison.capacity, strict=True)
    for side, names, effort, capacity in sides:
        over = "  (over capacity)" if effort > capacity else ""
        what = "funds" if comparison.funded else "proposes"
        con.print(
            Text(
                f"{side} {what} effort {effort:g} of capacity {capacity:g}{over}: "
                f"{', '.join(names) or 'nothing'}"
            )
        )


# --------------------------------------------------------------------------- analysis


def render_analysis(con: Console, err: Console, analysis: Any, verbose: bool = False) -> None:
    """Print what the report holds: verdicts, drivers, trust gates, the plan and forecast."""
    if analysis.validation is not None:
        render_validation(con, analysis.validation, verbose, err)
    drivers = tables.drivers_view(analysis.summaries["drivers"], population=True)
    print_table(con, drivers, "What drives the North Star", keys=2)
    render_checks(con, err, analysis.fit.diagnostics)
    if analysis.plan is not None:
        render_prioritisation(con, analysis.simulation, analysis.plan)
    forecast = getattr(analysis, "forecast", None)
    if forecast is not None:
        from nsm_sim.output.forecast_text import render_forecast  # it imports this module

        render_forecast(con, forecast, getattr(analysis, "target", None))
