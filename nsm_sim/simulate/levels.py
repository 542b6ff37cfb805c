"""The levels of the nodes within each cell of a population: see :mod:`nsm_sim.data.population`.

The starting population carries, per cell, each node's share ``x / (1 + x)`` and the range of
the North Star; the simulator reads them to carry a relative lift exactly through ``log1p``.
"""

from nsm_sim.data.population import (
    NORTH_STAR_MAX,
    NORTH_STAR_MIN,
    SHARE_PREFIX,
    level_columns,
    share_column,
)

__all__ = ["NORTH_STAR_MAX", "NORTH_STAR_MIN", "SHARE_PREFIX", "level_columns", "share_column"]
