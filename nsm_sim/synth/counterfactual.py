"""The counterfactual of an intervention: the same world, rerun with a lift on one node.

The world is rerun with the same seed and every random number the same (common random
numbers): the metrics' noise, the period shocks and the churn draws. Only the node lifted
and what depends on it (its ancestors up to the North Star, and through the North Star the
churn hazard and revenue) change, so the difference from the world without the intervention
is the intervention's true effect, free of sampling noise in the metrics. The effect on the
North Star total is reported on the accounts a projection would start from (those alive in
the period before the intervention starts) and in expectation over churn (each account
weighted by its probability of being alive, from its true hazard), so it carries no noise
from which accounts happened to churn either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nsm_sim.numeric import name_key, stream
from nsm_sim.synth.draws import setup
from nsm_sim.synth.world import account_ends, churn_probability, world_metrics


@dataclass(frozen=True)
class Intervention:
    """A relative lift on one node of the world, for its counterfactual (:func:`counterfactual`).

    Attributes
    ----------
    target : str
        A node of the tree (a leaf, an input with inputs, or the North Star).
    lift : float
        Relative lift at full effect (``0.2`` = +20 %), above -1.
    start : int
        First period (0-based, of the whole world) with an effect, at least 1.
    reach : float, default 1
        Share of accounts reached; which accounts is drawn from a stream keyed by ``name``.
    ramp : int, default 0
        Periods of ramp: in period ``t`` the target is multiplied by ``(1 + lift) ** r`` with
        ``r = clip((t - start + 1) / (ramp + 1), 0, 1)``, as the simulator ramps a lift.
    name : str, default "initiative"
        Keys the choice of the accounts reached.
    """

    target: str
    lift: float
    start: int
    reach: float = 1.0
    ramp: int = 0
    name: str = "initiative"


def lift_matrix(intervention: Intervention, accounts: int, periods: int, seed: int) -> np.ndarray:
    """Return the multiplier of the target per account and period under an intervention.

    Parameters
    ----------
    intervention : Intervention
    accounts, periods, seed : int
        As in :func:`nsm_sim.synth.generate_world`.

    Returns
    -------
    ndarray, shape (accounts, periods)
        1 for accounts not reached and periods before the start.
    """
    iv = intervention
    key = (name_key("reach"), name_key(iv.name))
    reached = stream(seed, *key).random(accounts) < iv.reach
    share = np.clip((np.arange(periods) - iv.start + 1) / (iv.ramp + 1), 0.0, 1.0)
    return np.where(reached[:, None], (1.0 + iv.lift) ** share[None, :], 1.0)


def counterfactual(
    intervention: Intervention,
    *,
    accounts: int = 5000,
    periods: int = 52,
    seed: int = 0,
    **options: Any,
) -> pd.DataFrame:
    """Return the true effect of an intervention on the North Star total, period by period.

    Parameters
    ----------
    intervention : Intervention
    accounts, periods, seed : int
        The world, as in :func:`nsm_sim.synth.generate_world`.
    **options
        Any other option of :func:`nsm_sim.synth.generate_world` except ``start``
        (``churn`` must be ``"hazard"``: the expectation over churn needs a hazard).

    Returns
    -------
    pandas.DataFrame
        One row per period from ``intervention.start`` to the last: ``t`` (0 for the first
        period with an effect, as the simulator's horizon counts), ``period`` (of the world),
        and for the accounts alive in period ``start - 1`` (the cohort), in expectation over
        churn: ``north_star_base`` and ``north_star`` (the North Star total without and with
        the intervention), ``north_star_change``, ``north_star_change_pct``,
        ``retained_base``, ``retained`` (accounts alive after the period) and
        ``retained_change``. ``frame.attrs["cohort"]`` is the number of accounts.

    Examples
    --------
    >>> effect = counterfactual(Intervention("projects_completed", 0.1, start=8),
    ...                         accounts=300, periods=12, seed=1, churn_slope=0.0,
    ...                         hinge_jump=0.0)
    >>> round(float(effect["north_star_change_pct"].iloc[0]), 3)
    10.0
    """
    iv = intervention
    if options.get("churn", "hazard") != "hazard":
        raise ValueError("the counterfactual needs churn='hazard'")
    if not 1 <= iv.start < periods:
        raise ValueError(f"intervention.start must be in 1 .. {periods - 1}, got {iv.start}")
    if not iv.lift > -1.0 or not 0.0 <= iv.reach <= 1.0 or iv.ramp < 0:
        raise ValueError("intervention: lift must be above -1, reach in [0, 1], ramp >= 0")
    tree, opt, draws = setup(accounts, periods, seed, **options)
    if iv.target not in tree.nodes:
        raise ValueError(f"intervention.target: {iv.target!r} is not a node of the tree")
    A, T, s = int(accounts), int(periods), int(iv.start)
    ns = tree.north_star
    base = world_metrics(tree, draws, opt, None)
    moved = world_metrics(tree, draws, opt, (iv.target, lift_matrix(iv, A, T, seed)))
    hazard0 = churn_probability(tree, draws, opt, base)[1]
    hazard1 = churn_probability(tree, draws, opt, moved)[1]
    _, end, _ = account_ends(draws, opt, hazard0, base, ns)
    cohort = (draws.join <= s - 1) & (end >= s)

    def totals(values: dict[str, np.ndarray], hazard: np.ndarray) -> tuple[np.ndarray, ...]:
        survive = np.cumprod(1.0 - hazard[cohort, s:], axis=1)
        alive = np.concatenate([np.ones((survive.shape[0], 1)), survive[:, :-1]], axis=1)
        return (alive * values[ns][cohort, s:]).sum(axis=0), survive.sum(axis=0)

    nsm0, retained0 = totals(base, hazard0)
    nsm1, retained1 = totals(moved, hazard1)
    frame = pd.DataFrame(
        {
            "t": np.arange(T - s),
            "period": np.arange(s, T),
            "north_star_base": nsm0,
            "north_star": nsm1,
            "north_star_change": nsm1 - nsm0,
            "north_star_change_pct": 100.0 * (nsm1 - nsm0) / nsm0,
            "retained_base": retained0,
            "retained": retained1,
            "retained_change": retained1 - retained0,
        }
    )
    frame.attrs["cohort"] = int(cohort.sum())
    return frame
