"""Two scenarios' portfolios side by side, and P(A beats B) on common random numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nsm_sim.prioritise.portfolio import best_portfolio
from nsm_sim.prioritise.ranking import objective_quantity
from nsm_sim.simulate import QUANTITIES, Outcomes, SimulationResult, summarise_outcome


@dataclass(frozen=True)
class Comparison:
    """Two scenarios' portfolios on common random numbers.

    Attributes
    ----------
    names : tuple of str
        The two scenarios' names (A, B).
    table : pandas.DataFrame
        One row per quantity: ``quantity``, ``a_mean``, ``a_median``, ``a_p5``, ``a_p95``,
        the same for ``b_``, ``diff_mean`` (A - B), ``diff_p5``, ``diff_p95``,
        ``p_a_beats_b`` (share of simulations where A's change is larger) and ``p_tie``.
    funded : bool
        ``True``: each side is the portfolio its scenario funds under its capacity;
        ``False``: every initiative of each scenario.
    selected : tuple of tuple of str
        The initiatives of each side (A, B).
    effort, capacity : tuple of float
        Each side's effort (the sum over its initiatives) and its scenario's capacity, in
        the scenarios' capacity unit.
    """

    names: tuple[str, str]
    table: pd.DataFrame
    funded: bool = False
    selected: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    effort: tuple[float, float] = (0.0, 0.0)
    capacity: tuple[float, float] = (0.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data.

        Returns
        -------
        dict
            ``{"a", "b", "funded", "selected": {"a", "b"}, "effort": {"a", "b"},
            "capacity": {"a", "b"}, "quantities": [row, ...]}``.
        """
        return {
            "a": self.names[0],
            "b": self.names[1],
            "funded": self.funded,
            "selected": {"a": list(self.selected[0]), "b": list(self.selected[1])},
            "effort": dict(zip("ab", self.effort, strict=True)),
            "capacity": dict(zip("ab", self.capacity, strict=True)),
            "quantities": self.table.to_dict(orient="records"),
        }


def funded_portfolio(
    result: SimulationResult, objective: str = "value"
) -> tuple[tuple[str, ...], Outcomes]:
    """Return the portfolio a scenario funds under its capacity and its joint outcomes.

    Parameters
    ----------
    result : SimulationResult
    objective : str, default "value"
        As in :func:`prioritise` (expected value, no risk adjustment).

    Returns
    -------
    tuple
        The chosen initiatives and their :class:`~nsm_sim.simulate.Outcomes` projected
        together (all zero when nothing fits the capacity).
    """
    quantity, _ = objective_quantity(result, objective)
    chosen = best_portfolio(
        result.scenario, result.initiatives.get(quantity), result=result, quantity=quantity
    )
    if chosen.joint_outcomes is not None:
        return chosen.selected, chosen.joint_outcomes
    zero = np.zeros(result.simulations)
    return chosen.selected, Outcomes(zero, zero, zero, zero)


def compare(
    result_a: SimulationResult,
    result_b: SimulationResult,
    *,
    funded: bool = False,
    objective: str = "value",
) -> Comparison:
    """Compare two scenarios' portfolios simulation by simulation.

    Both must be simulated with the same seed, number of simulations and posterior (the
    same posterior draw then backs each simulation, and initiatives present in both
    scenarios have the same outcomes), so that ``P(A beats B)`` is sharp.

    Parameters
    ----------
    result_a, result_b : SimulationResult
    funded : bool, default False
        Compare what each scenario funds under its own capacity (:func:`funded_portfolio`)
        instead of every initiative of each.
    objective : str, default "value"
        The objective that chooses the funded portfolios.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        When the two results are not on common random numbers.
    """
    pa, pb = result_a.posterior, result_b.posterior
    same_posterior = pa is pb or (
        pa.segments == pb.segments
        and pa.edges == pb.edges
        and all(
            np.array_equal(getattr(pa, f), getattr(pb, f))
            for f in ("elasticity", "churn_intercept", "churn_slope", "tenure_slope")
        )
    )
    if (
        result_a.simulations != result_b.simulations
        or not same_posterior
        or not np.array_equal(result_a.posterior_index, result_b.posterior_index)
    ):
        raise ValueError(
            "the two results are not on common random numbers: simulate both scenarios with "
            "the same seed, number of simulations and fit"
        )
    if funded:
        (sel_a, out_a), (sel_b, out_b) = (
            funded_portfolio(r, objective) for r in (result_a, result_b)
        )
    else:
        sel_a, out_a = result_a.names, result_a.portfolio
        sel_b, out_b = result_b.names, result_b.portfolio
    rows = []
    for q in QUANTITIES:
        a, b = out_a.get(q), out_b.get(q)
        da, db, diff = summarise_outcome(a), summarise_outcome(b), a - b
        p5, p95 = np.quantile(diff, [0.05, 0.95])
        rows.append(
            {
                "quantity": q,
                **{f"a_{k}": v for k, v in da.items() if k != "p_positive"},
                **{f"b_{k}": v for k, v in db.items() if k != "p_positive"},
                "diff_mean": float(diff.mean()),
                "diff_p5": float(p5),
                "diff_p95": float(p95),
                "p_a_beats_b": float(np.mean(a > b)),
                "p_tie": float(np.mean(a == b)),
            }
        )

    def effort(result: SimulationResult, selected: tuple[str, ...]) -> float:
        chosen = set(selected)
        return float(sum(i.effort for i in result.scenario.initiatives if i.name in chosen))

    return Comparison(
        (result_a.scenario.name, result_b.scenario.name),
        pd.DataFrame(rows),
        funded=funded,
        selected=(tuple(sel_a), tuple(sel_b)),
        effort=(effort(result_a, sel_a), effort(result_b, sel_b)),
        capacity=(float(result_a.scenario.capacity), float(result_b.scenario.capacity)),
    )
