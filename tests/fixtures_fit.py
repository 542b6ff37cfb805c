"""Fixtures: one real fit of the small synthetic world per session."""

import pytest

#: Small but honest: 4 chains of 300 draws after 300 tuning steps.
FIT_DRAWS = 300
FIT_TUNE = 300
FIT_CHAINS = 4
FIT_SEED = 1


@pytest.fixture(scope="session")
def fitted(panel):
    """The drivers + retention fit of the `panel` fixture (within, with hinge, nutpie)."""
    from nsm_sim.models import inference  # PyMC and ArviZ only for the tests that fit

    return inference.fit(panel, draws=FIT_DRAWS, tune=FIT_TUNE, chains=FIT_CHAINS, seed=FIT_SEED)
