"""Leading: is the North Star truly leading."""

# Transitional re-export while the stage is split into modules.
from nsm_sim.leading import validation as _impl

globals().update({k: getattr(_impl, k) for k in dir(_impl) if not k.startswith("__")})
