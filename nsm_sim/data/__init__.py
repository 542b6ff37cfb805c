"""Data: the panel, its checks and its reductions."""

# Transitional re-export while the stage is split into modules.
from nsm_sim.data import panel as _impl

globals().update({k: getattr(_impl, k) for k in dir(_impl) if not k.startswith("__")})
