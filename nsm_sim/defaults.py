"""Sampler defaults shared by the Python API and the CLI.

A light module (no numpy), so the CLI can show them in ``--help`` without importing the
models.

Validation
----------
Each of a validation's churn fits (about nine) takes 4 chains x 300 draws after 200 tuning
steps. Four chains, not two: R-hat compares chains, and with two its noise alone put the
largest R-hat of a validation's fits above 1.01 in most runs. At these settings every
quantity's bulk and tail ESS is above 400 on the demo world (over seeds 0 to 6, the smallest
bulk ESS of a validation was 459 to 951, the smallest tail ESS 675 to 745), and the largest
R-hat over the fits' 50 or so quantities lands between 1.006 and 1.015: the 1.01 line of the
trust gates is within the Monte Carlo noise of a maximum over that many quantities (iid draws
with autocorrelation 0.3 give a largest R-hat above 1.01 in most runs of 4 x 300 draws), so a
REVIEW that names an R-hat just above 1.01 asks for more draws (``nsm-sim validate --draws``),
not for another model.
"""

#: Posterior draws per chain of each validation fit.
VALIDATION_DRAWS = 300
#: Tuning steps per chain of each validation fit.
VALIDATION_TUNE = 200
#: Chains of each validation fit.
VALIDATION_CHAINS = 4
