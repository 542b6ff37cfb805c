"""Data: the panel, its checks and its reductions."""

from nsm_sim.data.cells import ChurnCells, churn_cells, level_bins, segment_codes
from nsm_sim.data.panel import (
    ALL_SEGMENTS,
    MAX_EXAMPLES,
    MIN_ACCOUNTS,
    MIN_PERIODS,
    Panel,
    check_frame,
    describe,
    load_panel,
)
from nsm_sim.data.reduce import (
    DriverStats,
    Population,
    Reduction,
    driver_stats,
    reduce_panel,
    starting_population,
)
from nsm_sim.numeric import demean_two_way

__all__ = [
    "ALL_SEGMENTS",
    "MAX_EXAMPLES",
    "MIN_ACCOUNTS",
    "MIN_PERIODS",
    "ChurnCells",
    "DriverStats",
    "Panel",
    "Population",
    "Reduction",
    "check_frame",
    "churn_cells",
    "demean_two_way",
    "describe",
    "driver_stats",
    "level_bins",
    "load_panel",
    "reduce_panel",
    "segment_codes",
    "starting_population",
]
