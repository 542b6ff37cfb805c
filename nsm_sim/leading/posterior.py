"""Posterior: the retention model sampled within a validation, and what is read from its draws.

Every fit of a validation is the retention model of :mod:`nsm_sim.models.retention` (its
formula, priors and posterior names) on the churn cells of one metric and one set of rows.
:class:`RetentionSampler` holds one PyMC model per structure (with and without the hinge) and
a :class:`nsm_sim.models.sampling.Sampler`, which compiles each structure once (PyTensor's C
backend, cached across processes) and samples it again after the next cells are put into its
data containers. It is made by :func:`nsm_sim.leading.validate` (or passed to it) and lives
as long as the run.

Seeds: the fit with key ``(stage, index)`` (:data:`TRAIN`, :data:`IN_SAMPLE`,
:data:`THRESHOLD` or :data:`BASELINE`, then the metric's :func:`~nsm_sim.numeric.name_key`,
the threshold model's number or 0 for the baseline) samples with
``child_seed(seed, stage, index)`` and, with the hinge, draws ``hinge_tau`` from
``stream(seed, stage, index, 1)``: no fit's numbers depend on which other metrics are judged.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from nsm_sim.data import ChurnCells, Panel
from nsm_sim.defaults import VALIDATION_CHAINS, VALIDATION_DRAWS, VALIDATION_TUNE
from nsm_sim.models.retention import (
    account_log_likelihood,
    build_retention_model,
    draw_hinge_tau,
    retention_data,
)
from nsm_sim.models.sampling import DEFAULT_SAMPLER, Sampler
from nsm_sim.numeric import child_seed, stream

#: Stages of a validation's fits (the first key of their seeds): each metric's fit before the
#: cutoff and on all rows, the North Star's threshold models, the segment + tenure baseline.
TRAIN, IN_SAMPLE, THRESHOLD, BASELINE = 0, 1, 2, 3

#: Posterior variables of the hazard, without and with the hinge.
HAZARD_VARS = ("churn_intercept", "churn_slope", "tenure_slope")
HINGE_VARS = ("hinge_jump", "hinge_tau")


class RetentionSampler:
    """The retention model sampled on one set of churn cells after another.

    Parameters
    ----------
    sampler : {"nutpie", "pymc"}, default "nutpie"
        NUTS back-end (:mod:`nsm_sim.models.sampling`).
    draws, tune, chains : int
        Per chain, and chains (defaults: :mod:`nsm_sim.defaults`).
    progress : bool, default False
        Show the sampler's progress.
    segment_slopes : bool, default False
        The metric's slope per segment (partially pooled, as in the fit) or, by default, one
        slope common to the segments, each segment keeping its own intercept: the per-row
        logit with segment effects that the comparison of metrics is about. Per-segment
        slopes add a spread that three or so segments hardly inform; its funnel made 2 x 300
        draws read REVIEW (bulk ESS 134 to 370 on the demo, divergences), where the common
        slope mixes in half the gradient evaluations.

    With nutpie the mass matrix is adapted with a low-rank correction
    (:class:`~nsm_sim.models.sampling.Sampler`'s ``low_rank``): the threshold model's slope and
    jump are correlated, and the correction halves its leapfrog steps (6.5 to 3.7 per draw on
    the demo) and doubles its bulk ESS; the smooth models take as many steps as before.
    """

    def __init__(
        self,
        sampler: str = DEFAULT_SAMPLER,
        *,
        draws: int = VALIDATION_DRAWS,
        tune: int = VALIDATION_TUNE,
        chains: int = VALIDATION_CHAINS,
        progress: bool = False,
        segment_slopes: bool = False,
    ):
        self.nuts = Sampler(
            sampler, draws=draws, tune=tune, chains=chains, progress=progress, low_rank=True
        )
        self.segment_slopes = bool(segment_slopes)
        self._models: dict[tuple, object] = {}

    def settings(self) -> dict:
        """Return ``{"sampler", "draws", "tune", "chains", "low_rank"}``."""
        return self.nuts.settings()

    def options(self) -> dict:
        """Return the arguments that make a new sampler like this one (its models not kept)."""
        nuts = self.nuts
        return {
            "sampler": nuts.sampler,
            "draws": nuts.draws,
            "tune": nuts.tune,
            "chains": nuts.chains,
            "segment_slopes": self.segment_slopes,
        }

    def sample(
        self, cells: ChurnCells, *, hinge: bool, seed: int, key: tuple[int, int]
    ) -> az.InferenceData:
        """Sample the retention model's posterior on some cells.

        Parameters
        ----------
        cells : ChurnCells
            Cells of any metric and rows (from :func:`nsm_sim.data.churn_cells`).
        hinge : bool
            The model with the hinge (its ``hinge_tau`` drawn after sampling by
            :func:`nsm_sim.models.retention.draw_hinge_tau`) or without.
        seed : int
            The validation's seed.
        key : tuple of int
            ``(stage, index)`` of the fit (see the module docstring).

        Returns
        -------
        arviz.InferenceData
            Posterior with the retention model's variables (and ``hinge_tau``).
        """
        structure = (cells.segments, bool(hinge))
        data = None
        if structure in self._models:
            data = retention_data(cells, hinge=hinge)
        else:
            self._models[structure] = build_retention_model(
                cells, hinge=hinge, segment_slopes=self.segment_slopes
            )
        model = self._models[structure]
        idata = self.nuts.sample(model, seed=child_seed(seed, *key), data=data)
        if hinge:
            tau = draw_hinge_tau(cells, idata.posterior, seed=stream(seed, *key, 1))
            idata.posterior = idata.posterior.assign(hinge_tau=tau)
        return idata


def flat_draws(idata: az.InferenceData, *, hinge: bool) -> dict[str, np.ndarray]:
    """Return the hazard's draws with chains stacked: ``{name: (draws, ...)}``.

    Parameters
    ----------
    idata : arviz.InferenceData
    hinge : bool
        Include ``hinge_jump`` and ``hinge_tau``; without, ``hinge_jump`` is zeros.

    Returns
    -------
    dict of ndarray
    """
    post = idata.posterior
    names = HAZARD_VARS + (HINGE_VARS if hinge else ())
    flat = {n: post[n].to_numpy().reshape(-1, *post[n].shape[2:]) for n in names}
    if not hinge:
        flat["hinge_jump"] = np.zeros_like(flat["tenure_slope"])
    return flat


def convergence(idata: az.InferenceData, *, hinge: bool) -> dict[str, float]:
    """Return the largest R-hat of the hazard's variables and the number of divergences.

    Parameters
    ----------
    idata : arviz.InferenceData
    hinge : bool
        Include ``hinge_jump`` and ``hinge_tau``.

    Returns
    -------
    dict
        ``rhat_max``, ``divergences``.
    """
    names = list(HAZARD_VARS + (HINGE_VARS if hinge else ()))
    rhat = az.rhat(idata, var_names=names)
    rmax = max(float(np.nanmax(rhat[v].to_numpy())) for v in names)
    div = int(idata.sample_stats["diverging"].sum()) if "sample_stats" in idata.groups() else 0
    return {"rhat_max": rmax, "divergences": div}


def with_account_log_likelihood(
    idata: az.InferenceData, cells: ChurnCells, panel: Panel
) -> az.InferenceData:
    """Return a copy of ``idata`` with the per-account log-likelihood as ``log_likelihood``.

    Parameters
    ----------
    idata : arviz.InferenceData
        A retention fit on ``cells``.
    cells : ChurnCells
        The cells, with their ``row_cell`` into ``panel.frame``.
    panel : Panel

    Returns
    -------
    arviz.InferenceData
        With ``log_likelihood["churn"]`` ("chain", "draw", "account"): see
        :func:`nsm_sim.models.retention.account_log_likelihood`.
    """
    frame = panel.frame
    codes, accounts = pd.factorize(frame["account_id"])
    churned = frame["churned"].to_numpy(dtype=float)
    log_lik = account_log_likelihood(idata.posterior, cells, codes, churned)
    ds = xr.Dataset(
        {"churn": (("chain", "draw", "account"), log_lik)},
        coords={
            "chain": idata.posterior["chain"].to_numpy(),
            "draw": idata.posterior["draw"].to_numpy(),
            "account": np.asarray(accounts, dtype=object),
        },
    )
    idata = idata.copy()
    if "log_likelihood" in idata.groups():
        del idata.log_likelihood
    idata.add_groups(log_likelihood=ds)
    return idata
