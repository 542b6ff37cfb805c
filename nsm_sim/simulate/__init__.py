"""Simulate: initiatives projected through the posterior."""

# Transitional re-export while the stage is split into modules.
from nsm_sim.simulate import engine as _impl

globals().update({k: getattr(_impl, k) for k in dir(_impl) if not k.startswith("__")})
