"""nsm_sim: is the North Star leading, what drives it, and which initiatives to fund."""

__version__ = "0.1.0"
