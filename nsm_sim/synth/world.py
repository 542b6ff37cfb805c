"""Generation of the synthetic world (described in :mod:`nsm_sim.synth`)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.special import expit

from nsm_sim.numeric import name_key, stream
from nsm_sim.spec import MetricTree, load_tree

#: Plans and their shares of accounts.
SEGMENTS = ("free", "team", "enterprise")
SEGMENT_SHARES = (0.50, 0.35, 0.15)
#: Mean log size per plan (the sd within a plan is ``SIZE_SD``).
SIZE_OFFSET = (-0.25, 0.15, 0.60)
SIZE_SD = 0.5
#: Share of accounts present from the first period; the others join over the later periods.
INITIAL_COHORT = 0.6
#: Random walk of the period shocks shared by all accounts.
SHOCK_SD = 0.02
#: AR(1) deviations of the leaves within an account.
AR_PHI = 0.6
AR_SD = 0.3
#: ``log1p(leaf) = alpha + lambda * u + ...``: leaf -> (alpha, lambda).
LEAVES = {
    "invites_sent": (1.6, 0.8),
    "seats_activated": (2.0, 1.0),
    "boards_shared": (1.4, 0.7),
    "integrations_connected": (1.0, 0.6),
}
#: True elasticities, one per edge of the tree.
ELASTICITIES = {
    ("active_seats", "invites_sent"): 0.35,
    ("active_seats", "seats_activated"): 0.55,
    ("projects_completed", "active_seats"): 0.60,
    ("projects_completed", "boards_shared"): 0.30,
    ("projects_completed", "integrations_connected"): 0.20,
}
#: Intercept per plan and residual sd of each parent.
PARENT_INTERCEPT = {
    "active_seats": (0.30, 0.40, 0.50),
    "projects_completed": (0.40, 0.50, 0.60),
}
PARENT_SIGMA = {"active_seats": 0.20, "projects_completed": 0.15}
#: Direct effect of size on every parent.
KAPPA = 0.3
#: Churn logit per plan at the reference level of the North Star, before the hinge (about
#: 1.4 %, 0.9 % and 0.6 % a week for a new account at that level, above the threshold).
CHURN_BASE = (-4.0, -4.5, -4.9)
TENURE_SLOPE = -0.15
#: Centre of log1p(North Star) and share of account-periods above the default threshold,
#: used to keep the average churn level fixed when the slope or the jump change.
X_REF = 2.5
SHARE_ABOVE = 0.65
#: Candidates.
VANITY = "logins"
LAGGING = "revenue"
LOGINS_CONST, LOGINS_SIZE, LOGINS_SD = 3.0, 1.2, 0.3
REVENUE_INTERCEPT = (0.0, 1.5, 3.0)
REVENUE_ELASTICITY, REVENUE_SD = 0.8, 0.05


#: Options of the world beyond the default (each draws from its own stream, see the module).
CHURN_DEFINITIONS = ("hazard", "inactivity")
#: Activity with churn by inactivity: ``P(active) = expit(ACTIVITY_CONST + ACTIVITY_SIZE * u)``.
ACTIVITY_CONST, ACTIVITY_SIZE = 2.5, 1.0
#: The static trait: ``log(trait) = TRAIT_CONST + TRAIT_SIZE * u + TRAIT_SD * z``, rounded, >= 1.
STATIC_TRAIT = "signup_team_size"
TRAIT_CONST, TRAIT_SIZE, TRAIT_SD = 1.0, 0.8, 0.4
#: A 0/1 North Star: active in a period when the continuous North Star reaches this level.
BINARY_THRESHOLD = 7.5


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


@dataclass(frozen=True)
class _Options:
    churn_slope: float
    hinge_jump: float
    hinge_tau: float
    revenue_lag: int
    residual_rho: float
    churn: str
    inactive_periods: int
    static_trait: bool
    binary_north_star: bool


@dataclass(frozen=True)
class _Draws:
    """Every random number of a world, drawn once (an intervention reuses them all)."""

    seg: np.ndarray
    u: np.ndarray
    join: np.ndarray
    shocks: np.ndarray
    leaf_dev: dict[str, np.ndarray]
    parent_noise: dict[str, np.ndarray]
    logins_noise: np.ndarray
    revenue_noise: np.ndarray
    churn_uniform: np.ndarray
    activity_uniform: np.ndarray | None
    trait_noise: np.ndarray | None


def demo_tree() -> MetricTree:
    """Return the metric tree of the synthetic world (the packaged ``models/demo.yaml``).

    Returns
    -------
    MetricTree
    """
    ref = resources.files("nsm_sim").joinpath("examples", "models", "demo.yaml")
    with resources.as_file(ref) as path:
        return load_tree(path)


def _draw(tree: MetricTree, A: int, T: int, seed: int, opt: _Options) -> _Draws:
    """Draw every random number of a world.

    The default world's draws come in their historical order, then each option's from a
    stream of its own, so an option never moves the default draws.
    """
    rng = np.random.default_rng(seed)
    seg = rng.choice(len(SEGMENTS), size=A, p=SEGMENT_SHARES)
    u = np.asarray(SIZE_OFFSET)[seg] + rng.normal(0.0, SIZE_SD, A)
    initial = rng.random(A) < INITIAL_COHORT
    later = rng.integers(1, T, A) if T > 1 else np.zeros(A, dtype=np.int64)
    shocks = np.cumsum(rng.normal(0.0, SHOCK_SD, T))
    shocks -= shocks[0]
    leaf_dev = {}
    innovation_sd = AR_SD * np.sqrt(1.0 - AR_PHI**2)
    for leaf in LEAVES:
        eps = rng.normal(0.0, innovation_sd, (A, T))
        eps[:, 0] *= AR_SD / innovation_sd  # start from the stationary distribution
        leaf_dev[leaf] = lfilter([1.0], [1.0, -AR_PHI], eps, axis=1)
    parent_noise = {}
    rho = opt.residual_rho
    for parent in reversed(tree.children):
        e = rng.normal(0.0, PARENT_SIGMA[parent], (A, T))
        if rho != 0.0:  # AR(1) within account with the same marginal sd
            scale = np.sqrt(1.0 - rho**2)
            e[:, 1:] *= scale
            e = lfilter([1.0], [1.0, -rho], e, axis=1)
        parent_noise[parent] = e
    logins_noise = rng.normal(0, LOGINS_SD, (A, T))
    revenue_noise = rng.normal(0.0, REVENUE_SD, (A, T))
    churn_uniform = rng.random((A, T))
    activity = None
    if opt.churn == "inactivity":
        activity = stream(seed, name_key("activity")).random((A, T))
    trait = stream(seed, name_key(STATIC_TRAIT)).normal(0.0, 1.0, A) if opt.static_trait else None
    return _Draws(
        seg=seg,
        u=u,
        join=np.where(initial, 0, later),
        shocks=shocks,
        leaf_dev=leaf_dev,
        parent_noise=parent_noise,
        logins_noise=logins_noise,
        revenue_noise=revenue_noise,
        churn_uniform=churn_uniform,
        activity_uniform=activity,
        trait_noise=trait,
    )


def _positive(z: np.ndarray) -> np.ndarray:
    return np.round(np.maximum(np.expm1(z), 0.0), 3)


def world_metrics(
    tree: MetricTree, d: _Draws, opt: _Options, lift: tuple[str, np.ndarray] | None
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
    tree: MetricTree, d: _Draws, opt: _Options, values: dict[str, np.ndarray]
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
    d: _Draws, opt: _Options, hazard: np.ndarray, values: dict[str, np.ndarray], ns: str
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


def setup(
    accounts: int,
    periods: int,
    seed: int,
    *,
    churn_slope: float = -0.5,
    hinge_jump: float = -0.7,
    hinge_tau: float = 7.5,
    revenue_lag: int = 3,
    residual_rho: float = 0.0,
    churn: str = "hazard",
    inactive_periods: int = 4,
    static_trait: bool = False,
    binary_north_star: bool = False,
) -> tuple[MetricTree, _Options, _Draws]:
    """Check a world's options and draw its random numbers (see :func:`generate_world`).

    Returns
    -------
    tree : MetricTree
    options : _Options
    draws : _Draws
    """
    if accounts < 1 or periods < 1:
        raise ValueError("accounts and periods must be at least 1")
    opt = _Options(
        churn_slope=float(churn_slope),
        hinge_jump=0.0 if binary_north_star else float(hinge_jump),
        hinge_tau=float(hinge_tau),
        revenue_lag=int(revenue_lag),
        residual_rho=float(residual_rho),
        churn=churn,
        inactive_periods=int(inactive_periods),
        static_trait=bool(static_trait),
        binary_north_star=bool(binary_north_star),
    )
    if opt.revenue_lag < 0:
        raise ValueError("revenue_lag must be >= 0")
    if opt.hinge_tau <= 0:
        raise ValueError("hinge_tau must be > 0")
    if not -1.0 < opt.residual_rho < 1.0:
        raise ValueError("residual_rho must be in (-1, 1)")
    if opt.churn not in CHURN_DEFINITIONS:
        raise ValueError(f"churn must be one of {CHURN_DEFINITIONS}, got {opt.churn!r}")
    if opt.inactive_periods < 1:
        raise ValueError("inactive_periods must be >= 1")
    tree = demo_tree()
    if opt.static_trait:
        tree = tree.model_copy(update={"candidates": [*tree.candidates, STATIC_TRAIT]})
    return tree, opt, _draw(tree, int(accounts), int(periods), seed, opt)


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
    opt: _Options,
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
