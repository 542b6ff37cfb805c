"""Events: metric definitions and the build from a raw event log to the panel.

A tree file may define its metrics from events (see :mod:`nsm_sim.events.schema`):
where the event log and the accounts table are, and for each metric its event, aggregate,
filter, ratio, threshold or window, plus exclusions, the churn rule and the calendar.
:func:`build_panel` runs them on DuckDB (embedded), or on Spark
(:mod:`nsm_sim.events.spark`), through queries built with SQLGlot
(:mod:`nsm_sim.events.query` and :mod:`nsm_sim.events.panel_query`), checks the source on
the way (:mod:`nsm_sim.events.checks`) and returns a panel checked like any other.
:func:`reduce_events` keeps the panel in the engine and returns only its reduction
(:mod:`nsm_sim.events.reduction`).

The names below are imported on first use, so the tree loader can read
:mod:`nsm_sim.events.keys` without loading DuckDB.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "DEFINITION_KEYS": "nsm_sim.events.keys",
    "Definitions": "nsm_sim.events.schema",
    "MetricDefinition": "nsm_sim.events.schema",
    "TreeDefinitions": "nsm_sim.events.load",
    "has_definitions": "nsm_sim.events.load",
    "load_definitions": "nsm_sim.events.load",
    "Build": "nsm_sim.events.engine",
    "build_panel": "nsm_sim.events.engine",
    "reduce_events": "nsm_sim.events.reduction",
    "reduce_panel_file": "nsm_sim.events.reduction",
    "world_events": "nsm_sim.events.synthetic",
    "write_synthetic_events": "nsm_sim.events.synthetic",
    "build": "nsm_sim.events.command",
    "panel_from_tree": "nsm_sim.events.command",
    "reduction_for": "nsm_sim.events.command",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'nsm_sim.events' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
