"""Library warnings and logs: the ones the tool understands become its own notes.

While a command runs, :func:`listening` records the warnings the libraries raise and keeps
their loggers quiet. Afterwards :func:`render_notes` prints one line per diagnostic it
understands (ArviZ's Pareto-k warning from leave-one-out cross-validation) and, with
``--verbose``, every other warning once, without source locations.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console

#: Loggers of the libraries the models run on; quiet unless ``--verbose``.
LIBRARY_LOGGERS = ("pymc", "pytensor", "arviz", "nutpie", "numba")

#: ArviZ's warning when a leave-one-out importance weight is unreliable (Pareto k > 0.7).
PARETO_K_WARNING = re.compile(r"shape parameter of Pareto distribution", re.IGNORECASE)


@contextmanager
def listening(verbose: bool) -> Iterator[list[warnings.WarningMessage]]:
    """Record the warnings raised inside the block; quiet the libraries' loggers.

    Parameters
    ----------
    verbose : bool
        Leave the libraries' loggers as they are.

    Yields
    ------
    list of warnings.WarningMessage
        The warnings recorded so far: every Pareto-k warning, the others as the warning
        filters in force let them through (once per place by default).
    """
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    levels = [logger.level for logger in loggers]
    if not verbose:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.filterwarnings("always", message=f".*{PARETO_K_WARNING.pattern}")
            yield caught
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _first_line(message: warnings.WarningMessage) -> str:
    text = str(message.message).strip()
    return text.splitlines()[0] if text else message.category.__name__


def render_notes(err: Console, caught: Sequence[warnings.WarningMessage], verbose: bool) -> None:
    """Print the notes of the warnings recorded by :func:`listening`.

    Parameters
    ----------
    err : rich.console.Console
        Standard error.
    caught : sequence of warnings.WarningMessage
    verbose : bool
        Print every other warning once (category and first line, no source location);
        otherwise say how many were left out.
    """
    pareto = [m for m in caught if PARETO_K_WARNING.search(str(m.message))]
    if pareto:
        err.print(
            f"note: LOO: Pareto k > 0.7 for some accounts in {len(pareto)} leave-one-out "
            "estimate(s); those elpd_loo are approximate (pareto_k_max per metric in --json "
            "and validation_metrics.csv)",
            style="yellow",
            highlight=False,
        )
    others = Counter(
        (m.category.__name__, _first_line(m))
        for m in caught
        if not PARETO_K_WARNING.search(str(m.message))
    )
    if not others:
        return
    if not verbose:
        err.print(
            f"{sum(others.values())} library warning(s) left out; --verbose shows them",
            style="dim",
            highlight=False,
        )
        return
    for (category, text), count in others.items():
        times = f" (x{count})" if count > 1 else ""
        err.print(f"warning: {category}: {text}{times}", highlight=False, markup=False)
