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

Options of :func:`generate_world` make worlds less shaped like the model: AR(1) residuals of
the parents, churn defined by inactivity, a static trait among the candidates, a 0/1 North
Star. :func:`counterfactual` reruns a world with an intervention on one node.

The modules: :mod:`~nsm_sim.synth.parameters` (the true parameters, the tree and the options),
:mod:`~nsm_sim.synth.draws` (every random number of a world, drawn once),
:mod:`~nsm_sim.synth.world` (the generation), :mod:`~nsm_sim.synth.counterfactual` and
:mod:`~nsm_sim.synth.files`.

Every random draw is made whatever the parameters, in a fixed order, so two worlds with
the same seed differ only where their parameters differ (the same metrics, a different
churn) and the same seed gives the same panel to the last digit.
"""

from nsm_sim.synth.counterfactual import Intervention, counterfactual, lift_matrix
from nsm_sim.synth.files import write_world
from nsm_sim.synth.parameters import (
    CHURN_DEFINITIONS,
    LAGGING,
    SEGMENTS,
    STATIC_TRAIT,
    VANITY,
    demo_tree,
)
from nsm_sim.synth.world import World, generate_world

__all__ = [
    "CHURN_DEFINITIONS",
    "LAGGING",
    "SEGMENTS",
    "STATIC_TRAIT",
    "VANITY",
    "Intervention",
    "World",
    "counterfactual",
    "demo_tree",
    "generate_world",
    "lift_matrix",
    "write_world",
]
