"""Data: the panel, its checks and its reductions."""

from nsm_sim.data.cells import ChurnCells, churn_cells, level_bins, segment_codes
from nsm_sim.data.panel import (
    ALL_SEGMENTS,
    MAX_EXAMPLES,
    MIN_ACCOUNTS,
    MIN_PERIODS,
    STATIC_SHARE,
    Panel,
    check_frame,
    load_panel,
    within_share,
)
from nsm_sim.data.population import (
    NORTH_STAR_MAX,
    NORTH_STAR_MIN,
    SHARE_PREFIX,
    Population,
    level_columns,
    share_column,
    starting_population,
)
from nsm_sim.data.reduce import DriverStats, Reduction, driver_stats, reduce_panel
from nsm_sim.data.summary import describe
from nsm_sim.numeric import demean_two_way

__all__ = [
    "ALL_SEGMENTS",
    "MAX_EXAMPLES",
    "MIN_ACCOUNTS",
    "MIN_PERIODS",
    "NORTH_STAR_MAX",
    "NORTH_STAR_MIN",
    "SHARE_PREFIX",
    "ChurnCells",
    "DriverStats",
    "Panel",
    "STATIC_SHARE",
    "Population",
    "Reduction",
    "check_frame",
    "churn_cells",
    "demean_two_way",
    "describe",
    "driver_stats",
    "level_bins",
    "level_columns",
    "load_panel",
    "reduce_panel",
    "segment_codes",
    "share_column",
    "starting_population",
    "within_share",
]
