"""Builders of small simulator inputs for tests and benchmarks.

Trees, populations, posteriors, initiatives and scenarios, each built the same way wherever it
is used, from constants or from a seed (so the same call gives the same inputs). Two families:

- **small**: the tree ``nsm <- a <- (a1, a2); nsm <- b`` (:func:`small_tree`) or
  ``nsm <- a`` (:func:`flat_tree`), two segments (:data:`SEGMENTS`) and a few cells, for
  exact checks against direct computation;
- **demo**: the packaged demo tree (:func:`nsm_sim.synth.demo_tree`), its three segments
  (:data:`DEMO_SEGMENTS`), 60 cells and 20 initiatives over 52 periods, the size the
  benchmarks measure.

Modules:

- :mod:`~nsm_sim.testing.inputs`: the trees, populations, posteriors, initiatives and
  scenarios of both families;
- :mod:`~nsm_sim.testing.portfolios`: portfolio problems (initiatives with links and their
  values per simulation), for the portfolio solver;
- :mod:`~nsm_sim.testing.counterfactual`: the simulator set against the synthetic world's
  counterfactual truth (:func:`counterfactual_comparison`).

Examples
--------
>>> from nsm_sim.simulate import simulate
>>> scen = scenario([initiative("x", target="a1", lift=0.1)])
>>> result = simulate(scen, random_posterior(), small_population(), simulations=20)
>>> result.initiatives.value.shape
(1, 20)
"""

from nsm_sim.testing.counterfactual import COUNTERFACTUAL_INITIATIVES, counterfactual_comparison
from nsm_sim.testing.inputs import (
    DEMO_SEGMENTS,
    SEGMENTS,
    demo_population,
    demo_posterior,
    demo_scenario,
    demo_tree,
    flat_tree,
    initiative,
    random_posterior,
    scenario,
    small_population,
    small_tree,
)
from nsm_sim.testing.portfolios import portfolio_instance, random_portfolio_instance

__all__ = [
    "COUNTERFACTUAL_INITIATIVES",
    "DEMO_SEGMENTS",
    "SEGMENTS",
    "counterfactual_comparison",
    "demo_population",
    "demo_posterior",
    "demo_scenario",
    "demo_tree",
    "flat_tree",
    "initiative",
    "portfolio_instance",
    "random_portfolio_instance",
    "random_posterior",
    "scenario",
    "small_population",
    "small_tree",
]
