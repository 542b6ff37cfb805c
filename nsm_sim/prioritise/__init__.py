"""Prioritise: ranking, portfolio, value of information, comparison."""

# Transitional re-export while the stage is split into modules.
from nsm_sim.prioritise import planning as _impl

globals().update({k: getattr(_impl, k) for k in dir(_impl) if not k.startswith("__")})
