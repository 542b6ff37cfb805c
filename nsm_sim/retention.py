"""Retention: the North Star as a predictor of churn (discrete-time logistic hazard).

For an account alive in period t::

    logit P(churn after t) = intercept[s] + slope[s] * x + tenure_slope * log1p(tenure)
                             + hinge_jump * sigmoid((x - log1p(hinge_tau)) / HINGE_WIDTH)

with ``x = log1p(north_star)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

#: Width, on the log1p scale, of the smooth step at the threshold ``hinge_tau``.
HINGE_WIDTH = 0.05


def churn_logit(
    x, log_tenure, intercept, slope, tenure_slope, hinge_jump=0.0, hinge_tau=None, sigmoid=expit
):
    """Return the logit of the per-period churn hazard.

    Works on numpy arrays (the default) and on PyTensor tensors (pass
    ``sigmoid=pytensor.tensor.sigmoid``); arguments broadcast.

    Parameters
    ----------
    x : array_like
        ``log1p`` of the North Star per account per period.
    log_tenure : array_like
        ``log1p`` of tenure in periods.
    intercept, slope, tenure_slope : array_like
        Model parameters (per segment where the caller indexes them so).
    hinge_jump : array_like, default 0
        Change of the logit at and above the threshold.
    hinge_tau : array_like or None
        The threshold on the North Star's own scale; ``None`` for no hinge.
    sigmoid : callable
        The logistic function of the array library in use.

    Returns
    -------
    array_like
        The logit of the hazard.
    """
    logit = intercept + slope * x + tenure_slope * log_tenure
    if hinge_tau is not None:
        logit = logit + hinge_jump * sigmoid((x - np.log1p(hinge_tau)) / HINGE_WIDTH)
    return logit
