"""The expected value of perfect information about each initiative's value."""

from __future__ import annotations

import numpy as np

from nsm_sim.prioritise.portfolio import initiative_links, solve_portfolio
from nsm_sim.spec import Scenario


def evpi(
    per_simulation_values: np.ndarray,
    scenario: Scenario | None = None,
    *,
    capacity: float | None = None,
) -> np.ndarray:
    """Return the expected value of perfect information about each initiative's value.

    With a ``scenario`` (the portfolio decision): if initiative ``i``'s value ``v_i`` were
    known before choosing, the best portfolio would be worth
    ``f(v_i) = max(A_i + v_i, B_i)``, where ``A_i`` is the best expected value of the other
    initiatives with ``i`` funded and ``B_i`` the best without it (each from the integer
    program, under capacity and links). So
    ``EVPI_i = E[max(A_i + v_i, B_i)] - max(A_i + E[v_i], B_i)`` — exact for this decision,
    the others kept at their expected values (what ``v_i`` would reveal about the others
    through the shared posterior is not used). Without a scenario, the fund/skip decision of
    each initiative alone: ``EVPI_i = E[max(v_i, 0)] - max(E[v_i], 0)``.

    EVPI is never negative (Jensen), and it is 0 for an initiative whose value does not vary
    over simulations, or that can never be funded.

    Parameters
    ----------
    per_simulation_values : ndarray, shape (n_initiatives, simulations)
    scenario : Scenario, optional
    capacity : float, optional
        Defaults to ``scenario.capacity``.

    Returns
    -------
    ndarray, shape (n_initiatives,)
        In the unit of the values: what it is worth to learn the initiative's value first
        (e.g. by an experiment).

    Examples
    --------
    >>> evpi(np.array([[-1.0, 3.0], [2.0, 2.0]])).tolist()
    [0.5, 0.0]
    """
    values = np.asarray(per_simulation_values, dtype=float)
    mean = values.mean(axis=1)
    n = values.shape[0]
    if scenario is None:
        a = np.zeros(n)
        b = np.zeros(n)
    else:
        capacity = float(scenario.capacity if capacity is None else capacity)
        effort = np.array([ini.effort for ini in scenario.initiatives], dtype=float)
        requires, excludes = initiative_links(scenario)
        best = solve_portfolio(mean, effort, capacity, requires, excludes)
        assert best is not None
        x_best, opt = best
        a, b = np.empty(n), np.empty(n)
        for i in range(n):
            others = mean.copy()
            others[i] = 0.0
            if x_best[i] == 1:
                a[i] = opt - mean[i]
                sol = solve_portfolio(others, effort, capacity, requires, excludes, fixed={i: 0})
                b[i] = sol[1] if sol is not None else -np.inf
            else:
                b[i] = opt
                sol = solve_portfolio(others, effort, capacity, requires, excludes, fixed={i: 1})
                a[i] = sol[1] if sol is not None else -np.inf
    # E[max(A + v, B)] - max(A + E[v], B) with c = B - A: the expected amount by which v
    # falls on the other side of c than its mean does (a sum of non-negative terms, exactly 0
    # when no simulation would change the decision).
    out = np.zeros(n)
    for i in range(n):
        if not np.isfinite(a[i]):
            continue  # never fundable: nothing to learn
        c = b[i] - a[i]
        gap = c - values[i] if mean[i] >= c else values[i] - c
        out[i] = float(np.maximum(gap, 0.0).mean())
    return out
