"""What every figure shares: size, colours, labels as plain text, and checks of its input.

Every figure of :mod:`nsm_sim.output.evidence_plots` and :mod:`nsm_sim.output.decision_plots`
takes tidy pandas frames (or plain arrays) and returns a :class:`matplotlib.figure.Figure` built
without pyplot, so no global figure state is created or leaked: save it with
``fig.savefig(...)`` (or :func:`nsm_sim.files.write_files`) and let it go out of scope. Titles
and axis labels use the metric names of the tree.

Each figure copes with the awkward cases a real fit produces: a single segment, one metric,
missing (NaN) interval ends, a threshold that was not estimated, or an empty frame (then the
figure says there is nothing to show instead of raising). Names from a user's files (segments,
initiatives) are drawn as plain text, never as mathtext, and shortened to
:data:`LABEL_LENGTH` characters.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

FIGSIZE = (8.0, 4.5)
"""Default figure size in inches: readable on screen, in an e-mail and on paper."""

#: Colours of segments and of scenarios without a colour of their own.
PALETTE = tuple(to_hex(c) for c in colormaps["tab10"].colors)
#: Fixed colours of the usual scenarios, the same in every figure.
SCENARIO_COLOURS = {
    "baseline": "#7f7f7f",
    "no initiative": "#7f7f7f",
    "portfolio": "#1f77b4",
    "every initiative": "#1f77b4",
    "all initiatives together": "#1f77b4",
    "chosen portfolio": "#2ca02c",
}
#: Colour of the population-level estimate, drawn beside the segments' colours.
POPULATION_COLOUR = "#222222"

#: Longest name drawn in a figure; longer ones are shortened with an ellipsis.
LABEL_LENGTH = 60


def plain(name: object) -> str:
    r"""Return a name as figure text: shortened, and with ``$`` drawn as itself (no mathtext).

    Parameters
    ----------
    name : object
        A name from a user's file.

    Returns
    -------
    str

    Examples
    --------
    >>> print(plain("cost $x^$"))
    cost \$x^\$
    """
    text = str(name)
    if len(text) > LABEL_LENGTH:
        text = text[: LABEL_LENGTH - 1] + "\u2026"
    return text.replace("$", r"\$")


def segment_colours(segments: Sequence[object]) -> dict[str, str]:
    """Assign a stable colour to each segment (sorted by name, so every figure agrees).

    Parameters
    ----------
    segments : sequence
        Segment values; missing values are ignored.

    Returns
    -------
    dict of str to str
        Segment name to hex colour.

    Examples
    --------
    >>> segment_colours(["team", "free"])
    {'free': '#1f77b4', 'team': '#ff7f0e'}
    """
    names = sorted({str(s) for s in segments if not is_missing(s)})
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def is_missing(value: object) -> bool:
    """Return whether ``value`` is missing (None, NaN, NaT or pandas' NA).

    Parameters
    ----------
    value : object

    Returns
    -------
    bool
    """
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def finite_mask(values: object) -> np.ndarray:
    """Return which of ``values`` are finite numbers (text and missing values are not).

    Parameters
    ----------
    values : array-like

    Returns
    -------
    ndarray of bool
    """
    return np.isfinite(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float))


def floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Return a column as floats, NaN where a value is not a number or the column is absent.

    Parameters
    ----------
    frame : DataFrame
    column : str

    Returns
    -------
    ndarray of float
    """
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ValueError naming the columns a figure needs that ``frame`` lacks.

    Parameters
    ----------
    frame : DataFrame
    columns : sequence of str
        The columns the figure reads.
    what : str
        The figure's name, for the message.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {list(columns)}; missing {missing}")


def new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    """Return a new white figure with a constrained layout, built without pyplot.

    Parameters
    ----------
    figsize : tuple of float, default FIGSIZE
        Width and height in inches.

    Returns
    -------
    Figure
    """
    fig = Figure(figsize=figsize, layout="constrained")
    fig.set_facecolor("white")
    return fig


def nothing_to_show(ax, message: str = "nothing to show") -> None:
    """Write ``message`` in the middle of an empty panel, without ticks.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    message : str, default "nothing to show"
    """
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def segments_of(frame: pd.DataFrame) -> pd.Series:
    """Return the ``segment`` column with None where it is missing (or all None without it).

    Parameters
    ----------
    frame : DataFrame

    Returns
    -------
    Series of object
        None marks the population-level rows.
    """
    if "segment" not in frame.columns:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame["segment"].astype(object).where(frame["segment"].notna(), None)
