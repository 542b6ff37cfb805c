"""Simulate: initiatives projected through the posterior to the North Star, churn and value.

- :mod:`~nsm_sim.simulate.posterior`: the fitted models' draws as plain arrays.
- :mod:`~nsm_sim.simulate.lifts`: the lift models' samplers.
- :mod:`~nsm_sim.simulate.levels`: the levels of the nodes within each cell of a population.
- :mod:`~nsm_sim.simulate.plan`: input checks and every random number, drawn up front.
- :mod:`~nsm_sim.simulate.kernel`: the vectorised, chunked Monte Carlo kernel.
- :mod:`~nsm_sim.simulate.chunk`: one chunk's baseline and the projection of a set on it.
- :mod:`~nsm_sim.simulate.changes`: its elementwise pieces (ramps, joint changes, the threshold
  over a cell's spread).
- :mod:`~nsm_sim.simulate.results`: outcomes per simulation and their summaries.
- :mod:`~nsm_sim.simulate.run`: :func:`simulate` and :func:`simulate_sets` (the model of one
  simulation is described there).
"""

from nsm_sim.simulate.levels import level_columns, share_column
from nsm_sim.simulate.lifts import MIN_LIFT, experiment_parameters, pert_parameters, sample_lift
from nsm_sim.simulate.plan import initiative_outcomes, posterior_choice
from nsm_sim.simulate.posterior import PosteriorDraws, fixed_posterior, posterior_draws
from nsm_sim.simulate.results import QUANTITIES, Outcomes, SimulationResult, summarise_outcome
from nsm_sim.simulate.run import simulate, simulate_sets

__all__ = [
    "MIN_LIFT",
    "QUANTITIES",
    "Outcomes",
    "PosteriorDraws",
    "SimulationResult",
    "experiment_parameters",
    "fixed_posterior",
    "initiative_outcomes",
    "level_columns",
    "pert_parameters",
    "posterior_choice",
    "posterior_draws",
    "sample_lift",
    "share_column",
    "simulate",
    "simulate_sets",
    "summarise_outcome",
]
