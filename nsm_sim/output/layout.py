"""Tables on the terminal: a DataFrame laid out to fit the console's width (:func:`print_table`).

Text is never read as console markup: names, paths and messages from a user's files print as
they are (styles are applied to :class:`rich.text.Text` parts only).
Tables fit the terminal's width (80 columns when piped): long text wraps at spaces, names
and numbers are never cut, and a table too wide even so is folded into several tables that
repeat its key column. ``--json`` and ``--out`` carry every column in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
