"""The best portfolio under capacity: an exact integer program, on expected value or risk.

The value of a set of initiatives inside the integer program is the sum of their values alone
(an additive approximation: it ignores that lifts combine on the log scale, the ``overlap``
and the shared effect on churn). The chosen set is then projected jointly, and the joint
distribution is reported next to the additive one; the difference is the interaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from nsm_sim.simulate import Outcomes, SimulationResult, summarise_outcome
from nsm_sim.spec import Scenario


def tail_mean(x: np.ndarray, alpha: float) -> float:
    """Mean of the worst ``alpha`` share of simulations (the lower-tail CVaR).

    With ``alpha * N`` not an integer the boundary simulation counts by its fraction, which is
    what the Rockafellar-Uryasev linear program gives.

    Parameters
    ----------
    x : ndarray, shape (N,)
    alpha : float
        In (0, 1].

    Returns
    -------
    float

    Examples
    --------
    >>> tail_mean(np.array([5.0, 1.0, 3.0, 2.0]), 0.5)
    1.5
    """
    x = np.sort(np.asarray(x, dtype=float))
    m = alpha * x.size
    whole = int(np.floor(m + 1e-12))
    total = x[:whole].sum()
    if whole < x.size and m - whole > 1e-12:
        total += (m - whole) * x[whole]
    return float(total / m)


@dataclass(frozen=True)
class Portfolio:
    """The best set of initiatives under capacity.

    Attributes
    ----------
    selected : tuple of str
        Chosen initiatives, in scenario order.
    effort, capacity : float
    expected_value : float
        Sum of the chosen initiatives' expected values alone (additive).
    tail_mean : float
        Mean of the worst ``alpha`` share of simulations of the additive portfolio value.
    risk_aversion, alpha : float
        The objective: ``expected_value - risk_aversion * (expected_value - tail_mean)``.
    objective_value : float
        That objective at the optimum, on the simulations the integer program used.
    quantity : str
        The simulated quantity optimised.
    joint : dict or None
        The chosen set projected jointly (interactions included): ``mean``, ``median``,
        ``p5``, ``p95``, ``p_positive`` of the quantity and ``tail_mean``.
    joint_outcomes : Outcomes or None
        The joint projection's changes per simulation.
    """

    selected: tuple[str, ...]
    effort: float
    capacity: float
    expected_value: float
    tail_mean: float
    risk_aversion: float
    alpha: float
    objective_value: float
    quantity: str
    joint: dict[str, float] | None = None
    joint_outcomes: Outcomes | None = None

    @property
    def interaction(self) -> float | None:
        """Joint expected value minus the additive one (``None`` before a joint projection)."""
        return None if self.joint is None else self.joint["mean"] - self.expected_value

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data: ``selected``, ``effort``, ``expected_value`` and the rest."""
        return {
            "selected": list(self.selected),
            "effort": self.effort,
            "capacity": self.capacity,
            "expected_value": self.expected_value,
            "tail_mean": self.tail_mean,
            "risk_aversion": self.risk_aversion,
            "alpha": self.alpha,
            "objective_value": self.objective_value,
            "quantity": self.quantity,
            "joint": self.joint,
            "interaction": self.interaction,
        }


def initiative_links(scenario: Scenario) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Return a scenario's ``requires`` and ``excludes`` links as pairs of positions.

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    requires : list of tuple of int
        ``(i, j)``: initiative ``i`` requires ``j``.
    excludes : list of tuple of int
        ``(i, j)`` with ``i < j``: the two exclude each other (each pair once, sorted).
    """
    index = {ini.name: k for k, ini in enumerate(scenario.initiatives)}
    requires = [(k, index[o]) for k, ini in enumerate(scenario.initiatives) for o in ini.requires]
    excludes = {
        tuple(sorted((k, index[o])))
        for k, ini in enumerate(scenario.initiatives)
        for o in ini.excludes
    }
    return requires, sorted(excludes)


def solve_portfolio(
    mean: np.ndarray,
    effort: np.ndarray,
    capacity: float,
    requires: list[tuple[int, int]],
    excludes: list[tuple[int, int]],
    *,
    tail_values: np.ndarray | None = None,
    risk_aversion: float = 0.0,
    alpha: float = 0.1,
    fixed: dict[int, int] | None = None,
) -> tuple[np.ndarray, float] | None:
    """Solve the portfolio integer program.

    Maximises ``(1 - risk_aversion) * sum_i x_i mean_i + risk_aversion * CVaR_alpha`` over
    binary ``x`` under the capacity and the links. Variables: ``x`` (n binaries), and with
    risk ``eta`` (free) and ``u`` (N >= 0), the Rockafellar-Uryasev form of the tail mean:
    ``max eta - sum(u) / (alpha N)`` with ``u_d >= eta - sum_i x_i v_id``.

    Parameters
    ----------
    mean : ndarray, shape (n,)
        Expected value of each initiative.
    effort : ndarray, shape (n,)
    capacity : float
    requires, excludes : list of tuple of int
        From :func:`initiative_links`.
    tail_values : ndarray, shape (n, N), optional
        Values ``v_id`` per initiative and simulation for the tail mean; without them (or
        with ``risk_aversion = 0``) the objective is the expected value.
    risk_aversion : float, default 0
    alpha : float, default 0.1
        Share of worst simulations in the tail mean.
    fixed : dict of int to int, optional
        Initiatives forced in (1) or out (0).

    Returns
    -------
    tuple or None
        The choice ``x`` (0/1 ints) and the objective at the optimum; ``None`` when
        infeasible.

    Raises
    ------
    RuntimeError
        When the solver fails for another reason.
    """
    n = mean.size
    risky = risk_aversion > 0 and tail_values is not None
    n_sim = tail_values.shape[1] if risky else 0
    n_var = n + (1 + n_sim if risky else 0)
    c = np.zeros(n_var)
    c[:n] = -(1.0 - risk_aversion) * mean if risky else -mean
    rows, lb, ub = [], [], []
    rows.append(sparse.csr_array(np.concatenate([effort, np.zeros(n_var - n)])[None, :]))
    lb.append(-np.inf)
    ub.append(capacity)
    for i, j in requires:  # x_i <= x_j
        row = np.zeros(n_var)
        row[i], row[j] = 1.0, -1.0
        rows.append(sparse.csr_array(row[None, :]))
        lb.append(-np.inf)
        ub.append(0.0)
    for i, j in excludes:  # x_i + x_j <= 1
        row = np.zeros(n_var)
        row[i] = row[j] = 1.0
        rows.append(sparse.csr_array(row[None, :]))
        lb.append(-np.inf)
        ub.append(1.0)
    if risky:
        c[n] = -risk_aversion
        c[n + 1 :] = risk_aversion / (alpha * n_sim)
        # sum_i v_id x_i - eta + u_d >= 0
        block = sparse.hstack(
            [
                sparse.csr_array(tail_values.T),
                sparse.csr_array(-np.ones((n_sim, 1))),
                sparse.identity(n_sim, format="csr"),
            ]
        )
        rows.append(sparse.csr_array(block))
        lb.extend([0.0] * n_sim)
        ub.extend([np.inf] * n_sim)
    lower = np.zeros(n_var)
    upper = np.ones(n_var)
    if risky:
        lower[n] = -np.inf
        upper[n] = np.inf
        upper[n + 1 :] = np.inf
    for i, val in (fixed or {}).items():
        lower[i] = upper[i] = val
    integrality = np.zeros(n_var)
    integrality[:n] = 1
    res = milp(
        c,
        integrality=integrality,
        bounds=Bounds(lower, upper),
        constraints=LinearConstraint(sparse.vstack(rows).tocsr(), lb, ub),
        options={"mip_rel_gap": 1e-9},
    )
    if res.status != 0 or res.x is None:
        if res.status == 2:  # infeasible
            return None
        raise RuntimeError(f"portfolio integer program failed: {res.message}")
    x = np.round(res.x[:n]).astype(int)
    return x, float(-res.fun)


def best_portfolio(
    scenario: Scenario,
    per_simulation_values: np.ndarray,
    *,
    capacity: float | None = None,
    risk_aversion: float = 0.0,
    alpha: float = 0.1,
    risk_simulations: int = 500,
    result: SimulationResult | None = None,
    quantity: str = "value",
) -> Portfolio:
    """Choose the best set of initiatives under the capacity, exactly (integer program).

    Maximises, over binary ``x_i``, ``E[V] - risk_aversion * (E[V] - CVaR_alpha(V))`` with
    ``V = sum_i x_i v_i`` (the additive approximation: values of the initiatives alone),
    subject to ``sum_i x_i effort_i <= capacity``, ``x_i <= x_j`` when ``i`` requires ``j``
    and ``x_i + x_j <= 1`` when they exclude each other. ``CVaR_alpha`` is the mean of the
    worst ``alpha`` share of simulations, linearised over simulations (Rockafellar and
    Uryasev 2000) on the first ``risk_simulations`` simulations (they are independent, so
    these are a random subsample) to keep the program small. ``risk_aversion = 0`` is the
    expected value, ``1`` the tail mean alone.

    Parameters
    ----------
    scenario : Scenario
        Gives the efforts, the capacity and the links.
    per_simulation_values : ndarray, shape (n_initiatives, simulations)
        Each initiative's value alone in each simulation, in scenario order.
    capacity : float, optional
        Defaults to ``scenario.capacity``.
    risk_aversion : float, default 0
        In [0, 1].
    alpha : float, default 0.1
        Share of worst simulations in the tail mean.
    risk_simulations : int, default 500
        Simulations used by the risk-adjusted program.
    result : SimulationResult, optional
        When given, the chosen set is projected jointly on the same simulations (``joint``).
    quantity : str, default "value"
        The field of the joint outcomes to report (the one ``per_simulation_values`` came from).

    Returns
    -------
    Portfolio
    """
    values = np.asarray(per_simulation_values, dtype=float)
    n = len(scenario.initiatives)
    if values.ndim != 2 or values.shape[0] != n:
        raise ValueError(
            f"per_simulation_values must have shape ({n}, simulations), got {values.shape}"
        )
    if not 0.0 <= risk_aversion <= 1.0:
        raise ValueError(f"risk_aversion must be in [0, 1], got {risk_aversion}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    capacity = float(scenario.capacity if capacity is None else capacity)
    effort = np.array([ini.effort for ini in scenario.initiatives], dtype=float)
    requires, excludes = initiative_links(scenario)
    tail_values = values[:, :risk_simulations] if risk_aversion > 0 else None
    sol = solve_portfolio(
        values.mean(axis=1),
        effort,
        capacity,
        requires,
        excludes,
        tail_values=tail_values,
        risk_aversion=risk_aversion,
        alpha=alpha,
    )
    assert sol is not None  # choosing nothing is always feasible
    x, objective = sol
    chosen = x.astype(bool)
    names = tuple(ini.name for ini in scenario.initiatives)
    selected = tuple(nm for nm, keep in zip(names, chosen, strict=True) if keep)
    additive = values[chosen].sum(axis=0)
    joint = joint_outcomes = None
    if result is not None:
        joint_outcomes = result.simulate_set(selected, keep_path=True) if selected else None
        joint_values = (
            joint_outcomes.get(quantity)
            if joint_outcomes is not None
            else np.zeros(values.shape[1])
        )
        joint = {**summarise_outcome(joint_values), "tail_mean": tail_mean(joint_values, alpha)}
    return Portfolio(
        selected=selected,
        effort=float(effort[chosen].sum()),
        capacity=capacity,
        expected_value=float(additive.mean()),
        tail_mean=tail_mean(additive, alpha),
        risk_aversion=risk_aversion,
        alpha=alpha,
        objective_value=objective,
        quantity=quantity,
        joint=joint,
        joint_outcomes=joint_outcomes,
    )
