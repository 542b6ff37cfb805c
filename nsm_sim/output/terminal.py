"""The terminal: rich tables on stdout, messages and progress on stderr.

Every ``render_*`` function prints a result the pipeline has computed; none computes one.
The pieces live in modules of their own and are all importable from here:

- :mod:`~nsm_sim.output.layout`: the console and the table layout (:func:`print_table`);
- :mod:`~nsm_sim.output.progress`: the stages of a command (:class:`Stages`) and warnings;
- :mod:`~nsm_sim.output.evidence_text`: the checks of the files, a fit and the validation;
- :mod:`~nsm_sim.output.decision_text`: a simulation, the prioritisation and a comparison;
- :mod:`~nsm_sim.output.forecast_text`: the forecast and the target.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from nsm_sim.output import tables
from nsm_sim.output.decision_text import (
    render_comparison,
    render_prioritisation,
    render_simulation,
)
from nsm_sim.output.evidence_text import (
    beyond_trained_tenure_line,
    render_checks,
    render_events_check,
    render_fit,
    render_panel_check,
    render_scenario_check,
    render_tree_check,
    render_validation,
)
from nsm_sim.output.forecast_text import render_forecast
from nsm_sim.output.layout import COLUMN_GAP, WRAP_AFTER, console, print_table
from nsm_sim.output.progress import Stages, announce_first_compile, render_warnings

__all__ = [
    "COLUMN_GAP",
    "WRAP_AFTER",
    "Stages",
    "announce_first_compile",
    "beyond_trained_tenure_line",
    "console",
    "print_table",
    "render_analysis",
    "render_checks",
    "render_comparison",
    "render_events_check",
    "render_fit",
    "render_panel_check",
    "render_prioritisation",
    "render_scenario_check",
    "render_simulation",
    "render_tree_check",
    "render_validation",
    "render_warnings",
]


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
        render_forecast(con, forecast, getattr(analysis, "target", None))
