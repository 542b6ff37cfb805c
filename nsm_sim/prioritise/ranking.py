"""Ranking: expected value, value per unit of effort, and P(among the k best).

Every function works on the changes per simulation of a
:class:`~nsm_sim.simulate.SimulationResult`; :func:`objective_quantity` says which simulated
quantity an objective reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nsm_sim.simulate import SimulationResult

#: Objectives and the simulated quantity each one reads.
OBJECTIVES = {
    "value": "value",
    "north_star": "north_star_change",
    "retained_accounts": "retained_accounts",
}

#: Message when value is asked for but the population has none.
NO_VALUE_NOTE = (
    "the population has no value column (value per account is 0): value is measured in "
    "retained accounts instead"
)


def objective_quantity(
    result: SimulationResult, objective: str = "value"
) -> tuple[str, str | None]:
    """Return the simulated quantity behind an objective, and a note when it falls back.

    Parameters
    ----------
    result : SimulationResult
    objective : {"value", "north_star", "retained_accounts"}

    Returns
    -------
    quantity : str
        A field of :class:`~nsm_sim.simulate.Outcomes`.
    note : str or None
        Set when ``objective="value"`` but the population has no value: the quantity is then
        ``retained_accounts``.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {objective!r}")
    if objective == "value" and not result.has_value:
        return "retained_accounts", NO_VALUE_NOTE
    return OBJECTIVES[objective], None


def p_top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Probability of each row being among the ``k`` largest, simulation by simulation.

    Ties are broken at random (in expectation): a group of tied rows straddling the cut-off
    shares the remaining places equally.

    Parameters
    ----------
    values : ndarray, shape (n, simulations)
    k : int

    Returns
    -------
    ndarray, shape (n,)
        Sums to ``min(k, n)``.

    Examples
    --------
    >>> p_top_k(np.array([[3.0, 1.0], [2.0, 1.0], [1.0, 1.0]]), 1).tolist()
    [0.6666666666666666, 0.16666666666666666, 0.16666666666666666]
    """
    n, simulations = values.shape
    out = np.zeros(n)
    step = max(1, 2_000_000 // max(1, n * n))
    for j0 in range(0, simulations, step):
        v = values[:, j0 : j0 + step]
        greater = (v[None, :, :] > v[:, None, :]).sum(axis=1)  # (n, d): rows strictly above
        ties = (v[None, :, :] == v[:, None, :]).sum(axis=1)  # includes itself
        out += np.clip((k - greater) / ties, 0.0, 1.0).sum(axis=1)
    return out / simulations


def rank(result: SimulationResult, *, objective: str = "value", k: int = 3) -> pd.DataFrame:
    """Rank initiatives by expected value per unit of effort.

    Parameters
    ----------
    result : SimulationResult
    objective : {"value", "north_star", "retained_accounts"}
        What "value" means; ``"value"`` falls back to retained accounts when the population
        has no value (see ``attrs["note"]``).
    k : int, default 3
        For ``p_top{k}``: the probability, over simulations, that the initiative is among
        the ``k`` best **by value per unit of effort** in that simulation (ties shared).

    Returns
    -------
    pandas.DataFrame
        Sorted best first: ``rank``, ``name``, ``effort``, ``expected_value``,
        ``value_per_effort``, ``p5``, ``p95``, ``p_positive``, ``p_top{k}``. ``attrs`` holds
        ``objective``, ``quantity`` and ``note``.
    """
    quantity, note = objective_quantity(result, objective)
    values = result.initiatives.get(quantity)
    per_effort = values / result.effort[:, None]
    p5, p95 = np.quantile(values, [0.05, 0.95], axis=1)
    table = pd.DataFrame(
        {
            "name": list(result.names),
            "effort": result.effort,
            "expected_value": values.mean(axis=1),
            "value_per_effort": per_effort.mean(axis=1),
            "p5": p5,
            "p95": p95,
            "p_positive": (values > 0).mean(axis=1),
            f"p_top{k}": p_top_k(per_effort, k),
        }
    )
    table = table.sort_values("value_per_effort", ascending=False, kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table = table.reset_index(drop=True)
    table.attrs.update({"objective": objective, "quantity": quantity, "note": note})
    return table
