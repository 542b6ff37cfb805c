"""nsm_sim: is the North Star leading, what drives it, and which initiatives to fund.

The stages, each a subpackage or module, data flowing one way::

    spec, data ─► models (drivers, retention: the fit) ─► leading (validation)
                         │
                         └─► simulate (Monte Carlo) ─► prioritise ─► output (tables, figures, HTML)

The names below are imported on first use, so ``import nsm_sim`` stays light (the CLI starts
without loading PyMC until a command needs it).

Examples
--------
>>> import nsm_sim
>>> tree = nsm_sim.load_tree("models/demo.yaml")  # doctest: +SKIP
>>> panel = nsm_sim.load_panel("panel.csv", tree)  # doctest: +SKIP
>>> fit = nsm_sim.fit(panel, seed=1)  # doctest: +SKIP
>>> validation = nsm_sim.validate(panel, seed=1)  # doctest: +SKIP
>>> result = nsm_sim.simulate.simulate(  # doctest: +SKIP
...     nsm_sim.load_scenario("scenarios/demo.yaml"),
...     nsm_sim.posterior_draws(fit.idata, tree), fit.population)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public names that are functions or classes of a stage, and where they live.
_FUNCTIONS = {
    "load_tree": "nsm_sim.spec",
    "load_scenario": "nsm_sim.spec",
    "MetricTree": "nsm_sim.spec",
    "Scenario": "nsm_sim.spec",
    "load_panel": "nsm_sim.data",
    "check_frame": "nsm_sim.data",
    "Panel": "nsm_sim.data",
    "generate_world": "nsm_sim.synth",
    "fit": "nsm_sim.models.inference",
    "summarise": "nsm_sim.models.inference",
    "Fit": "nsm_sim.models.inference",
    "save_bundle": "nsm_sim.models.bundle",
    "load_bundle": "nsm_sim.models.bundle",
    "validate": "nsm_sim.leading",
    "posterior_draws": "nsm_sim.simulate",
    "InputError": "nsm_sim.errors",
}

#: Public subpackages and modules (the stages).
_MODULES = (
    "data",
    "errors",
    "files",
    "leading",
    "models",
    "numeric",
    "output",
    "prioritise",
    "simulate",
    "spec",
    "synth",
)

__all__ = ["__version__", *_MODULES, *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"nsm_sim.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'nsm_sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
