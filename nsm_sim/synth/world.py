"""Generation of the synthetic world (described in :mod:`nsm_sim.synth`).

The parameters and options are :mod:`nsm_sim.synth.parameters`'s, the random numbers
:mod:`nsm_sim.synth.draws`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit

from nsm_sim.spec import MetricTree
from nsm_sim.synth.draws import Draws, setup
from nsm_sim.synth.parameters import (
    ACTIVITY_CONST,
    ACTIVITY_SIZE,
    BINARY_THRESHOLD,
    CHURN_BASE,
    ELASTICITIES,
    KAPPA,
    LAGGING,
    LEAVES,
    LOGINS_CONST,
    LOGINS_SIZE,
    PARENT_INTERCEPT,
    PARENT_SIGMA,
    REVENUE_ELASTICITY,
    REVENUE_INTERCEPT,
    SEGMENTS,
    SHARE_ABOVE,
    STATIC_TRAIT,
    TENURE_SLOPE,
    TRAIT_CONST,
    TRAIT_SD,
    TRAIT_SIZE,
    VANITY,
    X_REF,
    Options,
)


@dataclass(frozen=True)
class World:
    """A synthetic panel, its metric tree and the truth it was generated from.

    Attributes
    ----------
    panel : pandas.DataFrame
        One row per account per period: ``account_id``, ``period``, ``plan``, the metrics of
        the tree and the candidates, ``churned``.
    tree : MetricTree
        The demo tree (``nsm_sim/examples/models/demo.yaml``), with the static trait among
        the candidates when the world has one.
    truth : dict
        The parameters of the generating model (see :func:`generate_world`).
    """

    panel: pd.DataFrame
    tree: MetricTree
    truth: dict


def _positive(z: np.ndarray) -> np.ndarray:
    return np.round(np.maximum(np.expm1(z), 0.0), 3)


def world_metrics(
    tree: MetricTree, d: Draws, opt: Options, lift: tuple[str, np.ndarray] | None
) -> dict[str, np.ndarray]:
    """Return the metrics of the tree, with the lift on one node if given."""
    values: dict[str, np.ndarray] = {}
    u, shocks, seg = d.u, d.shocks, d.seg

    def lifted(node: str, v: np.ndarray) -> np.ndarray:
        return np.round(v * lift[1], 3) if lift is not None and lift[0] == node else v

    for leaf, (alpha, lam) in LEAVES.items():
        values[leaf] = lifted(
            leaf, _positive(alpha + lam * u[:, None] + shocks[None, :] + d.leaf_dev[leaf])
        )
    for parent in reversed(tree.children):  # deepest parents first
        z = np.asarray(PARENT_INTERCEPT[parent])[seg][:, None] + KAPPA * u[:, None] + shocks
        for child in tree.children[parent]:
            z = z + ELASTICITIES[(parent, child)] * np.log1p(values[child])
        z = z + d.parent_noise[parent]
        values[parent] = lifted(parent, _positive(z))
    ns = tree.north_star
    if opt.binary_north_star:
        values[ns] = (values[ns] >= BINARY_THRESHOLD).astype(float)
    if d.activity_uniform is not None:
        p_active = expit(ACTIVITY_CONST + ACTIVITY_SIZE * u)[:, None]
        tenure = np.arange(d.activity_uniform.shape[1])[None, :] - d.join[:, None]
        idle = (d.activity_uniform >= p_active) & (tenure >= opt.inactive_periods)
        for node in tree.nodes:
            values[node] = np.where(idle, 0.0, values[node])
    return values


def churn_probability(
    tree: MetricTree, d: Draws, opt: Options, values: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the churn intercepts per plan and the churn probability of every account-period."""
    nsm = values[tree.north_star]
    T = nsm.shape[1]
    if opt.binary_north_star:  # the slope acts on log1p(0 or 1); no threshold term
        intercept = np.asarray(CHURN_BASE) - opt.churn_slope * np.log(2.0) * SHARE_ABOVE
        step = 0.0
    else:
        intercept = np.asarray(CHURN_BASE) - opt.churn_slope * X_REF - opt.hinge_jump * SHARE_ABOVE
        step = opt.hinge_jump * (nsm >= opt.hinge_tau)
    tenure = np.maximum(np.arange(T)[None, :] - d.join[:, None], 0)
    logit = (
        intercept[d.seg][:, None]
        + opt.churn_slope * np.log1p(nsm)
        + TENURE_SLOPE * np.log1p(tenure)
        + step
    )
    return intercept, expit(logit)


def account_ends(
    d: Draws, opt: Options, hazard: np.ndarray, values: dict[str, np.ndarray], ns: str
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return whether each account churned, its last period, and the metrics.

    By inactivity, the metrics after the account left are zeros.
    """
    A, T = hazard.shape
    t = np.arange(T)
    started = t[None, :] >= d.join[:, None]
    if opt.churn == "hazard":
        event = (d.churn_uniform < hazard) & started
        churned = event.any(axis=1)
        return churned, np.where(churned, event.argmax(axis=1), T - 1), values
    n = opt.inactive_periods
    event = (d.churn_uniform < hazard) & (t[None, :] - d.join[:, None] >= n)
    left = np.where(event.any(axis=1), event.argmax(axis=1), T)
    gone = t[None, :] > left[:, None]
    values = {k: np.where(gone, 0.0, v) for k, v in values.items()}
    idle = values[ns] == 0
    runs = np.zeros((A, T + 1), dtype=np.int64)
    runs[:, 1:] = np.cumsum(idle, axis=1)
    ahead = np.zeros((A, T), dtype=np.int64)  # idle periods among t + 1 .. t + n
    ahead[:, : T - n] = runs[:, n + 1 :] - runs[:, 1 : T - n + 1]
    last_active = started & ~idle & (ahead == n) & (t[None, :] <= T - 1 - n)
    churned = last_active.any(axis=1)
    return churned, np.where(churned, last_active.argmax(axis=1), T - 1), values


def generate_world(
    accounts: int = 5000,
    periods: int = 52,
    seed: int = 0,
    *,
    churn_slope: float = -0.5,
    hinge_jump: float = -0.7,
    hinge_tau: float = 7.5,
    revenue_lag: int = 3,
    start: str = "2025-01-06",
    residual_rho: float = 0.0,
    churn: Literal["hazard", "inactivity"] = "hazard",
    inactive_periods: int = 4,
    static_trait: bool = False,
    binary_north_star: bool = False,
) -> World:
    """Generate the synthetic world with known truth.

    With the default options the world is the one the module describes; each option below
    changes it in one respect and draws any new random numbers from a stream of its own, so
    the other draws (and with all options off, every number) stay those of the default world
    with the same seed.

    Parameters
    ----------
    accounts : int, default 5000
        Accounts over the whole panel (an initial cohort plus those joining later).
    periods : int, default 52
        Weekly periods.
    seed : int, default 0
        Seed of the generator; the same seed gives the same world.
    churn_slope : float, default -0.5
        Effect of ``log1p(North Star)`` on the churn logit.
    hinge_jump : float, default -0.7
        Change of the churn logit for account-periods at or above ``hinge_tau``.
    hinge_tau : float, default 7.5
        The "aha" threshold on the North Star's own scale (about its 35th percentile).
    revenue_lag : int, default 3
        Periods by which revenue follows the North Star.
    start : str, default "2025-01-06"
        Date of the first period (a Monday).
    residual_rho : float, default 0
        Correlation within account of consecutive residuals ``e`` of the parents: the
        residuals are AR(1), ``e[t] = rho * e[t - 1] + sqrt(1 - rho**2) * sigma_P * z[t]``,
        with the same marginal sd ``sigma_P`` (0: independent, as by default).
    churn : {"hazard", "inactivity"}, default "hazard"
        ``"hazard"``: an account churns in the period its hazard event happens and its rows
        end there. ``"inactivity"``: churn as a product team defines it. An account is
        inactive in a period when its North Star is 0; after its first ``inactive_periods``
        periods (always active) it is idle in a period with probability
        ``1 - expit(2.5 + 1.0 * u)`` (zero inflation: every metric of the tree is 0 in that
        period), and after the hazard event (possible from then on) it is idle for good. It
        is churned at its last active period followed by ``inactive_periods`` idle ones,
        which ends its rows; the last ``inactive_periods`` periods cannot show a churn
        (censored), and churn at a tenure below ``inactive_periods - 1`` is impossible.
    inactive_periods : int, default 4
        Idle periods that define churn with ``churn="inactivity"``.
    static_trait : bool, default False
        Add the candidate ``signup_team_size``, constant within each account:
        ``max(1, round(exp(1.0 + 0.8 * u + 0.4 * z)))``, correlated with size ``u`` and
        with no effect on churn or the tree beyond size.
    binary_north_star : bool, default False
        The North Star is 0/1: 1 when the continuous North Star reaches ``BINARY_THRESHOLD``
        (7.5) in the period. Churn acts on ``log1p`` of the 0/1 value with ``churn_slope``
        and has no threshold term (``truth["churn"]["hinge_jump"]`` is 0).

    Returns
    -------
    World
        ``truth`` holds ``elasticities`` (``"parent<-child"``: b), ``kappa``,
        ``driver_sigma``, ``residual_rho``, ``churn`` (``definition``, ``intercept`` per
        plan, ``slope``, ``tenure_slope``, ``hinge_jump``, ``hinge_tau``, and by
        inactivity ``inactive_periods`` and ``activity``), ``north_star_binary``,
        ``static_trait`` (or None), ``vanity``, ``lagging``, ``revenue_lag``, ``seed``,
        ``accounts``, ``periods`` and ``realised`` (churn per account-period and share of
        accounts churned).

    Examples
    --------
    >>> world = generate_world(accounts=200, periods=10, seed=1)
    >>> world.truth["elasticities"]["projects_completed<-active_seats"]
    0.6
    """
    tree, opt, d = setup(
        accounts,
        periods,
        seed,
        churn_slope=churn_slope,
        hinge_jump=hinge_jump,
        hinge_tau=hinge_tau,
        revenue_lag=revenue_lag,
        residual_rho=residual_rho,
        churn=churn,
        inactive_periods=inactive_periods,
        static_trait=static_trait,
        binary_north_star=binary_north_star,
    )
    A, T = int(accounts), int(periods)
    t = np.arange(T)
    values = world_metrics(tree, d, opt, None)
    intercept, hazard = churn_probability(tree, d, opt, values)
    churned_any, end, values = account_ends(d, opt, hazard, values, tree.north_star)
    x = np.log1p(values[tree.north_star])
    values[VANITY] = _positive(LOGINS_CONST + LOGINS_SIZE * d.u[:, None] + d.logins_noise)
    lagged = np.maximum(t[None, :] - revenue_lag, d.join[:, None])
    x_lag = np.take_along_axis(x, np.minimum(lagged, T - 1), axis=1)
    values[LAGGING] = _positive(
        np.asarray(REVENUE_INTERCEPT)[d.seg][:, None] + REVENUE_ELASTICITY * x_lag + d.revenue_noise
    )
    if d.trait_noise is not None:
        trait = np.exp(TRAIT_CONST + TRAIT_SIZE * d.u + TRAIT_SD * d.trait_noise)
        values[STATIC_TRAIT] = np.repeat(np.maximum(1.0, np.round(trait))[:, None], T, axis=1)

    # rows: account-major, so the frame comes out sorted by account then period
    alive = (t[None, :] >= d.join[:, None]) & (t[None, :] <= end[:, None])
    ii, tt = np.nonzero(alive)
    width = len(str(A - 1))
    ids = np.array([f"acct_{i:0{width}d}" for i in range(A)])
    dates = pd.Timestamp(start) + pd.to_timedelta(7 * np.arange(T), unit="D")
    churned = (churned_any[ii] & (tt == end[ii])).astype(np.int64)
    columns: dict[str, Any] = {
        "account_id": ids[ii],
        "period": dates[tt],
        tree.segment: np.asarray(SEGMENTS)[d.seg][ii],
    }
    for metric in tree.metrics:
        columns[metric] = values[metric][ii, tt]
    columns["churned"] = churned
    panel = pd.DataFrame(columns)
    truth = _truth(tree, opt, intercept, panel, churned_any, seed, A, T, start)
    return World(panel=panel, tree=tree, truth=truth)


def _truth(
    tree: MetricTree,
    opt: Options,
    intercept: np.ndarray,
    panel: pd.DataFrame,
    churned_any: np.ndarray,
    seed: int,
    A: int,
    T: int,
    start: str,
) -> dict[str, Any]:
    churned = panel["churned"].to_numpy()
    churn: dict[str, Any] = {
        "intercept": {s: round(float(c), 12) for s, c in zip(SEGMENTS, intercept, strict=True)},
        "slope": opt.churn_slope,
        "tenure_slope": TENURE_SLOPE,
        "hinge_jump": opt.hinge_jump,
        "hinge_tau": opt.hinge_tau,
    }
    churn["definition"] = opt.churn
    if opt.churn == "inactivity":
        churn["inactive_periods"] = opt.inactive_periods
        churn["activity"] = {
            "intercept": ACTIVITY_CONST,
            "size": ACTIVITY_SIZE,
            "always_active_periods": opt.inactive_periods,
        }
    trait = None
    if opt.static_trait:
        trait = {
            "name": STATIC_TRAIT,
            "log_constant": TRAIT_CONST,
            "size_loading": TRAIT_SIZE,
            "sd": TRAIT_SD,
            "churn_effect": 0.0,
        }
    binary = {"threshold": BINARY_THRESHOLD} if opt.binary_north_star else None
    return {
        "elasticities": {f"{p}<-{c}": b for (p, c), b in ELASTICITIES.items()},
        "kappa": KAPPA,
        "driver_sigma": dict(PARENT_SIGMA),
        "segments": list(SEGMENTS),
        "churn": churn,
        "vanity": VANITY,
        "lagging": LAGGING,
        "revenue_lag": opt.revenue_lag,
        "residual_rho": opt.residual_rho,
        "static_trait": trait,
        "north_star_binary": binary,
        "seed": int(seed),
        "accounts": A,
        "periods": T,
        "start": str(pd.Timestamp(start).date()),
        "realised": {
            "rows": len(panel),
            "churn_per_account_period": float(churned.sum() / max(len(panel), 1)),
            "share_of_accounts_churned": float(churned_any.mean()),
            "share_at_or_above_hinge_tau": float((panel[tree.north_star] >= opt.hinge_tau).mean()),
        },
    }
