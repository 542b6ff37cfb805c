"""The synthetic world's true parameters, its tree and the options that change it.

The model these parameters enter is described in :mod:`nsm_sim.synth`; the random numbers are
drawn in :mod:`nsm_sim.synth.draws` and the world generated in :mod:`nsm_sim.synth.world`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

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
class Options:
    """A world's options, checked (see :func:`nsm_sim.synth.generate_world`)."""

    churn_slope: float
    hinge_jump: float
    hinge_tau: float
    revenue_lag: int
    residual_rho: float
    churn: str
    inactive_periods: int
    static_trait: bool
    binary_north_star: bool


def demo_tree() -> MetricTree:
    """Return the metric tree of the synthetic world (the packaged ``models/demo.yaml``).

    Returns
    -------
    MetricTree
    """
    ref = resources.files("nsm_sim").joinpath("examples", "models", "demo.yaml")
    with resources.as_file(ref) as path:
        return load_tree(path)
