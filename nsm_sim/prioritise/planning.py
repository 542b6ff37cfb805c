"""Ranking, the best portfolio under capacity, the value of information, and comparisons.

Everything here works on the per-draw changes of a :class:`~nsm_sim.simulate.SimulationResult`
(numpy, scipy and pandas only).

- :func:`rank`: expected value, value per unit of effort, and the probability of being among
  the ``k`` best by value per effort on a draw.
- :func:`best_portfolio`: the exact best set of initiatives under the capacity and the
  ``requires`` / ``excludes`` links, by an integer program (``scipy.optimize.milp``), on
  expected value or on a risk-adjusted objective; then the chosen set is projected jointly.
- :func:`evpi`: the expected value of perfect information of each initiative's value, for the
  portfolio decision.
- :func:`compare`: two scenarios' portfolios side by side and P(A beats B) on common draws.
- :func:`prioritise`: all of it in one call.

The value of a set of initiatives inside the integer program is the sum of their values alone
(an additive approximation: it ignores that lifts combine on the log scale, the ``overlap``
and the shared effect on churn). The chosen set is then projected jointly, and the joint
distribution is reported next to the additive one; the difference is the interaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from nsm_sim.simulate import Outcomes, SimulationResult, describe
from nsm_sim.spec import Scenario

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


def tail_mean(x: np.ndarray, alpha: float) -> float:
    """Mean of the worst ``alpha`` share of draws (the lower-tail CVaR).

    With ``alpha * N`` not an integer the boundary draw counts by its fraction, which is what
    the Rockafellar-Uryasev linear program gives.

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


# --------------------------------------------------------------------------- ranking


def p_top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Probability of each row being among the ``k`` largest, draw by draw.

    Ties are broken at random (in expectation): a group of tied rows straddling the cut-off
    shares the remaining places equally.

    Parameters
    ----------
    values : ndarray, shape (n, draws)
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
    n, draws = values.shape
    out = np.zeros(n)
    step = max(1, 2_000_000 // max(1, n * n))
    for j0 in range(0, draws, step):
        v = values[:, j0 : j0 + step]
        greater = (v[None, :, :] > v[:, None, :]).sum(axis=1)  # (n, d): rows strictly above
        ties = (v[None, :, :] == v[:, None, :]).sum(axis=1)  # includes itself
        out += np.clip((k - greater) / ties, 0.0, 1.0).sum(axis=1)
    return out / draws


def rank(result: SimulationResult, *, objective: str = "value", k: int = 3) -> pd.DataFrame:
    """Rank initiatives by expected value per unit of effort.

    Parameters
    ----------
    result : SimulationResult
    objective : {"value", "north_star", "retained_accounts"}
        What "value" means; ``"value"`` falls back to retained accounts when the population
        has no value (see ``attrs["note"]``).
    k : int, default 3
        For ``p_top{k}``: the probability, over draws, that the initiative is among the ``k``
        best **by value per unit of effort** on that draw (ties shared).

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


# --------------------------------------------------------------------------- portfolio


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
        Mean of the worst ``alpha`` share of draws of the additive portfolio value.
    risk_aversion, alpha : float
        The objective: ``expected_value - risk_aversion * (expected_value - tail_mean)``.
    objective_value : float
        That objective at the optimum, on the draws the integer program used.
    quantity : str
        The simulated quantity optimised.
    joint : dict or None
        The chosen set projected jointly (interactions included): ``mean``, ``median``,
        ``p5``, ``p95``, ``p_positive`` of the quantity and ``tail_mean``.
    joint_outcomes : Outcomes or None
        The joint projection's per-draw changes.
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


def _links(scenario: Scenario) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    index = {ini.name: k for k, ini in enumerate(scenario.initiatives)}
    requires = [(k, index[o]) for k, ini in enumerate(scenario.initiatives) for o in ini.requires]
    excludes = {
        tuple(sorted((k, index[o])))
        for k, ini in enumerate(scenario.initiatives)
        for o in ini.excludes
    }
    return requires, sorted(excludes)


def _solve(
    mean: np.ndarray,
    effort: np.ndarray,
    capacity: float,
    requires: list[tuple[int, int]],
    excludes: list[tuple[int, int]],
    *,
    draws: np.ndarray | None = None,
    risk_aversion: float = 0.0,
    alpha: float = 0.1,
    fixed: dict[int, int] | None = None,
) -> tuple[np.ndarray, float] | None:
    """Solve the portfolio integer program; ``None`` when infeasible.

    Variables: ``x`` (n binaries), and with risk ``eta`` (free) and ``u`` (N >= 0), the
    Rockafellar-Uryasev form of the tail mean: ``max eta - sum(u) / (alpha N)`` with
    ``u_d >= eta - sum_i x_i v_id``.
    """
    n = mean.size
    risky = risk_aversion > 0 and draws is not None
    n_draws = draws.shape[1] if risky else 0
    n_var = n + (1 + n_draws if risky else 0)
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
        c[n + 1 :] = risk_aversion / (alpha * n_draws)
        # sum_i v_id x_i - eta + u_d >= 0
        block = sparse.hstack(
            [
                sparse.csr_array(draws.T),
                sparse.csr_array(-np.ones((n_draws, 1))),
                sparse.identity(n_draws, format="csr"),
            ]
        )
        rows.append(sparse.csr_array(block))
        lb.extend([0.0] * n_draws)
        ub.extend([np.inf] * n_draws)
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
    per_draw_values: np.ndarray,
    *,
    capacity: float | None = None,
    risk_aversion: float = 0.0,
    alpha: float = 0.1,
    risk_draws: int = 500,
    result: SimulationResult | None = None,
    quantity: str = "value",
) -> Portfolio:
    """Choose the best set of initiatives under the capacity, exactly (integer program).

    Maximises, over binary ``x_i``, ``E[V] - risk_aversion * (E[V] - CVaR_alpha(V))`` with
    ``V = sum_i x_i v_i`` (the additive approximation: values of the initiatives alone),
    subject to ``sum_i x_i effort_i <= capacity``, ``x_i <= x_j`` when ``i`` requires ``j``
    and ``x_i + x_j <= 1`` when they exclude each other. ``CVaR_alpha`` is the mean of the
    worst ``alpha`` share of draws, linearised over draws (Rockafellar and Uryasev 2000) on
    the first ``risk_draws`` draws (the draws are independent, so these are a random
    subsample) to keep the program small. ``risk_aversion = 0`` is the expected value,
    ``1`` the tail mean alone.

    Parameters
    ----------
    scenario : Scenario
        Gives the efforts, the capacity and the links.
    per_draw_values : ndarray, shape (n_initiatives, draws)
        Each initiative's value alone per draw, in scenario order.
    capacity : float, optional
        Defaults to ``scenario.capacity``.
    risk_aversion : float, default 0
        In [0, 1].
    alpha : float, default 0.1
        Share of worst draws in the tail mean.
    risk_draws : int, default 500
        Draws used by the risk-adjusted program.
    result : SimulationResult, optional
        When given, the chosen set is projected jointly on the same draws (``joint``).
    quantity : str, default "value"
        The field of the joint outcomes to report (the one ``per_draw_values`` came from).

    Returns
    -------
    Portfolio
    """
    values = np.asarray(per_draw_values, dtype=float)
    n = len(scenario.initiatives)
    if values.ndim != 2 or values.shape[0] != n:
        raise ValueError(f"per_draw_values must have shape ({n}, draws), got {values.shape}")
    if not 0.0 <= risk_aversion <= 1.0:
        raise ValueError(f"risk_aversion must be in [0, 1], got {risk_aversion}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    capacity = float(scenario.capacity if capacity is None else capacity)
    effort = np.array([ini.effort for ini in scenario.initiatives], dtype=float)
    requires, excludes = _links(scenario)
    sub = values[:, :risk_draws] if risk_aversion > 0 else None
    sol = _solve(
        values.mean(axis=1),
        effort,
        capacity,
        requires,
        excludes,
        draws=sub,
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
        joint = {**describe(joint_values), "tail_mean": tail_mean(joint_values, alpha)}
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


# --------------------------------------------------------------------------- EVPI


def evpi(
    per_draw_values: np.ndarray,
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
    over draws, or that can never be funded.

    Parameters
    ----------
    per_draw_values : ndarray, shape (n_initiatives, draws)
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
    values = np.asarray(per_draw_values, dtype=float)
    mean = values.mean(axis=1)
    n = values.shape[0]
    if scenario is None:
        a = np.zeros(n)
        b = np.zeros(n)
    else:
        capacity = float(scenario.capacity if capacity is None else capacity)
        effort = np.array([ini.effort for ini in scenario.initiatives], dtype=float)
        requires, excludes = _links(scenario)
        best = _solve(mean, effort, capacity, requires, excludes)
        assert best is not None
        x_best, opt = best
        a, b = np.empty(n), np.empty(n)
        for i in range(n):
            others = mean.copy()
            others[i] = 0.0
            if x_best[i] == 1:
                a[i] = opt - mean[i]
                sol = _solve(others, effort, capacity, requires, excludes, fixed={i: 0})
                b[i] = sol[1] if sol is not None else -np.inf
            else:
                b[i] = opt
                sol = _solve(others, effort, capacity, requires, excludes, fixed={i: 1})
                a[i] = sol[1] if sol is not None else -np.inf
    # E[max(A + v, B)] - max(A + E[v], B) with c = B - A: the expected amount by which v
    # falls on the other side of c than its mean does (a sum of non-negative terms, exactly 0
    # when no draw would change the decision).
    out = np.zeros(n)
    for i in range(n):
        if not np.isfinite(a[i]):
            continue  # never fundable: nothing to learn
        c = b[i] - a[i]
        gap = c - values[i] if mean[i] >= c else values[i] - c
        out[i] = float(np.maximum(gap, 0.0).mean())
    return out


# --------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class Comparison:
    """Two scenarios' portfolios on common draws.

    Attributes
    ----------
    names : tuple of str
        The two scenarios' names (A, B).
    table : pandas.DataFrame
        One row per quantity: ``quantity``, ``a_mean``, ``a_median``, ``a_p5``, ``a_p95``,
        the same for ``b_``, ``diff_mean`` (A - B), ``diff_p5``, ``diff_p95``,
        ``p_a_beats_b`` (share of draws where A's change is larger) and ``p_tie``.
    funded : bool
        ``True``: each side is the portfolio its scenario funds under its capacity;
        ``False``: every initiative of each scenario.
    selected : tuple of tuple of str
        The initiatives of each side (A, B).
    """

    names: tuple[str, str]
    table: pd.DataFrame
    funded: bool = False
    selected: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data.

        Returns
        -------
        dict
            ``{"a", "b", "funded", "selected": {"a", "b"}, "quantities": [row, ...]}``.
        """
        return {
            "a": self.names[0],
            "b": self.names[1],
            "funded": self.funded,
            "selected": {"a": list(self.selected[0]), "b": list(self.selected[1])},
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
    zero = np.zeros(result.draws)
    return chosen.selected, Outcomes(zero, zero, zero, zero)


def compare(
    result_a: SimulationResult,
    result_b: SimulationResult,
    *,
    funded: bool = False,
    objective: str = "value",
) -> Comparison:
    """Compare two scenarios' portfolios draw by draw.

    Both must be simulated with the same seed, number of draws and posterior (the same
    posterior draws then back each Monte Carlo draw, and initiatives present in both
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
        When the two results are not on common draws.
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
        result_a.draws != result_b.draws
        or not same_posterior
        or not np.array_equal(result_a.posterior_index, result_b.posterior_index)
    ):
        raise ValueError(
            "the two results are not on common draws: simulate both scenarios with the same "
            "seed, number of draws and fit"
        )
    if funded:
        (sel_a, out_a), (sel_b, out_b) = (
            funded_portfolio(r, objective) for r in (result_a, result_b)
        )
    else:
        sel_a, out_a = result_a.names, result_a.portfolio
        sel_b, out_b = result_b.names, result_b.portfolio
    rows = []
    for q in ("north_star_change", "north_star_change_pct", "retained_accounts", "value"):
        a, b = out_a.get(q), out_b.get(q)
        da, db, diff = describe(a), describe(b), a - b
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
    return Comparison(
        (result_a.scenario.name, result_b.scenario.name),
        pd.DataFrame(rows),
        funded=funded,
        selected=(tuple(sel_a), tuple(sel_b)),
    )


# --------------------------------------------------------------------------- all at once


@dataclass(frozen=True)
class Prioritisation:
    """Ranking, best portfolio and value of information, from one simulation.

    Attributes
    ----------
    objective : str
        As asked.
    quantity : str
        The simulated quantity used (``retained_accounts`` when value was asked for but the
        population has none).
    note : str or None
        Why the quantity differs from the objective, if it does.
    ranking : pandas.DataFrame
        See :func:`rank`.
    portfolio : Portfolio
        See :func:`best_portfolio` (with the joint projection).
    evpi : pandas.DataFrame
        ``name``, ``evpi`` (portfolio decision) and ``evpi_alone`` (fund/skip alone), sorted
        by ``evpi``, largest first: the initiative to test first is on top.
    k : int
    """

    objective: str
    quantity: str
    note: str | None
    ranking: pd.DataFrame
    portfolio: Portfolio
    evpi: pd.DataFrame
    k: int = 3

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data.

        Returns
        -------
        dict
            ``{"objective", "quantity", "note", "ranking": [{"name", "expected_value",
            "value_per_effort", "p_top3", ...}], "portfolio": {"selected", "effort",
            "expected_value", ...}, "evpi": [{"name", "evpi", "evpi_alone"}]}``.
        """
        return {
            "objective": self.objective,
            "quantity": self.quantity,
            "note": self.note,
            "ranking": self.ranking.to_dict(orient="records"),
            "portfolio": self.portfolio.to_dict(),
            "evpi": self.evpi.to_dict(orient="records"),
        }


def prioritise(
    result: SimulationResult,
    *,
    objective: str = "value",
    k: int = 3,
    capacity: float | None = None,
    risk_aversion: float = 0.0,
    alpha: float = 0.1,
    risk_draws: int = 500,
    resimulate: bool = True,
) -> Prioritisation:
    """Rank the initiatives, choose the portfolio and value the information, in one call.

    Parameters
    ----------
    result : SimulationResult
    objective : {"value", "north_star", "retained_accounts"}
        ``"value"`` falls back to retained accounts when the population has no value (the
        output's ``note`` says so).
    k : int, default 3
        For the ranking's ``p_top{k}``.
    capacity, risk_aversion, alpha, risk_draws
        See :func:`best_portfolio`.
    resimulate : bool, default True
        Project the chosen set jointly (interactions included).

    Returns
    -------
    Prioritisation
    """
    quantity, note = objective_quantity(result, objective)
    values = result.initiatives.get(quantity)
    ranking = rank(result, objective=objective, k=k)
    portfolio = best_portfolio(
        result.scenario,
        values,
        capacity=capacity,
        risk_aversion=risk_aversion,
        alpha=alpha,
        risk_draws=risk_draws,
        result=result if resimulate else None,
        quantity=quantity,
    )
    table = pd.DataFrame(
        {
            "name": list(result.names),
            "evpi": evpi(values, result.scenario, capacity=capacity),
            "evpi_alone": evpi(values),
        }
    ).sort_values("evpi", ascending=False, kind="stable", ignore_index=True)
    return Prioritisation(objective, quantity, note, ranking, portfolio, table, k)
