"""The elasticities integrated out: the closed-form likelihood and the exact conditionals.

Sampling: the elasticities integrated out
-----------------------------------------
With thousands of rows per segment the data pin each ``b[s,k]`` to a few thousandths, while
the spread ``tau`` across segments is barely identified by three segments. That is the worst
case for both textbook parameterisations: the centred one has a funnel as ``tau -> 0`` and the
non-centred one (``b = mu + tau z``) a funnel as ``tau`` grows (measured on the synthetic
world: 70 divergent transitions in 2,000 with non-centred, 670 with centred). Because the
likelihood is Gaussian in ``b`` and the hierarchy is Gaussian, ``b`` and ``mu`` integrate out
in closed form, so by default (``marginal=True``) the sampler sees only ``tau``, ``sigma`` (and
the pooled intercepts)::

    bhat_s = Sxx_s^-1 Sxy_s,  V_s = sigma_s^2 Sxx_s^-1
    log L  = sum_s [-(n_eff_s - K)/2 log(2 pi sigma_s^2) - SSRmin_s/(2 sigma_s^2)
                    - 1/2 log|Sxx_s|]
             + log MvNormal(bhat; 0, blockdiag(V_s + diag(tau^2)) + 1 1' (x) I_K)

(the last term is the marginal of the stacked OLS estimates under the hierarchy and the
``Normal(0, 1)`` prior of ``mu``). :func:`draw_elasticities` then draws ``mu`` and ``b`` from
their exact Gaussian conditionals for every posterior draw, so the posterior holds the same
variables, from the same model, as with ``marginal=False`` (the explicit non-centred model,
kept for checks).

Intervals that hold under serial correlation: the sandwich-calibrated likelihood
-------------------------------------------------------------------------------
The Gaussian likelihood treats account-periods as independent, so its covariance of
``bhat``, ``sigma^2 Sxx^-1``, is too small when an account's residuals are correlated over
time (measured: 2x too narrow at AR(1) rho = 0.8) or their scale differs between accounts.
:func:`reduce_stats` keeps the likelihood and its point estimate and replaces its curvature
by the cluster-robust (by account) covariance, ``sxx_inv = G/(G-1) Sxx^-1 M Sxx^-1 /
sigmahat^2`` with ``M = sum_a g_a g_a'`` the outer products of the accounts' scores at
``bhat`` (:attr:`nsm_sim.data.DriverStats.meat`, ``G`` accounts, ``sigmahat^2 = SSRmin /
df``), so that ``sigma^2 sxx_inv`` is the cluster-robust covariance at ``sigma =
sigmahat``. The effective statistics ``lik_sxx = sxx_inv^-1``, ``lik_sxy = lik_sxx bhat``,
``lik_syy = SSRmin + bhat' lik_sxy`` make the explicit model the same likelihood. This is
the "sandwich posterior" (Mueller 2013, Econometrica 81; the curvature adjustment of
composite likelihoods, Ribatet, Cooley and Davison 2012), chosen over the alternatives:

- *AR(1) errors within account* (quasi-differenced statistics, exact and quadratic in
  ``rho``: products of the rows, of the rows with their previous period and of the previous
  periods) is the exact likelihood only when the residuals are AR(1) with one ``rho`` and
  one scale: it leaves heteroskedasticity across accounts and any other dependence (a
  persistent account-level drift, seasonality) as narrow as before, moves the point estimate
  away from the two-way fixed-effects one (GLS), samples one more parameter per parent and
  segment, and its ``rho`` is biased down in short panels after the within transformation
  (about ``-(1 + rho) / (T - 1)``).
- *Random slopes per account* or *a bootstrap by account* need the rows in every fit.

The calibration holds for any dependence within an account and any heteroskedasticity, needs
one K x K matrix per segment (flat in rows; the engine computes it in a second pass,
:mod:`nsm_sim.events.within`) and leaves the sampler and its cost unchanged. Its limits: it
needs many accounts (the meat of a few clusters is noisy; the ``G/(G-1)`` factor is the
usual small-sample correction), and the estimate stays the fixed-effects one, not the more
efficient GLS. With ``cluster_robust=False`` account-periods are taken as independent.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from nsm_sim.data import DriverStats

#: Prior variance of an uncalibrated population elasticity (``elasticity_mu ~ Normal(0, 1)``).
MU_PRIOR_VAR = 1.0
#: Variance given to the OLS estimate of a segment whose data cannot identify it.
_UNINFORMATIVE = 1e6


def _marginal_logp_and_grad(bhat, sxx_inv, sigma2, tau2, mu_mean, mu_var, sizes):
    """Numpy value and gradient of the integrated likelihood of every parent at once.

    Parents are stacked on the first axis and padded to the largest number of children
    ``K``: a padded child has ``bhat = 0``, ``sxx_inv = 0``, ``tau2 = 1``, ``mu_mean = 0`` and
    ``mu_var = 1``, so its block of ``W`` is the identity and it adds only the constant
    ``log(S + 1)`` to ``log |P|``, which is taken out. Per parent, with ``V = diag(mu_var)``,
    ``C = D + U V U'`` (``D = blockdiag(W_s)``, ``U = 1_S (x) I_K``) and the estimates
    centred at the prior mean of ``mu``, the Woodbury identity needs only K x K matrices:
    ``P = V^-1 + sum_s W_s^-1``, ``C^-1 = D^-1 - D^-1 U P^-1 U' D^-1`` and
    ``|C| = prod_s |W_s| * |V| * |P|``. The gradient is ``dlogp/dC = (alpha alpha' -
    C^-1) / 2`` with ``alpha = C^-1 (bhat - mu_mean)``, of which only the diagonal blocks are
    needed. One batched call costs about half of one call per parent (measured).

    Parameters
    ----------
    bhat : ndarray, shape (J, S, K)
    sxx_inv : ndarray, shape (J, S, K, K)
    sigma2 : ndarray, shape (J, S)
    tau2 : ndarray, shape (J, K)
    mu_mean, mu_var : ndarray, shape (J, K)
        Normal prior of the level the data see: ``mu``, plus the bias on a calibrated edge
        (:func:`edge_priors`).
    sizes : sequence of int
        Children of each parent (``K`` minus its padding).

    Returns
    -------
    tuple
        ``logp`` (J,), its gradients ``d_sigma2`` (J, S) and ``d_tau2`` (J, K), each parent's
        in its own parameters (zero on padding).
    """
    J, S, K = bhat.shape
    diag = np.arange(K)
    sizes = np.asarray(sizes, dtype=float)
    bhat = bhat - mu_mean[:, None, :]
    W = sigma2[..., None, None] * sxx_inv
    W[..., diag, diag] += tau2[:, None, :]
    sign_w, logdet_w = np.linalg.slogdet(W)
    if np.any(sign_w <= 0) or not np.all(np.isfinite(logdet_w)):
        return np.full(J, -np.inf), np.zeros((J, S)), np.zeros((J, K))  # far in the tails
    w_inv = np.linalg.inv(W)
    P = w_inv.sum(axis=1)
    P[..., diag, diag] += 1.0 / mu_var
    sign_p, logdet_p = np.linalg.slogdet(P)
    if np.any(sign_p <= 0):
        return np.full(J, -np.inf), np.zeros((J, S)), np.zeros((J, K))
    p_inv = np.linalg.inv(P)
    r_s = (w_inv @ bhat[..., None])[..., 0]  # (J, S, K)
    r = r_s.sum(axis=1)  # (J, K)
    quad = (bhat * r_s).sum(axis=(1, 2)) - (r * (p_inv @ r[..., None])[..., 0]).sum(axis=1)
    logdet_c = logdet_w.sum(axis=1) + logdet_p - (K - sizes) * np.log(S + 1.0)
    logdet_c = logdet_c + np.log(mu_var).sum(axis=1)
    logp = -0.5 * quad - 0.5 * logdet_c - 0.5 * S * sizes * np.log(2.0 * np.pi)
    w_inv_p = w_inv @ p_inv[:, None]  # (J, S, K, K)
    alpha = r_s - (w_inv_p @ r[:, None, :, None])[..., 0]
    c_inv_diag = w_inv - w_inv_p @ w_inv
    G = alpha[..., :, None] * alpha[..., None, :] - c_inv_diag
    d_sigma2 = 0.5 * (G * sxx_inv).sum(axis=(-2, -1))
    d_tau2 = 0.5 * G[..., diag, diag].sum(axis=1)
    d_tau2[diag[None, :] >= sizes[:, None]] = 0.0
    return logp, d_sigma2, d_tau2


class MarginalBhatLogp(Op):
    """Log density of the stacked OLS estimates with ``b`` and ``mu`` integrated out.

    For each parent ``j``: ``bhat[s] ~ Normal(b[s], sigma2[s] * sxx_inv[s])``,
    ``b[s] ~ Normal(mu, diag(tau2))``, ``mu ~ Normal(mu_mean, diag(mu_var))``, so the stacked
    ``bhat`` is ``MvNormal(1 (x) mu_mean, C)`` with ``C = blockdiag(sigma2[s] sxx_inv[s] +
    diag(tau2)) + 1 1' (x) diag(mu_var)``.

    Inputs ``bhat`` (J, S, K), ``sxx_inv`` (J, S, K, K), ``sigma2`` (J, S), ``tau2`` (J, K),
    ``mu_mean`` and ``mu_var`` (J, K) (the prior of ``mu``; data, like ``bhat`` and
    ``sxx_inv``: no gradient), every parent padded to ``K`` children (see
    :func:`_marginal_logp_and_grad`). Outputs the log density of each parent (J,) and its
    gradients in ``sigma2`` and ``tau2``, computed in one numpy call for all parents: for
    these tiny matrices one call costs less than a graph of general linear-algebra
    operations.
    """

    __props__ = ("sizes",)

    def __init__(self, sizes):
        self.sizes = tuple(int(k) for k in sizes)

    def make_node(self, bhat, sxx_inv, sigma2, tau2, mu_mean, mu_var):
        """Build the apply node (inputs as float64 tensors)."""
        inputs = [
            pt.as_tensor_variable(v).astype("float64")
            for v in (bhat, sxx_inv, sigma2, tau2, mu_mean, mu_var)
        ]
        outputs = [pt.dvector(), pt.dmatrix(), pt.dmatrix()]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        """Evaluate values and gradients with numpy."""
        logp, d_sigma2, d_tau2 = _marginal_logp_and_grad(*inputs, self.sizes)
        output_storage[0][0] = np.asarray(logp, dtype="float64")
        output_storage[1][0] = d_sigma2
        output_storage[2][0] = d_tau2

    def L_op(self, inputs, outputs, output_grads):
        """Chain rule through the values output; the gradient outputs are not differentiated."""
        g = output_grads[0]  # (J,)
        return [
            pt.zeros_like(inputs[0]),
            pt.zeros_like(inputs[1]),
            g[:, None] * outputs[1],
            g[:, None] * outputs[2],
            pt.zeros_like(inputs[4]),
            pt.zeros_like(inputs[5]),
        ]


def marginal_bhat_logp(bhat, sxx_inv, sigma2, tau2, mu_mean, mu_var, sizes):
    """Return the log density of :class:`MarginalBhatLogp` per parent as a tensor.

    Parameters
    ----------
    bhat : TensorVariable, shape (J, S, K)
    sxx_inv : TensorVariable, shape (J, S, K, K)
    sigma2 : TensorVariable, shape (J, S)
    tau2 : TensorVariable, shape (J, K)
    mu_mean, mu_var : TensorVariable, shape (J, K)
        Normal prior of the level the data see (see :func:`_marginal_logp_and_grad`).
    sizes : sequence of int
        Children of each parent; the rest of ``K`` is padding.

    Returns
    -------
    TensorVariable
        Shape (J,).
    """
    return MarginalBhatLogp(sizes)(bhat, sxx_inv, sigma2, tau2, mu_mean, mu_var)[0]


def sqrtm_psd(cov: np.ndarray) -> np.ndarray:
    """Return ``L`` with ``L L' = cov`` for batches of symmetric PSD matrices.

    Parameters
    ----------
    cov : ndarray, shape (..., K, K)

    Returns
    -------
    ndarray, shape (..., K, K)
    """
    cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    vals, vecs = np.linalg.eigh(cov)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :]


def elasticity_conditionals(
    r: Mapping[str, np.ndarray], tau, sigma, mu=None, prior_mean=0.0, prior_var=MU_PRIOR_VAR
):
    """Return the Gaussian conditionals of ``mu`` and of ``b`` for one parent.

    Parameters
    ----------
    r : mapping
        :func:`reduce_stats` of the parent.
    tau : ndarray, shape (D, K)
        ``elasticity_tau`` of the parent's edges, per draw.
    sigma : ndarray, shape (D, S)
        ``driver_sigma`` of the parent, per draw.
    mu : ndarray, shape (D, K), optional
        Population elasticities to condition ``b`` on.
    prior_mean, prior_var : float or ndarray, shape (K,)
        Normal prior of ``mu`` (:func:`edge_priors`; the default is uncalibrated).

    Returns
    -------
    dict of ndarray
        ``mu_mean`` (D, K) and ``mu_cov`` (D, K, K): ``mu | tau, sigma, data``; with ``mu``
        given also ``b_mean`` (D, S, K) and ``b_cov`` (D, S, K, K): ``b | mu, tau, sigma,
        data``.
    """
    tau = np.asarray(tau, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    K = tau.shape[-1]
    T = tau[:, None, :, None] ** 2 * np.eye(K)  # (D, 1, K, K)
    V = sigma[:, :, None, None] ** 2 * r["sxx_inv"][None]  # (D, S, K, K)
    W_inv = np.linalg.inv(V + T)
    prior_prec = np.broadcast_to(1.0 / np.asarray(prior_var, dtype=float), (K,))
    prec = np.diag(prior_prec) + W_inv.sum(axis=1)
    mu_cov = np.linalg.inv(prec)
    info = np.einsum("dsij,sj->di", W_inv, r["bhat"]) + prior_prec * prior_mean
    mu_mean = np.einsum("dij,dj->di", mu_cov, info)
    out = {"mu_mean": mu_mean, "mu_cov": 0.5 * (mu_cov + np.swapaxes(mu_cov, -1, -2))}
    if mu is not None:
        mu = np.asarray(mu, dtype=float)
        gain = T @ W_inv  # (D, S, K, K)
        resid = r["bhat"][None] - mu[:, None, :]
        out["b_mean"] = mu[:, None, :] + np.einsum("dsij,dsj->dsi", gain, resid)
        b_cov = T - gain @ T
        out["b_cov"] = 0.5 * (b_cov + np.swapaxes(b_cov, -1, -2))
    return out


def reduce_stats(st: DriverStats, *, cluster_robust: bool = True) -> dict[str, np.ndarray]:
    """Return the quantities the likelihood needs, from one parent's statistics.

    Pooled statistics are centred first (exact algebra), so the intercept separates.

    Parameters
    ----------
    st : DriverStats
        One parent's sufficient statistics.
    cluster_robust : bool, default True
        Calibrate the curvature of the likelihood in the elasticities to the cluster-robust
        (by account) covariance (see the module docstring); ``False``: account-periods as
        independent.

    Returns
    -------
    dict of ndarray
        The data: ``n_eff`` (S,), ``syy`` (S,), ``sxy`` (S, K), ``sxx`` (S, K, K) (centred
        when pooled), ``n``, ``mean_y`` (S,), ``mean_x`` (S, K). The likelihood of the
        elasticities: ``bhat`` (S, K), ``sxx_inv`` (S, K, K) (the covariance of ``bhat``
        is ``sigma^2 sxx_inv``), ``ssr_min`` (S,), ``logdet_sxx`` (S,) (of ``sxx_inv^-1``),
        ``df`` (S,) (``n_eff - K``) and the statistics ``lik_syy``, ``lik_sxy``,
        ``lik_sxx`` whose Gaussian likelihood has that curvature (the data's own when not
        calibrated). Segments whose statistics cannot identify the elasticities get an
        uninformative ``bhat``.
    """
    n = np.asarray(st.n, dtype=float)
    S, K = np.shape(st.Xty)
    safe = np.where(n > 0, n, 1.0)
    mean_y = np.asarray(st.sum_y, dtype=float) / safe
    mean_x = np.asarray(st.sum_x, dtype=float) / safe[:, None]
    if st.within:
        n_eff = np.maximum(n - np.asarray(st.n_absorbed, dtype=float), 0.0)
        syy = np.asarray(st.sum_y2, dtype=float)
        sxy = np.asarray(st.Xty, dtype=float)
        sxx = np.asarray(st.XtX, dtype=float)
    else:
        n_eff = n
        syy = np.asarray(st.sum_y2, dtype=float) - n * mean_y**2
        sxy = np.asarray(st.Xty, dtype=float) - n[:, None] * mean_x * mean_y[:, None]
        sxx = np.asarray(st.XtX, dtype=float) - n[:, None, None] * (
            mean_x[:, :, None] * mean_x[:, None, :]
        )
    bhat = np.zeros((S, K))
    sxx_inv = np.broadcast_to(np.eye(K) * _UNINFORMATIVE, (S, K, K)).copy()
    ssr_min = np.zeros(S)
    logdet = np.zeros(S)
    df = np.zeros(S)
    lik_syy, lik_sxy, lik_sxx = syy.copy(), sxy.copy(), sxx.copy()
    for s in range(S):
        ok = n_eff[s] > K
        if ok:
            ok = np.linalg.cond(sxx[s]) < 1e12
        if not ok:
            continue
        bhat[s] = np.linalg.solve(sxx[s], sxy[s])
        sxx_inv[s] = _symmetric(np.linalg.inv(sxx[s]))
        ssr_min[s] = max(syy[s] - sxy[s] @ bhat[s], 0.0)
        df[s] = n_eff[s] - K
        if cluster_robust:
            calibrated = _sandwich(sxx_inv[s], st.meat[s], int(st.clusters[s]), ssr_min[s] / df[s])
            if calibrated is not None:
                sxx_inv[s] = calibrated
                lik_sxx[s] = _symmetric(np.linalg.inv(calibrated))
                lik_sxy[s] = lik_sxx[s] @ bhat[s]
                lik_syy[s] = ssr_min[s] + bhat[s] @ lik_sxy[s]
        logdet[s] = -np.linalg.slogdet(sxx_inv[s])[1]
    return {
        "n": n,
        "n_eff": n_eff,
        "mean_y": mean_y,
        "mean_x": mean_x,
        "syy": syy,
        "sxy": sxy,
        "sxx": sxx,
        "bhat": bhat,
        "sxx_inv": sxx_inv,
        "ssr_min": ssr_min,
        "logdet_sxx": logdet,
        "df": df,
        "lik_syy": lik_syy,
        "lik_sxy": lik_sxy,
        "lik_sxx": lik_sxx,
    }


def _symmetric(matrix: np.ndarray) -> np.ndarray:
    return 0.5 * (matrix + matrix.T)


def _sandwich(sxx_inv: np.ndarray, meat: np.ndarray, clusters: int, sigma2: float):
    """Return ``sxx_inv`` calibrated to the cluster-robust covariance, or None if it cannot be.

    ``G / (G - 1) * sxx_inv meat sxx_inv / sigma2`` with ``G`` accounts: times ``sigma2`` it
    is the by-account cluster-robust covariance of the estimate (with the usual small-sample
    factor for few clusters).
    """
    if clusters < 2 or not sigma2 > 0 or not np.any(meat):
        return None
    robust = _symmetric(sxx_inv @ meat @ sxx_inv) * clusters / (clusters - 1) / sigma2
    if np.linalg.eigvalsh(robust).min() <= 0:
        return None
    return robust
