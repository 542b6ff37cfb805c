"""The built-in synthetic world: a collaboration-SaaS panel with known ground truth.

The world is generated from the same model forms the fits use, so a fit can be checked
against the truth it should recover:

* **Accounts.** Each account has a plan (``free``/``team``/``enterprise``, about 50/35/15 %)
  and a log size ``u ~ Normal(offset[plan], 0.5)``. An initial cohort starts in period 0
  and the rest join one by one over the later periods, so tenure varies.
* **Leaves** (``invites_sent``, ``seats_activated``, ``boards_shared``,
  ``integrations_connected``)::

      log1p(leaf[i, t]) = alpha_k + lambda_k * u[i] + g[t] + d[i, t]

  with ``g`` a small random walk shared by all accounts and ``d`` an AR(1) deviation within
  the account (``phi = 0.6``, stationary sd 0.3).
* **Parents** (``active_seats`` from its two children, the North Star ``projects_completed``
  from its three)::

      log1p(P[i, t]) = a[plan] + sum_k b_k * log1p(C_k[i, t]) + kappa * u[i] + g[t] + e[i, t]

  ``b_k`` are the true elasticities (the same in every plan), ``e ~ Normal(0, sigma_P)``.
  The direct size effect ``kappa > 0`` (and the shared shocks ``g``) bias a pooled
  regression upward; a regression within accounts with period effects is unbiased.
* **Churn.** An account alive in period ``t`` churns after it with probability::

      expit(c[plan] + churn_slope * log1p(NSM) + tenure_slope * log1p(tenure)
            + hinge_jump * 1[NSM >= hinge_tau])

  (a hard step; the model's :func:`nsm_sim.models.retention.churn_logit` smooths it over a width
  of 0.05 on the log scale). The intercepts ``c`` are set so that the average weekly churn
  stays near 1-2 % whatever ``churn_slope`` and ``hinge_jump``: with both 0 the North Star
  has no effect on churn at all.
* **Candidates.** ``logins`` is a vanity metric: ``log1p(logins) = 3 + 1.2 * u + noise``
  (iid), it tracks size and nothing else. ``revenue`` (also the value column) is lagging:
  ``log1p(revenue) = r[plan] + 0.8 * log1p(NSM[t - revenue_lag]) + noise`` (the account's
  first North Star before it has ``revenue_lag`` periods of history); revenue does not
  drive churn.

Every random draw is made whatever the parameters, in a fixed order, so two worlds with
the same seed differ only where their parameters differ (the same metrics, a different
churn) and the same seed gives the same panel to the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.special import expit

from nsm_sim.files import dumps, write_files
from nsm_sim.spec import MetricTree, dump_tree, load_tree

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


@dataclass(frozen=True)
class World:
    """A synthetic panel, its metric tree and the truth it was generated from.

    Attributes
    ----------
    panel : pandas.DataFrame
        One row per account per period: ``account_id``, ``period``, ``plan``, the metrics of
        the tree and the candidates, ``churned``.
    tree : MetricTree
        The demo tree (``nsm_sim/examples/models/demo.yaml``).
    truth : dict
        The parameters of the generating model (see :func:`generate_world`).
    """

    panel: pd.DataFrame
    tree: MetricTree
    truth: dict


def demo_tree() -> MetricTree:
    """Return the metric tree of the synthetic world (the packaged ``models/demo.yaml``).

    Returns
    -------
    MetricTree
    """
    ref = resources.files("nsm_sim").joinpath("examples", "models", "demo.yaml")
    with resources.as_file(ref) as path:
        return load_tree(path)


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
) -> World:
    """Generate the synthetic world with known truth.

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

    Returns
    -------
    World
        ``truth`` holds ``elasticities`` (``"parent<-child"``: b), ``kappa``,
        ``driver_sigma``, ``churn`` (``intercept`` per plan, ``slope``, ``tenure_slope``,
        ``hinge_jump``, ``hinge_tau``), ``vanity``, ``lagging``, ``revenue_lag``, ``seed``,
        ``accounts``, ``periods`` and ``realised`` (churn per account-period and share of
        accounts churned).

    Examples
    --------
    >>> world = generate_world(accounts=200, periods=10, seed=1)
    >>> world.truth["elasticities"]["projects_completed<-active_seats"]
    0.6
    """
    if accounts < 1 or periods < 1:
        raise ValueError("accounts and periods must be at least 1")
    if revenue_lag < 0:
        raise ValueError("revenue_lag must be >= 0")
    if hinge_tau <= 0:
        raise ValueError("hinge_tau must be > 0")
    tree = demo_tree()
    rng = np.random.default_rng(seed)
    A, T = int(accounts), int(periods)
    t = np.arange(T)

    # accounts: plan, size, first period
    seg = rng.choice(len(SEGMENTS), size=A, p=SEGMENT_SHARES)
    u = np.asarray(SIZE_OFFSET)[seg] + rng.normal(0.0, SIZE_SD, A)
    initial = rng.random(A) < INITIAL_COHORT
    later = rng.integers(1, T, A) if T > 1 else np.zeros(A, dtype=np.int64)
    join = np.where(initial, 0, later)
    shocks = np.cumsum(rng.normal(0.0, SHOCK_SD, T))
    shocks -= shocks[0]

    def positive(z: np.ndarray) -> np.ndarray:
        return np.round(np.maximum(np.expm1(z), 0.0), 3)

    values: dict[str, np.ndarray] = {}
    innovation_sd = AR_SD * np.sqrt(1.0 - AR_PHI**2)
    for leaf, (alpha, lam) in LEAVES.items():
        eps = rng.normal(0.0, innovation_sd, (A, T))
        eps[:, 0] *= AR_SD / innovation_sd  # start from the stationary distribution
        dev = lfilter([1.0], [1.0, -AR_PHI], eps, axis=1)
        values[leaf] = positive(alpha + lam * u[:, None] + shocks[None, :] + dev)
    for parent in reversed(tree.children):  # deepest parents first
        z = np.asarray(PARENT_INTERCEPT[parent])[seg][:, None] + KAPPA * u[:, None] + shocks
        for child in tree.children[parent]:
            z = z + ELASTICITIES[(parent, child)] * np.log1p(values[child])
        z = z + rng.normal(0.0, PARENT_SIGMA[parent], (A, T))
        values[parent] = positive(z)
    nsm = values[tree.north_star]
    x = np.log1p(nsm)

    values[VANITY] = positive(
        LOGINS_CONST + LOGINS_SIZE * u[:, None] + rng.normal(0, LOGINS_SD, (A, T))
    )
    lagged = np.maximum(t[None, :] - revenue_lag, join[:, None])
    x_lag = np.take_along_axis(x, np.minimum(lagged, T - 1), axis=1)
    values[LAGGING] = positive(
        np.asarray(REVENUE_INTERCEPT)[seg][:, None]
        + REVENUE_ELASTICITY * x_lag
        + rng.normal(0.0, REVENUE_SD, (A, T))
    )

    # churn: the first event at or after the account joins ends it
    intercept = np.asarray(CHURN_BASE) - churn_slope * X_REF - hinge_jump * SHARE_ABOVE
    tenure = np.maximum(t[None, :] - join[:, None], 0)
    logit = (
        intercept[seg][:, None]
        + churn_slope * x
        + TENURE_SLOPE * np.log1p(tenure)
        + hinge_jump * (nsm >= hinge_tau)
    )
    event = (rng.random((A, T)) < expit(logit)) & (t[None, :] >= join[:, None])
    churned_any = event.any(axis=1)
    end = np.where(churned_any, event.argmax(axis=1), T - 1)

    # rows: account-major, so the frame comes out sorted by account then period
    alive = (t[None, :] >= join[:, None]) & (t[None, :] <= end[:, None])
    ii, tt = np.nonzero(alive)
    width = len(str(A - 1))
    ids = np.array([f"acct_{i:0{width}d}" for i in range(A)])
    dates = pd.Timestamp(start) + pd.to_timedelta(7 * np.arange(T), unit="D")
    churned = (churned_any[ii] & (tt == end[ii])).astype(np.int64)
    columns: dict[str, Any] = {
        "account_id": ids[ii],
        "period": dates[tt],
        tree.segment: np.asarray(SEGMENTS)[seg][ii],
    }
    for metric in tree.metrics:
        columns[metric] = values[metric][ii, tt]
    columns["churned"] = churned
    panel = pd.DataFrame(columns)

    truth = {
        "elasticities": {f"{p}<-{c}": b for (p, c), b in ELASTICITIES.items()},
        "kappa": KAPPA,
        "driver_sigma": dict(PARENT_SIGMA),
        "segments": list(SEGMENTS),
        "churn": {
            "intercept": {s: round(float(c), 12) for s, c in zip(SEGMENTS, intercept, strict=True)},
            "slope": float(churn_slope),
            "tenure_slope": TENURE_SLOPE,
            "hinge_jump": float(hinge_jump),
            "hinge_tau": float(hinge_tau),
        },
        "vanity": VANITY,
        "lagging": LAGGING,
        "revenue_lag": int(revenue_lag),
        "seed": int(seed),
        "accounts": A,
        "periods": T,
        "start": str(pd.Timestamp(start).date()),
        "realised": {
            "rows": len(panel),
            "churn_per_account_period": float(churned.sum() / max(len(panel), 1)),
            "share_of_accounts_churned": float(churned_any.mean()),
            "share_at_or_above_hinge_tau": float((panel[tree.north_star] >= hinge_tau).mean()),
        },
    }
    return World(panel=panel, tree=tree, truth=truth)


def write_world(
    world: World, out_dir: str | Path, fmt: Literal["csv", "parquet"] = "csv"
) -> dict[str, Path]:
    """Write a world as ``panel.csv`` (or ``panel.parquet``), ``tree.yaml`` and ``truth.json``.

    Written with :func:`nsm_sim.files.write_files`, so a failed run leaves no half-written
    file.

    Parameters
    ----------
    world : World
        From :func:`generate_world`.
    out_dir : str or Path
        Created if missing.
    fmt : {"csv", "parquet"}
        Format of the panel.

    Returns
    -------
    dict
        ``{"panel": Path, "tree": Path, "truth": Path}``.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    out = Path(out_dir)
    panel_name = f"panel.{fmt}"
    if fmt == "csv":
        write_panel = lambda p: world.panel.to_csv(p, index=False, date_format="%Y-%m-%d")  # noqa: E731
    else:
        write_panel = lambda p: world.panel.to_parquet(p, index=False)  # noqa: E731
    write_files(
        out,
        {
            panel_name: write_panel,
            "tree.yaml": lambda p: dump_tree(world.tree, p),
            "truth.json": dumps(world.truth) + "\n",
        },
    )
    paths = {"panel": out / panel_name, "tree": out / "tree.yaml", "truth": out / "truth.json"}
    return paths
