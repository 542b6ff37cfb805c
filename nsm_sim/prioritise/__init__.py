"""Prioritise: ranking, the best portfolio, the value of information, comparisons.

Everything here works on the changes per simulation of a
:class:`~nsm_sim.simulate.SimulationResult` (numpy, scipy and pandas only).

- :func:`rank`: expected value, value per unit of effort, and the probability of being among
  the ``k`` best by value per effort in a simulation.
- :func:`best_portfolio`: the exact best set of initiatives under the capacity and the
  ``requires`` / ``excludes`` links, by an integer program (``scipy.optimize.milp``), on
  expected value or on a risk-adjusted objective; then the chosen set is projected jointly.
- :func:`evpi`: the expected value of perfect information of each initiative's value, for the
  portfolio decision.
- :func:`compare`: two scenarios' portfolios side by side and P(A beats B) on common random
  numbers.
- :func:`prioritise`: all of it in one call.
"""

from nsm_sim.prioritise.compare import Comparison, compare, funded_portfolio
from nsm_sim.prioritise.evpi import evpi
from nsm_sim.prioritise.portfolio import Portfolio, best_portfolio, tail_mean
from nsm_sim.prioritise.prioritisation import Prioritisation, prioritise
from nsm_sim.prioritise.ranking import (
    NO_VALUE_NOTE,
    OBJECTIVES,
    objective_quantity,
    p_top_k,
    rank,
)

__all__ = [
    "NO_VALUE_NOTE",
    "OBJECTIVES",
    "Comparison",
    "Portfolio",
    "Prioritisation",
    "best_portfolio",
    "compare",
    "evpi",
    "funded_portfolio",
    "objective_quantity",
    "p_top_k",
    "prioritise",
    "rank",
    "tail_mean",
]
